"""Every refusal and failure StackFlowPatcher reports, one class per SPEC error type.

Each class carries its ``category``, which decides the result's ``status``: ``refused``
(``invalid``: nothing ran), ``failed`` (``failed``) or ``locked`` (``locked``)::

    PatcherError                    base; ``type`` is the name reported in results
    ├── InvalidRequest     refused  the payload or the command line was refused
    ├── ConfigError        refused  the environment is wrong (missing or conflicting settings)
    ├── InvalidSource      refused  the migration files themselves are malformed
    ├── ChecksumMismatch   refused  an applied file changed since it was applied
    ├── MissingMigration   refused  an applied version is gone from the source
    ├── OutOfOrder         refused  a pending version sits below the newest applied one
    ├── DirtyDatabase      refused  a no-transaction migration did not finish
    ├── Irreversible       refused  a rollback would cross a version without a down script
    ├── SourceUnavailable  failed   S3 or the directory could not be read
    ├── DatabaseUnavailable failed  PostgreSQL could not be reached or is unusable
    │   └── SessionLost    failed   internal: the run's session died (reported as its parent)
    ├── MigrationFailed    failed   a script raised an error (version, file, line, column)
    ├── DeadlineExceeded   failed   a migration could not finish within a whole invocation
    ├── LockLost           failed   a migration released the run's lock and another took it
    ├── Interrupted        failed   the CLI got SIGINT/SIGTERM and stopped as a deadline cut would
    ├── LockTimeout        locked   another run held the advisory lock too long
    ├── MissingSnapshot    refused  drift: no schema snapshot to compare with (or unreadable)
    ├── DriftDetected      drifted  drift: the live schema differs from the snapshot
    └── DeadlineReached    partial  internal: too close to the deadline to start more work

    StatementFailed                 the backend's report of one failed statement (not a
                                    PatcherError: the engine turns it into MigrationFailed)

Messages say what happened and what to do next; they never carry a password or a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Category = Literal["refused", "failed", "locked", "partial", "drifted"]
STATUS_OF: dict[Category, str] = {
    "refused": "invalid",
    "failed": "failed",
    "locked": "locked",
    "partial": "partial",
    "drifted": "drifted",
}


class PatcherError(Exception):
    """Base class: a message plus the optional details a result's ``error`` object carries.

    Subclasses declare their category in the class statement: ``class X(PatcherError,
    category="refused")``; a subclass of a subclass inherits it."""

    category: ClassVar[Category] = "failed"

    def __init_subclass__(cls, category: Category | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if category is not None:
            cls.category = category

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def status(self) -> str:
        """The result status a run that ends with this error reports."""
        return STATUS_OF[self.category]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, **self.details}


class InvalidRequest(PatcherError, category="refused"):
    """The payload or command line was refused before anything ran."""


class ConfigError(PatcherError, category="refused"):
    """The environment is missing a setting or has conflicting ones."""


class InvalidSource(PatcherError, category="refused"):
    """The migration files are malformed (names, duplicates, encoding)."""


class ChecksumMismatch(PatcherError, category="refused"):
    """An applied migration file changed after it was applied."""


class MissingMigration(PatcherError, category="refused"):
    """A version recorded as applied is no longer in the source."""


class OutOfOrder(PatcherError, category="refused"):
    """A pending version is lower than the newest applied version."""


class DirtyDatabase(PatcherError, category="refused"):
    """A no-transaction migration started and never finished."""


class Irreversible(PatcherError, category="refused"):
    """A rollback would have to cross a version without a down script."""


class SourceUnavailable(PatcherError, category="failed"):
    """The migration source could not be listed or read."""


class DatabaseUnavailable(PatcherError, category="failed"):
    """PostgreSQL could not be reached, authenticated against or written to."""


class SessionLost(DatabaseUnavailable):
    """The run's session died (connection reset, server restart, failover): reported as a
    ``DatabaseUnavailable``; the runner resumes on a new session when nothing had started."""

    @property
    def type(self) -> str:
        return "DatabaseUnavailable"


class MigrationFailed(PatcherError, category="failed"):
    """A migration script raised an error; details name the version, file, line and column."""


class DeadlineExceeded(MigrationFailed, category="failed"):
    """A migration that had a whole invocation to itself still could not finish in it."""


class LockLost(PatcherError, category="failed"):
    """A migration released the run's advisory lock and another session took it."""


class Interrupted(PatcherError, category="failed"):
    """The CLI got SIGINT or SIGTERM: the run stopped as a deadline cut would (SPEC 4)."""


class LockTimeout(PatcherError, category="locked"):
    """Another run held the advisory lock for longer than the configured wait."""


class MissingSnapshot(PatcherError, category="refused"):
    """No usable schema snapshot to compare with (none taken yet, or one this version cannot
    read); the message says how to take one (SPEC section 13)."""


class DriftDetected(PatcherError, category="drifted"):
    """The live schema differs from the snapshot the last schema-changing run stored."""


class DeadlineReached(PatcherError, category="partial"):
    """Internal signal: the Lambda deadline is too close to start more work (becomes `partial`)."""


class StatementFailed(Exception):
    """A statement the backend ran failed; the engine maps it to its migration's file and line.

    ``index``: the statement's position in the list given to the backend (``len(list)`` when
    the history change or COMMIT itself failed: ``at_commit``). ``position``: 1-based character
    offset inside that statement, when the server named one. The flags say what kind of failure
    it was; a backend sets them from its driver's error classes."""

    def __init__(
        self,
        message: str,
        *,
        index: int = 0,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        at_commit: bool = False,
        connection_lost: bool = False,
        lock_not_available: bool = False,
        cancelled: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.at_commit = at_commit
        self.connection_lost = connection_lost
        self.lock_not_available = lock_not_available
        self.cancelled = cancelled
        self.note = ""  # what the engine learned of the aftermath (an INVALID index left)

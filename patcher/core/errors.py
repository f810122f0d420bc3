"""Every refusal and failure StackFlowPatcher reports, one class per SPEC error type.

    PatcherError                    base; ``type`` is the name reported in results
    ├── InvalidRequest              the payload or the command line was refused
    ├── ConfigError                 the environment is wrong (missing or conflicting settings)
    ├── InvalidSource               the migration files themselves are malformed
    ├── SourceUnavailable           S3 or the directory could not be read
    ├── DatabaseUnavailable         PostgreSQL could not be reached or is unusable
    ├── ChecksumMismatch            an applied file changed since it was applied
    ├── MissingMigration            an applied version is gone from the source
    ├── OutOfOrder                  a pending version sits below the newest applied one
    ├── DirtyDatabase               a no-transaction migration did not finish
    ├── Irreversible                a rollback would cross a version without a down script
    ├── LockTimeout                 another run held the advisory lock too long
    └── MigrationFailed             a script raised an error (version, file, line, column)

Messages say what happened and what to do next; they never carry a password or a secret.
"""

from __future__ import annotations

from typing import Any


class PatcherError(Exception):
    """Base class: a message plus the optional details a result's ``error`` object carries."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, **self.details}


class InvalidRequest(PatcherError):
    """The payload or command line was refused before anything ran."""


class ConfigError(PatcherError):
    """The environment is missing a setting or has conflicting ones."""


class InvalidSource(PatcherError):
    """The migration files are malformed (names, duplicates, encoding)."""


class SourceUnavailable(PatcherError):
    """The migration source could not be listed or read."""


class DatabaseUnavailable(PatcherError):
    """PostgreSQL could not be reached, authenticated against or written to."""


class ChecksumMismatch(PatcherError):
    """An applied migration file changed after it was applied."""


class MissingMigration(PatcherError):
    """A version recorded as applied is no longer in the source."""


class OutOfOrder(PatcherError):
    """A pending version is lower than the newest applied version."""


class DirtyDatabase(PatcherError):
    """A no-transaction migration started and never finished."""


class Irreversible(PatcherError):
    """A rollback would have to cross a version without a down script."""


class LockTimeout(PatcherError):
    """Another run held the advisory lock for longer than the configured wait."""


class MigrationFailed(PatcherError):
    """A migration script raised an error; details name the version, file, line and column."""


class DeadlineReached(PatcherError):
    """Internal signal: the Lambda deadline is too close to start more work (becomes `partial`)."""

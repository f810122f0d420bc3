"""Plain data passed between the source, the planner, the backend and the runner.

The vocabulary every layer shares: sources make ``SourceObject``s, the catalog groups them into
``Migration``s, the planner turns a ``Request`` and the history (``AppliedRow``s) into a ``Plan``
of ``Step``s, and each step's ``StepKind`` says what it writes (``HistoryWrite``) and how the
audit log and the result name it. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from patcher.core.errors import InvalidRequest
from patcher.core.record import record
from patcher.core.terms import terms

if TYPE_CHECKING:
    from patcher.core.errors import StatementFailed

Action = Literal["migrate", "rollback", "status", "baseline", "repair", "adopt", "drift"]
Direction = Literal["up", "down"]
ACTIONS: tuple[Action, ...] = (
    "migrate", "rollback", "status", "baseline", "repair", "adopt", "drift",
)  # fmt: skip
ADOPT_TOOLS = ("golang-migrate", "flyway", "dbmate", "goose", "sqlx")  # adopt --from
MAX_VERSION = 10**18 - 1  # 18 decimal digits
_PHASES = (("migrate", "expand"), ("migrate", "contract"))


@record
class ScriptForm:
    """How a file of another tool's layout becomes a script (``patcher/sources/layouts``).

    ``layout`` names it (``flyway``, ``dbmate``, ``goose``); ``section`` is the part of a
    one-file layout's file (dbmate, goose) the script is; ``no_transaction`` is a mode set
    beside the file (Flyway's ``.sql.conf`` ``executeInTransaction=false``)."""

    layout: str
    section: Direction | None = None
    no_transaction: bool = False


@record
class SourceObject:
    """One object a source listed: its file name, where to read it, and a cheap identity.

    ``fingerprint`` changes whenever the content changes (S3: the ETag) and is
    ``None`` when the source has no such identity; then the file is always read to checksum it.
    """

    name: str
    key: str
    fingerprint: str | None = None
    size: int | None = None
    form: ScriptForm | None = None  # None: a plain golang-migrate script, the whole file


@record
class Migration:
    """One version: its up script and, when reversible, its down script."""

    version: int
    description: str
    up: SourceObject
    down: SourceObject | None = None

    @property
    def reversible(self) -> bool:
        return self.down is not None

    def file(self, direction: Direction) -> SourceObject:
        obj = self.up if direction == "up" else self.down
        if obj is None:  # the planner refuses irreversible rollbacks before this can happen
            raise ValueError(f"version {self.version} has no {direction} script")
        return obj


@record
class Repeatable:
    """A Flyway ``R__<description>.sql`` script: run again whenever its checksum changes."""

    description: str
    obj: SourceObject


@record
class Catalog:
    """Every valid migration of a source, ordered by version, and what was ignored."""

    migrations: tuple[Migration, ...]
    warnings: tuple[str, ...] = ()
    repeatables: tuple[Repeatable, ...] = ()  # by description
    # Flyway B<N>__ files by version, each as a migration whose up is the B file and that has
    # no down: a fresh database starts at the newest one at or below the target (SPEC 2a).
    baselines: tuple[Migration, ...] = ()

    def by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}


@record
class AppliedRow:
    """One row of the history table."""

    version: int
    description: str
    checksum: str
    applied_at: datetime | None = None
    execution_ms: int = 0
    dirty: bool = False
    dirty_direction: Direction | None = None
    fingerprint: str | None = None


@record
class Request:
    """A validated request: what the payload or the command line asked for.

    Constructing one validates it (``validate_request``, below), so every way of building one
    (the Lambda payload, the CLI, the plain functions in ``app/commands.py``, a test) either
    yields a request the contract allows or raises ``InvalidRequest``; the engine trusts it
    and never checks again."""

    action: Action
    dry_run: bool = False
    target: int | None = None
    steps: int | None = None
    verify: bool = False
    adopt_from: str | None = None  # adopt: the tool whose history is taken over
    adopt_table: str | None = None  # adopt: its history table, when not the tool's default
    database: str | None = None  # a PATCHER_TARGETS name (fleets); None: the only database
    phase: Literal["expand", "contract"] | None = None  # migrate only (SPEC 11)

    def __post_init__(self) -> None:
        validate_request(self)


def validate_request(request: Request) -> None:
    """Refuse the combinations the contract does not allow (SPEC sections 4 and 6), naming the
    fix. Called once per request, by its constructor."""
    t = terms()  # the reader's words: the payload's keys or the CLI's flags
    if request.action not in ACTIONS:
        raise InvalidRequest(f"unknown action {request.action!r}; use one of: {', '.join(ACTIONS)}")
    if request.target is not None and not 0 <= request.target <= MAX_VERSION:
        raise InvalidRequest(
            f"target {request.target} is out of range; give a version from 0 to {MAX_VERSION}"
        )
    if request.steps is not None:
        if request.action != "rollback":
            raise InvalidRequest("steps is only for rollback; use target to bound a migrate")
        if request.steps < 1:
            raise InvalidRequest(f"steps must be 1 or more, got {request.steps}")
        if request.target is not None:
            raise InvalidRequest(f"give either {t.word('steps')} or {t.word('target')}, not both")
    if request.verify and not (request.dry_run and request.action in ("migrate", "rollback")):
        why = f"{t.word('verify')} needs {t.option('dry_run')} and {t.action_word} migrate"
        raise InvalidRequest(f"{why} or rollback")
    if request.action in ("status", "repair", "drift") and request.target is not None:
        raise InvalidRequest(f"{request.action} takes no target")
    if request.action == "adopt" and request.adopt_from is None:
        raise InvalidRequest("adopt needs from: golang-migrate, flyway, dbmate, goose or sqlx")
    if request.action != "adopt" and (request.adopt_from or request.adopt_table) is not None:
        raise InvalidRequest("from and table are for adopt only (the other tool's history)")
    if request.action == "adopt" and (request.target is not None or request.steps is not None):
        raise InvalidRequest("adopt takes no target or steps: it records what the tool applied")
    if request.phase is not None and (request.action, request.phase) not in _PHASES:
        raise InvalidRequest("phase is for migrate only, and is 'expand' or 'contract'")
    if request.action == "baseline" and not request.target:
        raise InvalidRequest(
            f"baseline needs a {t.word('target')} of 1 or more: every version up to it is "
            "marked as applied"
        )


class HistoryWrite(enum.StrEnum):
    """What one change does to the history table (the audit row is written with it)."""

    INSERT = "insert"  # a version becomes applied
    DELETE = "delete"  # a version becomes pending again
    MARK_DIRTY_UP = "mark_dirty_up"  # a no-transaction up script starts (row, dirty)
    MARK_DIRTY_DOWN = "mark_dirty_down"  # a no-transaction down script starts
    FINISH_UP = "finish_up"  # a no-transaction up script finished: clear the mark
    CLEAR_DIRTY = "clear_dirty"  # repair of a crashed down: applied again
    RECHECKSUM = "rechecksum"  # repair of a changed file: its new checksum
    NONE = "none"  # an audit row alone (a failed attempt)


class StepKind(enum.StrEnum):
    """What a planned step does; each kind knows its history change, audit word and text."""

    RUN = "run"
    BASELINE = "baseline"
    CLEAR_DIRTY = "clear_dirty"
    RECHECKSUM = "rechecksum"
    ADOPT = "adopt"  # recorded from another tool's history (patcher/app/adopt.py)
    REPEATABLE = "repeatable"  # a Flyway R__ script run again (engine/repeatables.py)

    @property
    def runs_sql(self) -> bool:
        return self is StepKind.RUN

    @property
    def reads_script(self) -> bool:
        """Whether the step needs its file (to run it, or to record its checksum)."""
        return self in (StepKind.RUN, StepKind.BASELINE)

    def history_write(self, direction: Direction) -> HistoryWrite:
        """The history change the step makes once it has completed."""
        if self is StepKind.RECHECKSUM:
            return HistoryWrite.RECHECKSUM
        if self is StepKind.REPEATABLE:  # recorded by its audit row alone (version NULL)
            return HistoryWrite.NONE
        if self is StepKind.CLEAR_DIRTY:  # back to where it was before the crashed attempt
            return HistoryWrite.DELETE if direction == "up" else HistoryWrite.CLEAR_DIRTY
        return HistoryWrite.INSERT if direction == "up" else HistoryWrite.DELETE

    def audit_outcome(self, direction: Direction) -> str:
        """The word the audit log records for the step once it has completed."""
        if self in (StepKind.RUN, StepKind.REPEATABLE):
            return "applied" if direction == "up" else "reverted"
        return {
            StepKind.BASELINE: "baselined",
            StepKind.RECHECKSUM: "rechecksummed",
            StepKind.ADOPT: "adopted",
        }.get(self, "repaired")

    def change_text(self, direction: Direction) -> str | None:
        """What a result entry says the step changes (None for a step that runs its script)."""
        if self is StepKind.BASELINE:
            return "marked as applied without running it"
        if self is StepKind.CLEAR_DIRTY:
            return f"clears the dirty mark of an unfinished {direction} script"
        if self is StepKind.RECHECKSUM:
            return "records the changed file's new checksum"
        if self is StepKind.REPEATABLE:
            return "repeatable: runs after the versions, as it is new or changed"
        if self is StepKind.ADOPT:
            return "recorded as applied from the other tool's history, not run"
        return None


ScriptKey = tuple[int, Direction]
"""A script's identity: its version and direction."""


@record
class Step:
    """One unit of planned work."""

    migration: Migration
    direction: Direction
    kind: StepKind = StepKind.RUN
    checksum: str | None = None  # for rechecksum: the file's current checksum

    @property
    def key(self) -> ScriptKey:
        return (self.migration.version, self.direction)


@record
class HistoryChange:
    """What one step does to the history table, and how the audit log names it."""

    version: int | None
    description: str
    direction: Direction
    checksum: str
    fingerprint: str | None = None
    kind: StepKind = StepKind.RUN

    @property
    def outcome(self) -> str:
        return self.kind.audit_outcome(self.direction)

    @property
    def write(self) -> HistoryWrite:
        return self.kind.history_write(self.direction)


@record
class LockHolder:
    """The session holding the run's advisory lock, as pg_stat_activity shows it."""

    pid: int
    application_name: str
    since: str
    user: str | None
    client: str | None
    state: str | None

    def describe(self) -> str:
        who = f"pid {self.pid} ({self.application_name or 'no application_name'}"
        who += f", user {self.user}" if self.user else ""
        who += f", from {self.client}" if self.client else ""
        return f"{who}, connected since {self.since}, {self.state or 'unknown state'})"


class LockState(enum.StrEnum):
    """Whether the session still held the run's advisory lock after a migration."""

    HELD = "held"  # as it should be
    RETAKEN = "retaken"  # the migration released it; it was free and is taken back
    LOST = "lost"  # the migration released it and another session holds it now


@record
class Committed:
    """What a backend reports after committing a migration with its history change."""

    elapsed_ms: int
    lock: LockState = LockState.HELD


@record
class IndexState:
    """One index as the catalog has it: ``schema.name`` and whether it is valid."""

    name: str
    valid: bool


@record
class VerifyReport:
    """What one script did inside the rolled-back verification transaction."""

    duration_ms: int
    locks: list[tuple[str, str]]  # (relation, mode) taken on tables that existed before
    rewrites: list[str]  # tables whose storage (relfilenode) changed
    failure: StatementFailed | None


@record
class Plan:
    """What a request will do, decided from the catalog and the history alone."""

    request: Request
    steps: tuple[Step, ...]
    current_version: int | None
    pending: tuple[Migration, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


StopCheck = Callable[[], bool]
"""Asked by a backend before each statement is sent: True when the engine has cut the migration
(its deadline passed); the backend then sends nothing more and raises ``StatementFailed`` with
``cancelled=True`` for that statement."""

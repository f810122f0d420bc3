"""The table lock each statement kind takes, as the rules look it up."""

from __future__ import annotations

from typing import Final

ACCESS_EXCLUSIVE: Final = "ACCESS EXCLUSIVE"
_SUE: Final = "SHARE UPDATE EXCLUSIVE"
_SRE: Final = "SHARE ROW EXCLUSIVE"

# The table lock each statement kind takes, from the PostgreSQL manual: "Explicit Locking",
# table-level locks (https://www.postgresql.org/docs/current/explicit-locking.html), and the
# lock notes of each form in https://www.postgresql.org/docs/current/sql-altertable.html.
# Keys are pglast node names, plus the option that changes the mode; an ALTER TABLE subcommand
# (AT_*) not listed takes the "AlterTableStmt" default, and a statement its strongest one.
LOCK_MODES: Final[dict[str, str]] = {
    "AlterTableStmt": ACCESS_EXCLUSIVE,
    "AT_AddConstraint FOREIGN": _SRE,  # on the referenced table too
    **dict.fromkeys(("AT_EnableTrig", "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig"), _SRE),
    **dict.fromkeys(("AT_DisableTrig", "AT_EnableTrigAll", "AT_DisableTrigAll"), _SRE),
    **dict.fromkeys(("AT_EnableTrigUser", "AT_DisableTrigUser"), _SRE),
    **dict.fromkeys(("AT_ValidateConstraint", "AT_SetStatistics", "AT_AttachPartition"), _SUE),
    **dict.fromkeys(("AT_SetOptions", "AT_ResetOptions", "AT_ClusterOn", "AT_DropCluster"), _SUE),
    **dict.fromkeys(("AT_SetRelOptions", "AT_ResetRelOptions"), _SUE),
    "RenameStmt": ACCESS_EXCLUSIVE,  # of a table or a column
    "DropStmt": ACCESS_EXCLUSIVE,  # DROP INDEX: on the index's table as well
    "DropStmt CONCURRENTLY": _SUE,
    "TruncateStmt": ACCESS_EXCLUSIVE,
    "IndexStmt": "SHARE",
    "CreateTrigStmt": _SRE,
    "CreateStmt REFERENCES": _SRE,  # on the referenced table
    "IndexStmt CONCURRENTLY": _SUE,
    "VacuumStmt": _SUE,
    "VacuumStmt FULL": ACCESS_EXCLUSIVE,
    "ClusterStmt": ACCESS_EXCLUSIVE,
    "RefreshMatViewStmt": ACCESS_EXCLUSIVE,
    "RefreshMatViewStmt CONCURRENTLY": "EXCLUSIVE",
    "LockStmt": ACCESS_EXCLUSIVE,  # LOCK TABLE without IN ... MODE; other modes are as named
}
LOCK_TABLE_ACCESS_EXCLUSIVE: Final = 8  # LockStmt.mode of AccessExclusiveLock


def lock_mode(kind: str) -> str:
    """The table lock a statement kind (a LOCK_MODES key) takes; ALTER TABLE's by default."""
    return LOCK_MODES.get(kind, LOCK_MODES["AlterTableStmt"])

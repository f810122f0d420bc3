"""What every recipe's templates share: the version record, names, waivers, trigger drops."""

from __future__ import annotations

from dataclasses import dataclass

from patcher.core.errors import InvalidRequest

MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class Version:
    """One version a recipe writes: its slug, up and down scripts."""

    slug: str
    up: str
    down: str


def trigger_name(*parts: str) -> str:
    name = "_".join(parts)
    if len(name) > MAX_IDENTIFIER:
        raise InvalidRequest(
            f"the recipe's trigger name {name!r} is longer than {MAX_IDENTIFIER} bytes: "
            "use shorter table or column names"
        )
    return name


def ignore(codes: str, reason: str) -> str:
    return f"-- patcher:ignore {codes} {reason}\n"


ROLLBACK = "rolls back what this recipe added; nothing else uses it"


def drop_trigger(fn: str, table: str, *, waive: bool) -> str:
    """Drop the recipe's trigger and its function (waived where they are deployed)."""
    if not waive:
        return f"DROP TRIGGER {fn} ON {table};\nDROP FUNCTION {fn}();\n"
    return (
        ignore("ACCESS_EXCLUSIVE_LOCK,DROP_OBJECT", ROLLBACK)
        + f"DROP TRIGGER {fn} ON {table};\n"
        + ignore("DROP_OBJECT", ROLLBACK)
        + f"DROP FUNCTION {fn}();\n"
    )


def prove_not_null(table: str, column: str, check: str) -> str:
    """``SET NOT NULL`` proved by a check added ``NOT VALID`` and validated first, so that
    PostgreSQL skips its own scan; the check is dropped afterwards."""
    return (
        ignore(
            "ACCESS_EXCLUSIVE_LOCK,MIXED_EXPAND_CONTRACT",
            "NOT VALID scans nothing; the recipe's trigger goes in the same transaction",
        )
        + f"ALTER TABLE {table} ADD CONSTRAINT {check}\n"
        f"  CHECK ({column} IS NOT NULL) NOT VALID;\n"
        f"ALTER TABLE {table} VALIDATE CONSTRAINT {check};\n"
        + ignore(
            "ACCESS_EXCLUSIVE_LOCK,SET_NOT_NULL_SCANS",
            "the validated check above proves it, so PostgreSQL skips the scan",
        )
        + f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\n"
        + ignore("ACCESS_EXCLUSIVE_LOCK", "the check is only dropped: nothing is scanned")
        + f"ALTER TABLE {table} DROP CONSTRAINT {check};\n"
    )

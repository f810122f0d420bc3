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

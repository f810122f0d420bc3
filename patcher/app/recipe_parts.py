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


def not_null_check(table: str, column: str, check: str) -> str:
    """``CHECK (column IS NOT NULL) NOT VALID``: new writes only, nothing scanned."""
    return (
        ignore(
            "ACCESS_EXCLUSIVE_LOCK,MIXED_EXPAND_CONTRACT",
            "NOT VALID scans nothing; the recipe's trigger goes in the same transaction",
        )
        + f"ALTER TABLE {table} ADD CONSTRAINT {check}\n"
        f"  CHECK ({column} IS NOT NULL) NOT VALID;\n"
    )


def validate_version(slug: str, recipe: str, table: str, name: str, then: str = "",
                     down: str = "") -> Version:  # fmt: skip
    """The last contract version: VALIDATE in a transaction of its own, so that its scan holds
    SHARE UPDATE EXCLUSIVE only (reads and writes go on), not the ACCESS EXCLUSIVE lock the
    version before took to add the constraint NOT VALID; ``then`` follows it."""
    return Version(
        slug,
        f"-- patcher:contract (recipe {recipe}): validate {name} in its own transaction: the\n"
        "-- scan takes SHARE UPDATE EXCLUSIVE only, reads and writes go on\n"
        f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};\n" + then,
        f"-- down of the validation (recipe {recipe})"
        + (":\n" + down if down else ": nothing to undo, the next down drops the constraint\n"),
    )


def not_null_version(slug: str, recipe: str, table: str, column: str, check: str, *,
                     old_column: bool) -> Version:  # fmt: skip
    """Validate the NOT VALID check, then ``SET NOT NULL`` (it skips its scan: the validated
    check proves it; its ACCESS EXCLUSIVE lock comes after the scan) and drop the check.
    ``old_column``: the column is older than the recipe, so SET NOT NULL is contract there and
    the version mixes (a column the recipe added is not)."""
    then = (
        ignore(
            "ACCESS_EXCLUSIVE_LOCK,SET_NOT_NULL_SCANS" + (",MIXED_EXPAND_CONTRACT" * old_column),
            "the validated check above proves it, so PostgreSQL skips the scan; the whole "
            "version is contract",
        )
        + f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\n"
        + ignore("ACCESS_EXCLUSIVE_LOCK", "the check is only dropped: nothing is scanned")
        + f"ALTER TABLE {table} DROP CONSTRAINT {check};\n"
    )
    down = (
        ignore("ACCESS_EXCLUSIVE_LOCK,DROP_NOT_NULL", ROLLBACK)
        + f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;\n"
        + ignore("ACCESS_EXCLUSIVE_LOCK", "NOT VALID scans nothing; the next down drops it")
        + f"ALTER TABLE {table} ADD CONSTRAINT {check}\n  CHECK ({column} IS NOT NULL) NOT VALID;\n"
    )
    return validate_version(slug, recipe, table, check, then, down)


def dependents_check(recipe: str, table: str, old: str, new: str) -> str:
    """Refuse to go on while anything but its default and NOT NULL depends on ``old``: an
    index, a CHECK, UNIQUE, PRIMARY KEY or FOREIGN KEY, an identity or owned sequence, a view,
    another table's foreign key. The contract's ``DROP COLUMN`` would drop the first kinds
    silently (the new column would be left without them) and fail on the others after the
    release shift; the recipe cannot write their counterparts without the catalog. A query, not
    a DO block (that would classify the version contract): the cast fails loudly, naming them."""
    refusal = (
        f"recipe {recipe} cannot carry these over from {table}.{old} to {table}.{new}, and "
        f"the DROP COLUMN of the contract version would drop them or fail on them: "
    )
    advice = (
        f". Write their counterparts on {new} into the expand version (an index: CREATE INDEX "
        "CONCURRENTLY in a no-transaction version of its own after it; a constraint: NOT VALID, "
        "validated in the contract phase), then delete this check from both versions"
    )
    assert "'" not in refusal + advice  # literal SQL text: a quote would end the string
    return (
        f"SELECT CASE WHEN count(*) = 0 THEN 0 ELSE ('{refusal}' || string_agg(\n"
        "  pg_describe_object(d.classid, d.objid, d.objsubid), '; ' ORDER BY d.objid)\n"
        f"  || '{advice}')::integer END\n"
        "FROM pg_depend d JOIN pg_attribute a ON d.refobjid = a.attrelid AND d.refobjsubid = "
        "a.attnum\n"
        f"WHERE d.refclassid = 'pg_class'::regclass AND a.attrelid = '{table}'::regclass\n"
        f"  AND a.attname = '{old}' AND d.classid <> 'pg_attrdef'::regclass\n"
        "  AND NOT EXISTS (SELECT FROM pg_constraint n WHERE d.classid = "
        "'pg_constraint'::regclass\n"
        "    AND n.oid = d.objid AND n.contype = 'n');\n"
    )

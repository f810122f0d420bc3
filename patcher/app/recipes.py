"""``patcher new --recipe NAME``: the versions that make a breaking change in two releases
(SPEC 11 and 12): an expand version (new column or fill, with a trigger that keeps old and new
in step for writes of either release), a backfill version, and a contract version."""

from __future__ import annotations

import re
from pathlib import Path

from patcher.app.recipe_constraints import add_check, add_foreign_key, add_unique
from patcher.app.recipe_parts import (
    MAX_IDENTIFIER,
    ROLLBACK,
    Version,
    drop_trigger,
    ignore,
    trigger_name,
)
from patcher.app.scaffold import next_version
from patcher.core.errors import InvalidRequest

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*\Z")
TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\([0-9, ]+\))?(\[\])?\Z")
QUICK = "a nullable column without a default changes the catalog only: the lock is brief"

# recipe -> the arguments it needs, beside --table
RECIPE_ARGS: dict[str, tuple[str, ...]] = {
    "rename-column": ("column", "to", "type"),
    "change-type": ("column", "to", "type", "from_type"),
    "set-not-null": ("column", "default"),
    "add-check": ("column", "check", "fix"),
    "add-foreign-key": ("column", "references"),
    "add-unique": ("column", "fix"),
}
REFERENCES = re.compile(r"([a-z_][a-z0-9_$]*)\(([a-z_][a-z0-9_$]*)\)\Z")


def _identifier(flag: str, value: str | None) -> str:
    if value is None:
        raise InvalidRequest(f"--{flag} is missing: give the {flag} name")
    if not IDENTIFIER.match(value) or len(value) > MAX_IDENTIFIER:
        raise InvalidRequest(
            f"--{flag} {value!r} is not a plain identifier: use lower-case letters, digits and "
            f"underscores, starting with a letter, at most {MAX_IDENTIFIER} bytes"
        )
    return value


def _sync(fn: str, table: str, old: str, new: str) -> str:
    """A trigger that keeps ``old`` and ``new`` in step for writes of either release."""
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    IF NEW.{new} IS NULL THEN NEW.{new} := NEW.{old};\n"
        f"    ELSIF NEW.{old} IS NULL THEN NEW.{old} := NEW.{new};\n"
        "    END IF;\n"
        f"  ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} THEN NEW.{new} := NEW.{old};\n"
        f"  ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} THEN NEW.{old} := NEW.{new};\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$;\n"
        + ignore("CREATE_TRIGGER_LOCKS_TABLE", "held only for this short transaction")
        + f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
        f"  FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
    )


def _fill(fn: str, table: str, column: str, default: str) -> str:
    """A trigger that writes ``default`` where a write of the previous release leaves NULL."""
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF NEW.{column} IS NULL THEN NEW.{column} := ({default}); END IF;\n"
        "  RETURN NEW;\n"
        "END $$;\n"
        + ignore("CREATE_TRIGGER_LOCKS_TABLE", "held only for this short transaction")
        + f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
        f"  FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
    )


def _new_column(recipe: str, table: str, old: str, new: str, kind: str) -> list[Version]:
    fn = trigger_name(table, old, new, "sync")
    what = f"{table}.{new} ({kind}) beside {table}.{old}, kept in step by trigger {fn}"
    return [
        Version(
            f"expand_{recipe.replace('-', '_')}_{table}_{old}",
            f"-- expand (recipe {recipe}): {what}\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK", QUICK)
            + f"ALTER TABLE {table} ADD COLUMN {new} {kind};\n"
            + _sync(fn, table, old, new),
            f"-- down of the expand version (recipe {recipe})\n"
            + drop_trigger(fn, table, waive=True)
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_COLUMN", ROLLBACK)
            + f"ALTER TABLE {table} DROP COLUMN {new};\n",
        ),
        Version(
            f"backfill_{table}_{new}",
            "-- patcher:backfill batch_rows=10000\n"
            f"UPDATE {table} SET {new} = {old} WHERE {new} IS DISTINCT FROM {old};\n",
            f"-- down of the backfill (recipe {recipe}): nothing to undo, the expand version's\n"
            f"-- down drops {table}.{new}\n",
        ),
        Version(
            f"contract_{recipe.replace('-', '_')}_{table}_{old}",
            "-- patcher:contract "
            f"(recipe {recipe}): drop {table}.{old} and the trigger; run with\n"
            "-- --phase contract once the previous release can no longer receive traffic\n"
            + drop_trigger(fn, table, waive=False)
            + ignore(
                "ACCESS_EXCLUSIVE_LOCK,DROP_COLUMN,MIXED_EXPAND_CONTRACT",
                f"only the previous release read {old}; the sync trigger goes in the same "
                "transaction, or writes would fail in between",
            )
            + f"ALTER TABLE {table} DROP COLUMN {old};\n",
            f"-- down of the contract version (recipe {recipe}): {table}.{old} back, in step\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK", QUICK)
            + f"ALTER TABLE {table} ADD COLUMN {old} {{old_type}};\n"
            + _sync(fn, table, old, new)
            + f"UPDATE {table} SET {old} = {new} WHERE {old} IS DISTINCT FROM {new};\n",
        ),
    ]


def recipe_versions(recipe: str, args: dict[str, str | None]) -> list[Version]:
    """The versions ``recipe`` writes for ``args`` (``table``, ``column``, ``to``, ``type``,
    ``default``, ``from_type``); ``InvalidRequest`` naming what is wrong."""
    if recipe not in RECIPE_ARGS:
        raise InvalidRequest(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPE_ARGS)}")
    table = _identifier("table", args.get("table"))
    column = _identifier("column", args.get("column"))
    if recipe == "set-not-null":
        default = _expression("default", args.get("default"), "--default 0")
        return _set_not_null(table, column, default)
    if recipe == "add-check":
        check = _expression("check", args.get("check"), "--check 'age >= 0'")
        fix = _expression("fix", args.get("fix"), "--fix 'greatest(age, 0)'")
        return add_check(table, column, check, fix)
    if recipe == "add-foreign-key":
        found = REFERENCES.match((args.get("references") or "").replace(" ", ""))
        if not found:
            raise InvalidRequest(
                f"--references {args.get('references')!r} is missing or not TABLE(COLUMN) "
                "with plain identifiers: e.g. --references teams(id)"
            )
        return add_foreign_key(table, column, found[1], found[2])
    if recipe == "add-unique":
        fix = _expression("fix", args.get("fix"), "--fix NULL")
        return add_unique(table, column, fix)
    to = _identifier("to", args.get("to"))
    if to == column:
        raise InvalidRequest(f"--to {to!r} is the column itself: give the new column's name")
    kind = _type("type", args.get("type"))
    old_type = kind
    if recipe == "change-type":
        old_type = _type("from-type", args.get("from_type"))
    versions = _new_column(recipe, table, column, to, kind)
    last = versions[-1]
    versions[-1] = Version(last.slug, last.up, last.down.replace("{old_type}", old_type))
    return versions


def _expression(flag: str, value: str | None, example: str) -> str:
    if not value or not value.strip() or ";" in value or "$$" in value:
        raise InvalidRequest(
            f"--{flag} is missing or not one SQL expression (no ';' or '$$'): e.g. {example}"
        )
    return value.strip()


def _type(flag: str, value: str | None) -> str:
    if not value or not TYPE_NAME.match(value.strip()):
        raise InvalidRequest(
            f"--{flag} {value!r} is missing or not a type name: give one, e.g. text, "
            "bigint, numeric(12,2), varchar(80)"
        )
    return value.strip()


def _set_not_null(table: str, column: str, default: str) -> list[Version]:
    fn = trigger_name(table, column, "fill")
    check = trigger_name(table, column, "not_null")
    return [
        Version(
            f"expand_set_not_null_{table}_{column}",
            f"-- expand (recipe set-not-null): trigger {fn} writes {default} where a write\n"
            f"-- leaves {table}.{column} NULL\n" + _fill(fn, table, column, default),
            "-- down of the expand version (recipe set-not-null)\n"
            + drop_trigger(fn, table, waive=True),
        ),
        Version(
            f"backfill_{table}_{column}",
            "-- patcher:backfill batch_rows=10000\n"
            f"UPDATE {table} SET {column} = ({default}) WHERE {column} IS NULL;\n",
            "-- down of the backfill (recipe set-not-null): the rows keep their values\n",
        ),
        Version(
            f"contract_set_not_null_{table}_{column}",
            "-- patcher:contract "
            f"(recipe set-not-null): {table}.{column} NOT NULL, proved by a check\n"
            "-- validated first (SET NOT NULL then skips its scan); run with --phase contract\n"
            + ignore(
                "ACCESS_EXCLUSIVE_LOCK,MIXED_EXPAND_CONTRACT",
                "NOT VALID scans nothing; the fill trigger goes in the same transaction",
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
            + drop_trigger(fn, table, waive=False),
            "-- down of the contract version (recipe set-not-null)\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_NOT_NULL", ROLLBACK)
            + f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;\n"
            + _fill(fn, table, column, default),
        ),
    ]


def write_recipe(recipe: str, args: dict[str, str | None], folder: Path) -> list[Path]:
    """Write the recipe's versions with the next numbers (the folder's zero padding)."""
    versions = recipe_versions(recipe, args)
    folder.mkdir(parents=True, exist_ok=True)
    first = next_version(folder)
    width = len(first)
    paths: list[Path] = []
    for offset, version in enumerate(versions):
        number = str(int(first) + offset).zfill(width)
        for direction, text in (("up", version.up), ("down", version.down)):
            path = folder / f"{number}_{version.slug}.{direction}.sql"
            path.write_text(text)
            paths.append(path)
    return paths

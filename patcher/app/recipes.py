"""``patcher new --recipe NAME``: the versions that make a breaking change in two releases
(SPEC 11 and 12): an expand version (new column or fill, with a trigger that keeps old and new
in step for writes of either release), a backfill version, and a contract version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from patcher.app.recipe_constraints import add_check, add_foreign_key, add_unique
from patcher.app.recipe_parts import (
    MAX_IDENTIFIER,
    ROLLBACK,
    Version,
    dependents_check,
    drop_trigger,
    ignore,
    not_null_check,
    not_null_version,
    trigger_name,
)
from patcher.app.scaffold import next_version
from patcher.core.errors import InvalidRequest

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*\Z")
TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\([0-9, ]+\))?(\[\])?\Z")
QUICK = "a nullable column without a default changes the catalog only: the lock is brief"

# recipe -> the arguments it needs, beside --table
RECIPE_ARGS: dict[str, tuple[str, ...]] = {
    "rename-column": ("column", "to", "type", "default", "not_null"),
    "change-type": ("column", "to", "type", "from_type", "default", "not_null"),
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


def _sync(fn: str, table: str, old: str, new: str, default: str | None) -> str:
    """A trigger that keeps ``old`` and ``new`` in step for writes of either release. An insert
    of the next release leaves ``old`` NULL, or at its ``default`` (applied before the trigger):
    both mean "not written", so ``old`` takes ``new``."""
    unwritten = f"NEW.{old} IS NULL" + (
        f" OR NEW.{old} IS NOT DISTINCT FROM ({default})" if default is not None else ""
    )
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    IF NEW.{new} IS NULL THEN NEW.{new} := NEW.{old};\n"
        f"    ELSIF {unwritten} THEN NEW.{old} := NEW.{new};\n"
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


@dataclass(frozen=True)
class Column:
    """rename-column / change-type: the new column, and what the old one has that the new
    one gets at contract (its default and NOT NULL; SPEC 12)."""

    table: str
    old: str
    new: str
    kind: str
    old_kind: str
    default: str | None
    not_null: bool


def _new_column(recipe: str, c: Column) -> list[Version]:
    table, old, new = c.table, c.old, c.new
    fn = trigger_name(table, old, new, "sync")
    what = f"{table}.{new} ({c.kind}) beside {table}.{old}, kept in step by trigger {fn}"
    versions = [
        Version(
            f"expand_{recipe.replace('-', '_')}_{table}_{old}",
            f"-- expand (recipe {recipe}): {what}\n"
            + _as_told(c)
            + dependents_check(recipe, table, old, new)
            + ignore("ACCESS_EXCLUSIVE_LOCK", QUICK)
            + f"ALTER TABLE {table} ADD COLUMN {new} {c.kind};\n"
            + _sync(fn, table, old, new, c.default),
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
            f"(recipe {recipe}): drop {table}.{old} and the trigger; {table}.{new} gets its\n"
            "-- default and NOT NULL; run with --phase contract once the previous release can\n"
            "-- no longer receive traffic\n" + _contract(recipe, c, fn),
            f"-- down of the contract version (recipe {recipe}): {table}.{old} back, in step\n"
            + _contract_down(c, fn),
        ),
    ]
    if c.not_null:
        check = trigger_name(table, new, "not_null")
        versions.append(
            not_null_version(
                f"contract_validate_{table}_{new}", recipe, table, new, check, old_column=False
            )
        )
    return versions


def _as_told(c: Column) -> str:
    """Refuse to start when the old column's default or NOT NULL is not what the recipe was
    told (--default, --not-null): the trigger would let the columns drift apart, and contract
    would lose them."""
    told = f"{'true' if c.default is not None else 'false'}, {'true' if c.not_null else 'false'}"
    flags = f"{'with' if c.default is not None else 'without'} --default, " + (
        f"{'with' if c.not_null else 'without'} --not-null"
    )
    refusal = (
        f"recipe written for {c.table}.{c.old} {flags}, but its default or NOT NULL "
        "differs: write the recipe again with --default / --not-null as the column has"
    )
    return (  # a query (no DO block: that would classify contract): the cast fails loudly
        f"SELECT CASE WHEN (atthasdef, attnotnull) = ({told}) THEN 0\n"
        f"  ELSE ('{refusal} (' || attname || ')')::integer END\n"
        f"FROM pg_attribute WHERE attrelid = '{c.table}'::regclass AND attname = '{c.old}';\n"
    )


def _contract(recipe: str, c: Column, fn: str) -> str:
    table = c.table
    up = drop_trigger(fn, table, waive=False)
    if c.default is not None:
        up += ignore("ACCESS_EXCLUSIVE_LOCK", "a default changes the catalog only")
        up += f"ALTER TABLE {table} ALTER COLUMN {c.new} SET DEFAULT {c.default};\n"
    if c.not_null:  # its check is the first contract statement: the mix is waived there
        up += not_null_check(table, c.new, trigger_name(table, c.new, "not_null"))
    return (
        up
        + dependents_check(recipe, table, c.old, c.new)
        + (
            ignore(
                "ACCESS_EXCLUSIVE_LOCK,DROP_COLUMN"
                + ("" if c.not_null else ",MIXED_EXPAND_CONTRACT"),
                f"only the previous release read {c.old}; the sync trigger goes in the same "
                "transaction, or writes would fail in between",
            )
            + f"ALTER TABLE {table} DROP COLUMN {c.old};\n"
        )
    )


def _contract_down(c: Column, fn: str) -> str:
    table, old, new = c.table, c.old, c.new
    down = ""
    if c.default is not None:  # else inserts of the previous release would not sync
        down += ignore("ACCESS_EXCLUSIVE_LOCK,DROP_DEFAULT", ROLLBACK)
        down += f"ALTER TABLE {table} ALTER COLUMN {new} DROP DEFAULT;\n"
    if c.not_null:
        down += ignore("ACCESS_EXCLUSIVE_LOCK,DROP_CONSTRAINT", ROLLBACK)
        down += f"ALTER TABLE {table} DROP CONSTRAINT {trigger_name(table, new, 'not_null')};\n"
    default = f" DEFAULT {c.default}" if c.default is not None else ""
    down += (
        ignore(
            "ACCESS_EXCLUSIVE_LOCK", QUICK.replace("without a default", "with a constant default")
        )
        + f"ALTER TABLE {table} ADD COLUMN {old} {c.old_kind}{default};\n"
        + _sync(fn, table, old, new, c.default)
        + f"UPDATE {table} SET {old} = {new} WHERE {old} IS DISTINCT FROM {new};\n"
    )
    if c.not_null:
        down += ignore("ACCESS_EXCLUSIVE_LOCK,SET_NOT_NULL_SCANS", ROLLBACK)
        down += f"ALTER TABLE {table} ALTER COLUMN {old} SET NOT NULL;\n"
    return down


def recipe_versions(recipe: str, args: dict[str, str | None]) -> list[Version]:
    """The versions ``recipe`` writes for ``args`` (``table``, ``column``, ``to``, ``type``,
    ``default``, ``from_type``); ``InvalidRequest`` naming what is wrong."""
    if recipe not in RECIPE_ARGS:
        raise InvalidRequest(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPE_ARGS)}")
    table = _identifier("table", args.get("table"))
    if recipe == "add-unique":  # one column or several: --column tenant_id,email
        columns = [_identifier("column", c.strip()) for c in (args.get("column") or "").split(",")]
        fix = _expression("fix", args.get("fix"), "--fix NULL")
        return add_unique(table, columns, fix)
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
    to = _identifier("to", args.get("to"))
    if to == column:
        raise InvalidRequest(f"--to {to!r} is the column itself: give the new column's name")
    kind = _type("type", args.get("type"))
    old_kind = _type("from-type", args.get("from_type")) if recipe == "change-type" else kind
    given = args.get("default")
    old_default = None if given is None else _expression("default", given, "--default 0")
    not_null = bool(args.get("not_null"))
    return _new_column(recipe, Column(table, column, to, kind, old_kind, old_default, not_null))


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
            f"(recipe set-not-null): a check {table}.{column} IS NOT NULL for new writes\n"
            "-- (NOT VALID: nothing scanned); run with --phase contract\n"
            + not_null_check(table, column, check)
            + drop_trigger(fn, table, waive=False),
            "-- down of the contract version (recipe set-not-null)\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_CONSTRAINT", ROLLBACK)
            + f"ALTER TABLE {table} DROP CONSTRAINT {check};\n"
            + _fill(fn, table, column, default),
        ),
        not_null_version(
            f"contract_validate_not_null_{table}_{column}",
            "set-not-null",
            table,
            column,
            check,
            old_column=True,
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

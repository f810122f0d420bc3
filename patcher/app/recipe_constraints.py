"""Constraint recipes (SPEC 12): ``add-check`` and ``add-foreign-key``. The expand version is a
guard trigger that makes writes of either release satisfy the constraint, the backfill fixes the
rows already there, a contract version adds the constraint NOT VALID, the next validates it."""

from __future__ import annotations

from patcher.app.recipe_parts import (
    ROLLBACK,
    Version,
    drop_trigger,
    ignore,
    trigger_name,
    validate_version,
)


def guard(fn: str, table: str, column: str, check: str, fix: str) -> str:
    """A trigger that writes ``fix`` where a write would break ``check`` (``check`` and ``fix``
    read the written row's columns by name)."""
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF NOT (SELECT ({check}) FROM (SELECT NEW.*) AS {table}) THEN\n"
        f"    NEW.{column} := (SELECT ({fix}) FROM (SELECT NEW.*) AS {table});\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$;\n"
        + ignore("CREATE_TRIGGER_LOCKS_TABLE", "held only for this short transaction")
        + f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
        f"  FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
    )


def add_check(table: str, column: str, check: str, fix: str) -> list[Version]:
    fn = trigger_name(table, column, "guard")
    name = trigger_name(table, column, "check")
    return [
        Version(
            f"expand_add_check_{table}_{column}",
            f"-- expand (recipe add-check): trigger {fn} writes {fix} into {table}.{column}\n"
            f"-- where a write would break CHECK ({check})\n"
            + guard(fn, table, column, check, fix),
            "-- down of the expand version (recipe add-check)\n"
            + drop_trigger(fn, table, waive=True),
        ),
        Version(
            f"backfill_{table}_{column}",
            "-- patcher:backfill batch_rows=10000\n"
            f"UPDATE {table} SET {column} = ({fix}) WHERE NOT ({check});\n",
            "-- down of the backfill (recipe add-check): the rows keep their values\n",
        ),
        Version(
            f"contract_add_check_{table}_{column}",
            "-- patcher:contract "
            f"(recipe add-check): CHECK ({check}) on {table}, added NOT VALID\n"
            "-- (the next version validates it); run with --phase contract\n"
            + ignore(
                "ACCESS_EXCLUSIVE_LOCK,MIXED_EXPAND_CONTRACT",
                "NOT VALID scans nothing; the guard trigger goes in the same transaction",
            )
            + f"ALTER TABLE {table} ADD CONSTRAINT {name}\n  CHECK ({check}) NOT VALID;\n"
            + drop_trigger(fn, table, waive=False),
            "-- down of the contract version (recipe add-check)\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_CONSTRAINT", ROLLBACK)
            + f"ALTER TABLE {table} DROP CONSTRAINT {name};\n"
            + guard(fn, table, column, check, fix),
        ),
        validate_version(f"contract_validate_{table}_{column}_check", "add-check", table, name),
    ]


def orphans_trigger(fn: str, table: str, column: str, ref: str, ref_col: str) -> str:
    """A trigger on the referenced table: a delete (or key change) there sets the references
    to it NULL, as ON DELETE SET NULL would, so no orphan appears before VALIDATE."""
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF TG_OP = 'DELETE' OR OLD.{ref_col} IS DISTINCT FROM NEW.{ref_col} THEN\n"
        f"    UPDATE {table} SET {column} = NULL WHERE {column} = OLD.{ref_col};\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END $$;\n"
        + ignore("CREATE_TRIGGER_LOCKS_TABLE", "held only for this short transaction")
        + f"CREATE TRIGGER {fn} AFTER DELETE OR UPDATE OF {ref_col} ON {ref}\n"
        f"  FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
    )


# The expand version locks both tables in one transaction (the contract: ``both_locks``), and a
# statement of the application can hold one of them while it waits for the other (a delete in
# the referenced table whose trigger updates the referencing one; an insert with a CTE). The
# version gives up a lock wait before PostgreSQL's deadlock check (deadlock_timeout, 1 s by
# default) could cancel the application's statement instead; the run retries it.
TWO_TABLES = (
    "-- two tables in one transaction: a lock wait gives up before the deadlock check could\n"
    "-- cancel a statement of the application (the run retries after lock_timeout)\n"
    "SET LOCAL lock_timeout = '500ms';\n"
)


def both_locks(first: str, second: str) -> str:
    """The contract's locks on both tables at once, never waiting for one while holding the
    other: ``LOCK ... NOWAIT`` in a subtransaction, which gives back what it took when it fails,
    tried every 10 ms for ~10 s, then 55P03 (the run's lock_timeout retries). A wait for one
    table while holding the other (lock_timeout 500 ms) lost to the application's writes of both
    tables on every retry in 2 of 6 runs of the two-release proof on PG 15 (and one on 18)."""
    return (
        "-- both tables' locks at once, never waiting for one while holding the other (a cycle\n"
        "-- with the application's writes of both); the drops below then wait for nothing\n"
        + ignore("MIXED_EXPAND_CONTRACT", "takes the locks the version's drops need, nothing else")
        + "DO $$\nBEGIN\n  FOR attempt IN 1..1000 LOOP\n    BEGIN\n"
        f"      LOCK TABLE {first}, {second} IN ACCESS EXCLUSIVE MODE NOWAIT;\n"
        "      RETURN;\n    EXCEPTION WHEN lock_not_available THEN\n"
        "      PERFORM pg_sleep(0.01);\n    END;\n  END LOOP;\n"
        "  RAISE EXCEPTION USING ERRCODE = 'lock_not_available',\n"
        f"    MESSAGE = 'could not lock {first} and {second} together in 1000 tries';\n"
        "END $$;\n"
    )


def add_foreign_key(table: str, column: str, ref: str, ref_col: str) -> list[Version]:
    fn, orphans = trigger_name(table, column, "guard"), trigger_name(table, column, "orphans")
    name = trigger_name(table, column, "fkey")
    check = (
        f"{table}.{column} IS NULL OR EXISTS "
        f"(SELECT 1 FROM {ref} AS referenced WHERE referenced.{ref_col} = {table}.{column})"
    )
    # the referenced table first, as writes of either release lock them (a row in ref, then
    # the rows that reference it; a delete in ref, then its orphans trigger): the other order
    # deadlocked with the previous release's writes in the two-release test
    both = orphans_trigger(orphans, table, column, ref, ref_col) + guard(
        fn, table, column, check, "NULL"
    )
    index = trigger_name(table, column, "fkey_idx")
    return [
        Version(
            f"expand_add_foreign_key_index_{table}_{column}",
            "-- patcher:no-transaction\n"
            f"-- expand (recipe add-foreign-key): an index on {table}.{column}, built without\n"
            f"-- blocking writes, for the lookups of deletes in {ref} and of joins\n"
            f"CREATE INDEX CONCURRENTLY {index} ON {table} ({column});\n",
            "-- patcher:no-transaction\n"
            "-- down of the expand index version (recipe add-foreign-key)\n"
            f"DROP INDEX CONCURRENTLY IF EXISTS {index};\n",
        ),
        Version(
            f"expand_add_foreign_key_{table}_{column}",
            f"-- expand (recipe add-foreign-key): writes of {table}.{column} that reference no\n"
            f"-- {ref}.{ref_col} store NULL (trigger {fn}); deletes in {ref} set the references\n"
            f"-- NULL (trigger {orphans})\n" + TWO_TABLES + both,
            "-- down of the expand version (recipe add-foreign-key)\n"
            + drop_trigger(orphans, ref, waive=True)
            + drop_trigger(fn, table, waive=True),
        ),
        Version(
            f"backfill_{table}_{column}",
            "-- patcher:backfill batch_rows=10000\n"
            f"UPDATE {table} SET {column} = NULL WHERE NOT ({check});\n",
            "-- down of the backfill (recipe add-foreign-key): the rows keep their values\n",
        ),
        Version(
            f"contract_add_foreign_key_{table}_{column}",
            "-- patcher:contract "
            f"(recipe add-foreign-key): {table}.{column} REFERENCES {ref}({ref_col}),\n"
            "-- added NOT VALID (the next version validates it); run with --phase contract\n"
            + both_locks(ref, table)
            + drop_trigger(orphans, ref, waive=False)
            + f"ALTER TABLE {table} ADD CONSTRAINT {name}\n"
            f"  FOREIGN KEY ({column}) REFERENCES {ref} ({ref_col}) NOT VALID;\n"
            + drop_trigger(fn, table, waive=False),
            "-- down of the contract version (recipe add-foreign-key)\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_CONSTRAINT", ROLLBACK)
            + f"ALTER TABLE {table} DROP CONSTRAINT {name};\n"
            + both,
        ),
        validate_version(
            f"contract_validate_{table}_{column}_fkey", "add-foreign-key", table, name
        ),
    ]


def unique_guard(fn: str, table: str, columns: list[str], fix: str) -> str:
    """A trigger that writes ``fix`` into the last of ``columns`` where a write would duplicate
    another row's values of them all (a NULL in any is never a duplicate, as for UNIQUE); an
    advisory lock per value serialises writers of the same values, so two concurrent writes
    cannot both pass (READ COMMITTED sees the first once it commits)."""
    new, old = (", ".join(f"{row}.{c}" for c in columns) for row in ("NEW", "OLD"))
    nulls = " OR ".join(f"NEW.{c} IS NULL" for c in columns)
    same = " AND ".join(f"other.{c} = NEW.{c}" for c in columns)
    return (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF {nulls} OR (TG_OP = 'UPDATE' AND\n"
        f"      ROW({new}) IS NOT DISTINCT FROM ROW({old})) THEN\n"
        "    RETURN NEW;\n"
        "  END IF;\n"
        f"  PERFORM pg_advisory_xact_lock(hashtext('{fn}'), hashtext(ROW({new})::text));\n"
        f"  IF EXISTS (SELECT 1 FROM {table} AS other WHERE {same}) THEN\n"
        f"    NEW.{columns[-1]} := ({fix});\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$;\n"
        + ignore("CREATE_TRIGGER_LOCKS_TABLE", "held only for this short transaction")
        + f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {table}\n"
        f"  FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
    )


def add_unique(table: str, columns: list[str], fix: str) -> list[Version]:
    """UNIQUE over ``columns``; a duplicate gets ``fix`` in the last of them."""
    joined, listed, last = "_".join(columns), ", ".join(columns), columns[-1]
    fn, key = trigger_name(table, joined, "guard"), trigger_name(table, joined, "key")
    same = " AND ".join(f"other.{c} = {table}.{c}" for c in columns)
    return [
        Version(
            f"expand_add_unique_{table}_{joined}",
            f"-- expand (recipe add-unique): a write that would duplicate {table} ({listed})\n"
            f"-- stores {fix} in {last} instead (trigger {fn})\n"
            + unique_guard(fn, table, columns, fix),
            "-- down of the expand version (recipe add-unique)\n"
            + drop_trigger(fn, table, waive=True),
        ),
        Version(
            f"backfill_{table}_{joined}",
            "-- patcher:backfill batch_rows=10000\n"
            f"UPDATE {table} SET {last} = ({fix}) WHERE EXISTS (SELECT 1 FROM {table} AS other\n"
            f"  WHERE {same} AND other.ctid < {table}.ctid);\n",
            "-- down of the backfill (recipe add-unique): the rows keep their values\n",
        ),
        Version(
            f"contract_add_unique_index_{table}_{joined}",
            "-- patcher:no-transaction\n"
            "-- patcher:contract "
            f"(recipe add-unique): the unique index, built without blocking writes\n"
            f"CREATE UNIQUE INDEX CONCURRENTLY {key} ON {table} ({listed});\n",
            "-- patcher:no-transaction\n"
            "-- down of the contract index version (recipe add-unique)\n"
            f"DROP INDEX CONCURRENTLY IF EXISTS {key};\n",
        ),
        Version(
            f"contract_add_unique_{table}_{joined}",
            "-- patcher:contract "
            f"(recipe add-unique): UNIQUE ({listed}) on {table} from the index\n"
            + ignore(
                "ACCESS_EXCLUSIVE_LOCK,MIXED_EXPAND_CONTRACT",
                "USING INDEX scans nothing; the guard trigger goes in the same transaction",
            )
            + f"ALTER TABLE {table} ADD CONSTRAINT {key} UNIQUE USING INDEX {key};\n"
            + drop_trigger(fn, table, waive=False),
            "-- down of the contract version (recipe add-unique)\n"
            + ignore("ACCESS_EXCLUSIVE_LOCK,DROP_CONSTRAINT", ROLLBACK)
            + f"ALTER TABLE {table} DROP CONSTRAINT {key};\n"
            + unique_guard(fn, table, columns, fix),
        ),
    ]

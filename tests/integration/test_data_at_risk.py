"""Rollback previews say what the down scripts would destroy (SPEC section 4, data_at_risk),
from counts (no verify) or from running them in a rolled-back transaction (verify), and change
nothing either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patcher.cli.main import main
from patcher.cli.markdown import render_markdown
from patcher.core.data_loss import DELETE, DROP, DROP_COLUMN, Created, Probe
from patcher.db import data_counts
from tests.fixtures.engine import MigrationDir, Run, query, schema_snapshot
from tests.fixtures.postgres import PgConnect

ACCOUNTS = (
    "CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(50), score int);\n"
    "INSERT INTO accounts SELECT g, 'n' || g, g FROM generate_series(1, 100) g;\n"
)
MODES = [pytest.param(False, id="counted"), pytest.param(True, id="verify")]


def database_state(dsn: str) -> dict[str, object]:
    """Catalog, data, storage, history and audit log: what a preview must leave as it was."""
    state: dict[str, object] = dict(schema_snapshot(dsn))
    state["history"] = query(dsn, "SELECT * FROM schema_migrations ORDER BY version")
    state["log"] = query(dsn, "SELECT * FROM schema_migrations_log ORDER BY id")
    state["filenodes"] = query(
        dsn, "SELECT relname, relfilenode FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    )
    tables = [r[0] for r in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                       "'public' ORDER BY 1")]  # fmt: skip
    for table in tables:
        state[f"rows:{table}"] = query(dsn, f'SELECT t::text FROM "{table}" t ORDER BY 1')
    return state


def preview(run: Run, dsn: str, verify: bool, **fields: Any) -> list[dict[str, Any]]:
    """A rollback preview's entries; asserts it changed nothing."""
    before = database_state(dsn)
    result = run("rollback", dry_run=True, verify=verify, **fields)
    assert result["ok"] and result["status"] == "planned", result
    assert database_state(dsn) == before
    return list(result["migrations"])


def items(entry: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (i["relation"], i["column"], i["rows"], i["written_since_applied"], i["change"])
        for i in entry["data_at_risk"]
    }


@pytest.mark.parametrize("verify", MODES)
def test_rows_and_values_written_since_a_version_are_counted_exactly(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair("1", "accounts", ACCOUNTS, "DROP TABLE accounts;")
    mdir.pair(
        "2",
        "votes",
        "CREATE TABLE votes (id bigint PRIMARY KEY, account_id bigint, v int);\n"
        "ALTER TABLE accounts ADD COLUMN note text;\n",
        "DROP TABLE votes;\nALTER TABLE accounts DROP COLUMN note;\n",
    )
    assert run("migrate")["ok"]
    query(pg_dsn, "INSERT INTO votes SELECT g, mod(g, 100) + 1, 1 FROM generate_series(1, 30) g")
    query(pg_dsn, "UPDATE accounts SET note = 'x' WHERE id <= 10")
    [entry] = preview(run, pg_dsn, verify)
    assert entry["version"] == 2 and entry["applied_at"]
    assert items(entry) == {
        ("public.votes", None, 30, True, "drop"),
        ("public.accounts", "note", 10, True, "drop_column"),
    }
    assert not any(i["estimated"] for i in entry["data_at_risk"])


@pytest.mark.parametrize("verify", MODES)
def test_a_pre_existing_column_says_how_many_values_were_written_since(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair("1", "accounts", ACCOUNTS, "DROP TABLE accounts;")
    mdir.pair(
        "2",
        "scores",
        "CREATE INDEX accounts_score ON accounts (score);\n",
        "DROP INDEX accounts_score;\nALTER TABLE accounts DROP COLUMN score;\n",
    )
    assert run("migrate")["ok"]
    query(pg_dsn, "INSERT INTO accounts SELECT g, 'm', g FROM generate_series(101, 120) g")
    query(pg_dsn, "UPDATE accounts SET score = -score WHERE id <= 5")
    query(pg_dsn, "UPDATE accounts SET score = NULL WHERE id BETWEEN 6 AND 7")
    [entry] = preview(run, pg_dsn, verify)
    [item] = entry["data_at_risk"]
    assert (item["relation"], item["column"], item["rows"]) == ("public.accounts", "score", 118)
    assert item["written_since_applied"] is False
    assert item["rows_since_applied"] == 25  # 20 rows inserted, 5 values updated since


@pytest.mark.parametrize("verify", MODES)
def test_drop_cascade_reaches_an_inheriting_table_but_not_a_referencing_one(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair(
        "1",
        "events",
        "CREATE TABLE events (id bigint PRIMARY KEY, kind text);\n"
        "CREATE TABLE events_2026 () INHERITS (events);\n"
        "CREATE TABLE notes (id bigint, event_id bigint REFERENCES events (id));\n"
        "INSERT INTO events SELECT g, 'a' FROM generate_series(1, 5) g;\n"
        "INSERT INTO events_2026 SELECT g, 'b' FROM generate_series(6, 12) g;\n"
        "INSERT INTO notes SELECT g, g FROM generate_series(1, 3) g;\n",
    )
    mdir.pair(
        "2", "source", "ALTER TABLE events ADD COLUMN source text;", "DROP TABLE events CASCADE;"
    )
    assert run("migrate")["ok"]
    [entry] = preview(run, pg_dsn, verify)
    assert items(entry) == {
        ("public.events", None, 5, False, "drop"),
        ("public.events_2026", None, 7, False, "drop"),
    }


@pytest.mark.parametrize("verify", MODES)
def test_truncate_cascade_and_delete_where_with_its_cascade(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair(
        "1",
        "accounts",
        ACCOUNTS + "CREATE TABLE orders (id bigint, account_id bigint REFERENCES accounts "
        "ON DELETE CASCADE);\nINSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;\n",
    )
    mdir.pair("2", "purge", "SELECT 1;", "DELETE FROM accounts WHERE score > 90;")
    mdir.pair("3", "reset", "SELECT 1;", "TRUNCATE accounts CASCADE;")
    assert run("migrate")["ok"]
    three, two = preview(run, pg_dsn, verify, steps=2)
    assert items(three) == {
        ("public.accounts", None, 100, False, "truncate"),
        ("public.orders", None, 100, False, "truncate"),
    }
    if verify:  # run for real after the TRUNCATE: nothing is left to delete
        assert items(two) == set()
    else:  # counted on today's data (each script alone), with its ON DELETE CASCADE
        assert items(two) == {
            ("public.accounts", None, 10, False, "delete"),
            ("public.orders", None, 10, False, "delete"),
        }


@pytest.mark.parametrize("verify", MODES)
def test_truncate_only_leaves_the_inheriting_table(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair(
        "1",
        "events",
        "CREATE TABLE events (id bigint, kind text);\n"
        "CREATE TABLE events_2026 () INHERITS (events);\n"
        "INSERT INTO events SELECT g, 'a' FROM generate_series(1, 5) g;\n"
        "INSERT INTO events_2026 SELECT g, 'b' FROM generate_series(6, 12) g;\n",
    )
    mdir.pair("2", "reset", "SELECT 1;", "TRUNCATE ONLY events;\nTRUNCATE events_2026, events;")
    assert run("migrate")["ok"]
    [entry] = preview(run, pg_dsn, verify)  # each table once, however many statements
    assert len(entry["data_at_risk"]) == 2 and items(entry) == {
        ("public.events", None, 5, False, "truncate"),
        ("public.events_2026", None, 7, False, "truncate"),
    }


def test_verify_catches_the_cascade_of_a_delete_and_an_update(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair(
        "1",
        "accounts",
        ACCOUNTS + "CREATE TABLE orders (id bigint, account_id bigint REFERENCES accounts "
        "ON DELETE CASCADE);\nINSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;\n",
    )
    mdir.pair(
        "2",
        "purge",
        "SELECT 1;",
        "DELETE FROM accounts WHERE score > 90;\nUPDATE orders SET id = 0 WHERE id <= 4;\n",
    )
    assert run("migrate")["ok"]
    [entry] = preview(run, pg_dsn, True)
    assert items(entry) == {
        ("public.accounts", None, 10, False, "delete"),
        ("public.orders", None, 10, False, "delete"),
        ("public.orders", None, 4, False, "update"),
    }


@pytest.mark.parametrize("verify", MODES)
def test_a_narrowing_type_change_counts_the_values_it_changes(
    run: Run, mdir: MigrationDir, pg_dsn: str, verify: bool
) -> None:
    mdir.pair("1", "accounts", ACCOUNTS)
    mdir.pair(
        "2",
        "short",
        "SELECT 1;",
        "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(3) USING left(name, 3);\n"
        "ALTER TABLE accounts ALTER COLUMN score TYPE bigint;\n",
    )
    assert run("migrate")["ok"]
    [entry] = preview(run, pg_dsn, verify)
    assert items(entry) == {
        ("public.accounts", "name", 1, False, "alter_type"),  # 'n100' becomes 'n10'
        ("public.accounts", "score", 0, False, "alter_type"),  # widening: nothing changes
    }


def test_a_type_change_that_refuses_values_is_counted_and_verify_fails(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "accounts", ACCOUNTS)
    mdir.pair("2", "short", "SELECT 1;", "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(3);")
    assert run("migrate")["ok"]
    [entry] = preview(run, pg_dsn, False)
    assert items(entry) == {("public.accounts", "name", 1, False, "alter_type")}
    before = database_state(pg_dsn)
    result = run("rollback", dry_run=True, verify=True)
    assert result["status"] == "failed" and "too long" in result["error"]["message"]
    assert items(result["migrations"][0]) == {("public.accounts", "name", 1, False, "alter_type")}
    assert database_state(pg_dsn) == before


def test_past_its_budget_the_preview_falls_back_to_statistics(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "accounts", ACCOUNTS + "ANALYZE accounts;\n")
    mdir.pair("2", "purge", "SELECT 1;", "DROP TABLE accounts;")
    assert run("migrate")["ok"]
    result = run("rollback", dry_run=True, tuning={"count_budget_ms": 0})
    [item] = result["migrations"][0]["data_at_risk"]
    assert (item["rows"], item["estimated"]) == (100, True)
    assert "rows_since_applied" not in item


def test_a_table_or_column_the_version_created_is_counted_without_dating_its_rows(
    pg_connect: PgConnect,
) -> None:
    """Every row there is written since (the report drops the figure), so the count leaves
    out the ``age(xmin)`` test that keeps it from PostgreSQL's parallel workers."""
    conn = pg_connect()
    conn.execute("CREATE TABLE h (version bigint PRIMARY KEY)")
    conn.execute("INSERT INTO h VALUES (1)")
    for table in ("made", "old"):
        conn.execute(f"CREATE TABLE {table} (id int, note text)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, NULL)")
    found = [Probe(DROP, None, "made"), Probe(DELETE, None, "old", where="id > 1"),
             Probe(DROP_COLUMN, None, "old", column="note")]  # fmt: skip
    since = data_counts.Since(("public", "h"), 1)

    def counted(created: Created) -> list[tuple[Any, ...]]:
        losses = data_counts.estimate(conn, found, since, data_counts.Budget(5000, 5000), created)
        return [(x.relation, x.column, x.rows, x.since, x.estimated) for x in losses]

    assert counted(Created()) == [
        ("public.made", None, 3, 3, False),
        ("public.old", None, 2, 2, False),
        ("public.old", "note", 2, 2, False),
    ]
    assert counted(Created({"public.made"}, {("public.old", "note")})) == [
        ("public.made", None, 3, None, False),
        ("public.old", None, 2, 2, False),
        ("public.old", "note", 2, None, False),
    ]


def test_cli_prints_the_preview_as_markdown_and_renders_a_saved_result(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ["--source", str(mdir.path), "--database-url", pg_dsn]
    mdir.pair("1", "accounts", ACCOUNTS, "DROP TABLE accounts;")
    assert main(["migrate", *base]) == 0
    capsys.readouterr()
    assert main(["rollback", "--dry-run", "--format", "markdown", *base]) == 0
    md = capsys.readouterr().out
    assert "**rollback of 1 would drop 100 rows, all written since " in md
    assert "| public.accounts | - | drop | 100 | all (created by this version) |" in md
    assert main(["rollback", "--dry-run", "--json", *base]) == 0
    saved = tmp_path / "result.json"
    saved.write_text(capsys.readouterr().out)
    assert main(["render", str(saved)]) == 0
    assert render_markdown(json.loads(saved.read_text())) in capsys.readouterr().out
    assert main(["render", "--format", "text", str(saved)]) == 0
    assert "data at risk: rollback of 1 would drop 100 rows" in capsys.readouterr().out
    saved.write_text('{"ok": false}')
    assert main(["render", str(saved)]) == 2
    assert "not a patcher result" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["rollback", "--dry-run", "--json", "--format", "markdown", *base])
    assert stopped.value.code == 2

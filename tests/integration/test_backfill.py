"""Backfills (SPEC section 12) against a real PostgreSQL: ranges, checkpoint, resume, refusals,
dry run and verify, the Lambda deadline."""

from __future__ import annotations

import psycopg
import pytest

from tests.fixtures.engine import MigrationDir, Run

pytestmark = pytest.mark.db

_TABLE = """
CREATE TABLE items (id bigint PRIMARY KEY, n integer NOT NULL DEFAULT 0);
INSERT INTO items SELECT g, 0 FROM generate_series(1, {rows}) g;
"""


def _seed(pg_dsn: str, rows: int = 1000, sql: str = _TABLE) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.format(rows=rows))


def _counts(pg_dsn: str, table: str = "items") -> dict[int, int]:
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f"SELECT n, count(*) FROM {table} GROUP BY n").fetchall()
    return dict(rows)


def test_backfill_runs_in_ranges_and_records_with_the_last(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    _seed(pg_dsn, 1050)
    mdir.pair(
        "1", "bump", "-- patcher:backfill batch_rows=100\nUPDATE items SET n = n + 1", "SELECT 1"
    )
    result = run("migrate")
    assert result["status"] == "applied", result
    assert result["progress"] == {"rows_done": 1050, "rows_estimated": 1050, "ranges_done": 11}
    assert _counts(pg_dsn) == {1: 1050}
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM schema_migrations_bf").fetchone() == (0,)


def test_insert_select_ranges_over_the_table_it_reads(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    _seed(pg_dsn, 250)
    _seed(pg_dsn, 0, "CREATE TABLE copies (id bigint PRIMARY KEY, n int)")
    mdir.pair(
        "1",
        "copy",
        "-- patcher:backfill batch_rows=100\n"
        "INSERT INTO copies (id, n) SELECT i.id, i.n + 1 FROM items AS i WHERE i.id % 5 <> 0",
    )
    result = run("migrate")
    assert result["status"] == "applied", result
    assert result["progress"]["ranges_done"] == 3 and result["progress"]["rows_done"] == 200
    assert _counts(pg_dsn, "copies") == {1: 200}


def test_delete_with_a_where_in_ranges(pg_dsn: str, mdir: MigrationDir, run: Run) -> None:
    _seed(pg_dsn, 300)
    mdir.pair("1", "purge", "-- patcher:backfill batch_rows=64\nDELETE FROM items WHERE id > 100")
    assert run("migrate")["status"] == "applied"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*), max(id) FROM items").fetchone() == (100, 100)


@pytest.mark.parametrize(
    ("script", "line", "words"),
    [
        ("-- patcher:backfill\nUPDATE items SET n = 1;\nUPDATE items SET n = 2;\n", 3, "has 2"),
        ("-- patcher:backfill batch_rows=0\nUPDATE items SET n = 1;\n", 1, "batch_rows"),
        ("-- x\n-- patcher:backfill speed=9\nUPDATE items SET n = 1;\n", 2, "unknown"),
        ("-- patcher:backfill\nCREATE INDEX i ON items (n);\n", 2, "not UPDATE, DELETE"),
        ("-- patcher:backfill\n\nINSERT INTO items VALUES (0, 0);\n", 3, "INSERT ... VALUES"),
        ("-- patcher:backfill\nINSERT INTO items SELECT * FROM a JOIN b USING (id);\n", 2, "one"),
        ("-- patcher:backfill\n-- patcher:no-transaction\nUPDATE items SET n = 1;\n", 1, "exclude"),
    ],
)
def test_what_cannot_be_a_backfill_is_invalid_source_naming_file_and_line(
    pg_dsn: str, mdir: MigrationDir, run: Run, script: str, line: int, words: str
) -> None:
    _seed(pg_dsn, 10)
    mdir.pair("1", "bad", script)
    result = run("migrate", dry_run=True)
    error = result["error"]
    assert (result["status"], error["type"]) == ("invalid", "InvalidSource"), result
    assert error["message"].startswith(f"1_bad.up.sql line {line}:") and words in error["message"]


def test_a_table_without_primary_key_is_refused_at_run_time_and_nothing_changes(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    _seed(
        pg_dsn,
        10,
        "CREATE TABLE heap (n int); INSERT INTO heap SELECT 0 FROM generate_series(1, 10)",
    )
    mdir.pair("1", "first", "CREATE TABLE first (id int)")
    mdir.pair("2", "bump", "-- patcher:backfill\nUPDATE heap SET n = n + 1")
    result = run("migrate")
    assert result["error"]["type"] == "MigrationFailed"
    assert "has no primary key" in result["error"]["message"]
    assert _counts(pg_dsn, "heap") == {0: 10}
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


def test_dry_run_and_verify_show_ranges_key_and_one_range_measured(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    _seed(pg_dsn, 1000)
    mdir.pair("1", "bump", "-- patcher:backfill batch_rows=300\nUPDATE items SET n = n + 1")
    result = run("migrate", dry_run=True, verify=True)
    entry = result["migrations"][0]
    assert entry["backfill"]["key"] == ["id"] and entry["backfill"]["ranges_estimated"] == 4
    assert entry["backfill"]["rows_estimated"] == 1000
    assert [r["code"] for r in entry["risks"] if r["code"] == "UPDATE_WITHOUT_WHERE"] == []
    assert entry["verified"] is True and entry["duration_ms"] >= 0
    assert {"relation": "public.items", "mode": "RowExclusiveLock"} in entry["locks"]
    assert _counts(pg_dsn) == {0: 1000}  # rolled back


def test_lint_does_not_report_update_without_where_for_a_backfill(mdir: MigrationDir) -> None:
    from patcher.lint import LintReport, lint_text

    report = LintReport()
    lint_text("1_a.up.sql", "-- patcher:backfill\nUPDATE items SET n = n + 1;\n", report, set())
    assert "UPDATE_WITHOUT_WHERE" not in [f.code for f in report.findings]
    report = LintReport()
    lint_text("1_a.up.sql", "UPDATE items SET n = n + 1;\n", report, set())
    assert "UPDATE_WITHOUT_WHERE" in [f.code for f in report.findings]


def test_dry_run_of_a_backfill_over_a_table_an_earlier_version_creates(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    mdir.pair("1", "make", "CREATE TABLE later (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
    mdir.pair("2", "bump", "-- patcher:backfill\nUPDATE later SET n = n + 1")
    result = run("migrate", dry_run=True, verify=True)
    assert (result["status"], result["error"]) == ("planned", None), result
    entry = result["migrations"][1]
    assert "does not exist yet" in entry["backfill"]["note"] and entry["verified"] is True
    assert result["warnings"] == []
    assert run("migrate")["status"] == "applied"


def test_the_text_report_shows_the_backfill_and_its_progress(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    from patcher.cli.markdown import render_markdown
    from patcher.cli.report import render

    _seed(pg_dsn, 1000)
    mdir.pair("1", "bump", "-- patcher:backfill batch_rows=300\nUPDATE items SET n = n + 1")
    text = render(run("migrate", dry_run=True, verify=True))
    assert (
        'backfill over "items" by key (id): about 1,000 rows, 4 ranges of 300 rows; verify ran '
        "the next range:\nverify: ran in "
    ) in text
    assert "by key (id): about 1,000 rows, 4 ranges" in render_markdown(
        run("migrate", dry_run=True)
    )
    applied = run("migrate")
    assert "backfill progress: 1,000 of about 1,000 rows in 4 ranges" in render(applied)
    assert "backfill progress: 1,000 of about 1,000 rows in 4 ranges" in render_markdown(applied)


def test_status_shows_the_progress_of_a_backfill_part_way(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    _seed(pg_dsn, 1000)
    mdir.pair(
        "1",
        "bump",
        "-- patcher:backfill batch_rows=100\n"
        "UPDATE items SET n = n + 1 / (CASE WHEN id = 350 THEN 0 ELSE 1 END)",
    )
    assert "progress" not in run("status")  # not started: nothing to show
    failed = run("migrate")
    assert failed["status"] == "failed", failed
    status = run("status")
    assert status["status"] == "planned" and [p["version"] for p in status["pending"]] == [1]
    assert status["progress"] == {"rows_done": 300, "rows_estimated": 1000, "ranges_done": 3}
    assert _counts(pg_dsn) == {1: 300, 0: 700}
    from patcher.cli.report import render

    assert "backfill progress: 300 of about 1,000 rows in 3 ranges" in render(status)

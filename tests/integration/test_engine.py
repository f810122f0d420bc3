"""The engine against a real PostgreSQL: apply, revert, refuse, record."""

from __future__ import annotations

import psycopg

from tests.fixtures.engine import MigrationDir, Run, history, query, tables

THREE = [
    ("0001", "users", "CREATE TABLE users (id bigint PRIMARY KEY);", "DROP TABLE users;"),
    ("0002", "posts", "CREATE TABLE posts (id bigint PRIMARY KEY);", "DROP TABLE posts;"),
    ("0003", "tags", "CREATE TABLE tags (id bigint PRIMARY KEY);", "DROP TABLE tags;"),
]


def write_three(mdir: MigrationDir) -> None:
    for version, name, up, down in THREE:
        mdir.pair(version, name, up, down)


def test_migrate_up_to_a_target_then_the_rest(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    write_three(mdir)
    result = run("migrate", target=2)
    assert result["ok"] and result["status"] == "applied"
    assert [m["version"] for m in result["migrations"]] == [1, 2]
    assert result["current_version"] == 2
    assert [p["version"] for p in result["pending"]] == [3]
    assert tables(pg_dsn) >= {"users", "posts"} and "tags" not in tables(pg_dsn)

    result = run("migrate")
    assert [m["version"] for m in result["migrations"]] == [3]
    assert result["pending"] == [] and result["current_version"] == 3
    assert run("migrate")["status"] == "up_to_date"


def test_rollback_by_steps_and_by_target(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    write_three(mdir)
    run("migrate")
    result = run("rollback")  # one step by default
    assert result["status"] == "reverted" and [m["version"] for m in result["migrations"]] == [3]
    assert history(pg_dsn) == [(1, False), (2, False)]
    run("migrate")
    result = run("rollback", steps=2)
    assert [m["version"] for m in result["migrations"]] == [3, 2]
    assert result["current_version"] == 1
    run("migrate")
    result = run("rollback", target=0)
    assert [m["version"] for m in result["migrations"]] == [3, 2, 1]
    assert result["current_version"] is None
    assert [p["version"] for p in result["pending"]] == [1, 2, 3]
    assert not {"users", "posts", "tags"} & tables(pg_dsn)
    outcomes = query(pg_dsn, "SELECT direction, outcome, count(*) FROM schema_migrations_log "
                             "GROUP BY 1, 2 ORDER BY 1, 2")  # fmt: skip
    assert outcomes == [("down", "reverted", 6), ("up", "applied", 6)]


def test_rollback_refused_across_an_irreversible_version(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    mdir.pair("2", "b", "CREATE TABLE b (id int);")  # no down: irreversible
    mdir.pair("3", "c", "CREATE TABLE c (id int);", "DROP TABLE c;")
    run("migrate")
    result = run("rollback", target=0)
    assert result["ok"] is False and result["status"] == "invalid"
    assert result["error"]["type"] == "Irreversible" and result["error"]["version"] == 2
    assert "2_b.up.sql" in result["error"]["message"]
    assert history(pg_dsn) == [(1, False), (2, False), (3, False)]  # c was not reverted first
    assert {"a", "b", "c"} <= tables(pg_dsn)
    assert run("rollback", target=2)["status"] == "reverted"  # above it is fine


def test_error_in_third_statement_leaves_nothing_and_names_the_spot(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "ok", "CREATE TABLE ok (id int);")
    mdir.write(
        "2_broken.up.sql",
        "-- creates two tables, then fails\n"
        "CREATE TABLE first_t (id int);\n"
        "CREATE TABLE second_t (id int);\n"
        "INSERT INTO second_t\n  VALUES (1), (no_such_column);\n",
    )
    result = run("migrate")
    assert result["status"] == "failed" and result["ok"] is False
    error = result["error"]
    assert error["type"] == "MigrationFailed" and error["version"] == 2
    assert error["file"] == "2_broken.up.sql"
    assert (error["line"], error["column"]) == (5, 16)  # the bad column reference
    assert error["statement"] == 3
    assert "2_broken.up.sql line 5, column 16" in error["message"]
    assert [m["state"] for m in result["migrations"]] == ["applied", "failed"]
    assert {"first_t", "second_t"}.isdisjoint(tables(pg_dsn))
    assert history(pg_dsn) == [(1, False)]
    log = query(pg_dsn, "SELECT version, outcome, error FROM schema_migrations_log ORDER BY id")
    assert log[-1][:2] == (2, "failed") and "no_such_column" in log[-1][2]


def test_runtime_error_without_position_names_the_statement(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.write("1_div.up.sql", "CREATE TABLE t (id int);\nSELECT 1;\n\n  SELECT 1 / 0;\n")
    error = run("migrate")["error"]
    assert (error["line"], error["column"], error["statement"]) == (4, 3, 3)
    assert "division by zero" in error["message"]
    assert "t" not in tables(pg_dsn)


def test_drift_is_detected_and_repair_records_the_new_checksum(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    write_three(mdir)
    run("migrate", target=2)
    mdir.write("0002_posts.up.sql", "CREATE TABLE posts (id bigint PRIMARY KEY); -- edited\n")
    result = run("migrate")
    assert result["status"] == "invalid" and result["error"]["type"] == "ChecksumMismatch"
    assert "0002_posts.up.sql" in result["error"]["message"]
    assert "tags" not in tables(pg_dsn)
    assert run("migrate", dry_run=True)["error"]["type"] == "ChecksumMismatch"
    status = run("status")
    assert status["error"]["type"] == "ChecksumMismatch" and status["status"] == "invalid"
    assert [m["version"] for m in status["migrations"]] == [1, 2]  # the history, still shown

    preview = run("repair", dry_run=True)
    assert preview["status"] == "planned" and preview["migrations"][0]["version"] == 2
    assert run("migrate")["error"]["type"] == "ChecksumMismatch"  # the preview changed nothing
    assert run("repair")["status"] == "applied"
    assert run("migrate")["status"] == "applied"


def test_missing_migration_is_detected(run: Run, mdir: MigrationDir) -> None:
    write_three(mdir)
    run("migrate")
    (mdir.path / "0002_posts.up.sql").unlink()
    (mdir.path / "0002_posts.down.sql").unlink()
    result = run("migrate")
    assert result["error"]["type"] == "MissingMigration" and result["error"]["version"] == 2
    assert run("rollback")["error"]["type"] == "MissingMigration"


def test_out_of_order_pending_version_is_refused(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("0001", "users", THREE[0][2], THREE[0][3])
    mdir.pair("0003", "tags", THREE[2][2], THREE[2][3])
    run("migrate")
    mdir.pair("0002", "posts", THREE[1][2], THREE[1][3])
    result = run("migrate")
    assert result["error"]["type"] == "OutOfOrder" and result["error"]["version"] == 2
    assert "posts" not in tables(pg_dsn)


def test_baseline_on_empty_history_and_refused_on_a_non_empty_one(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    write_three(mdir)
    result = run("baseline", target=2)
    assert result["status"] == "applied" and result["current_version"] == 2
    assert {"users", "posts"}.isdisjoint(tables(pg_dsn))  # marked, not run
    assert history(pg_dsn) == [(1, False), (2, False)]
    assert [m["version"] for m in run("migrate")["migrations"]] == [3]
    again = run("baseline", target=3)
    assert again["status"] == "invalid" and again["error"]["type"] == "InvalidRequest"
    assert "empty history" in again["error"]["message"]
    assert history(pg_dsn) == [(1, False), (2, False), (3, False)]


def test_create_index_concurrently_under_the_directive(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (a int, b int);", "DROP TABLE t;")
    directive = "-- patcher:no-transaction\n"
    mdir.pair(
        "2",
        "idx",
        directive + "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
        "CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
        directive + "DROP INDEX CONCURRENTLY t_b;\nDROP INDEX CONCURRENTLY t_a;\n",
    )
    result = run("migrate")
    assert result["status"] == "applied"
    assert result["migrations"][1]["transactional"] is False
    indexes = query(pg_dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 't'")
    assert {r[0] for r in indexes} == {"t_a", "t_b"}
    assert history(pg_dsn) == [(1, False), (2, False)]
    assert run("rollback")["status"] == "reverted"
    assert query(pg_dsn, "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == [(0,)]


def test_concurrently_without_the_directive_is_refused_before_anything(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (a int);")
    mdir.pair("2", "idx", "CREATE INDEX CONCURRENTLY t_a ON t (a);")
    result = run("migrate")
    assert result["status"] == "invalid" and result["error"]["type"] == "InvalidSource"
    assert "patcher:no-transaction" in result["error"]["message"]
    assert "t" not in tables(pg_dsn)


def test_repair_after_a_crashed_no_transaction_migration(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (a int, b int);", "DROP TABLE t;")
    mdir.write(
        "2_idx.up.sql",
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n"
        "CREATE INDEX CONCURRENTLY t_b ON t (no_such);\n",
    )
    result = run("migrate")
    assert result["status"] == "failed" and result["error"]["line"] == 3
    assert "dirty" in result["error"]["message"]
    assert history(pg_dsn) == [(1, False), (2, True)]
    blocked = run("migrate")
    assert blocked["error"]["type"] == "DirtyDatabase" and "repair" in blocked["error"]["message"]
    assert run("rollback")["error"]["type"] == "DirtyDatabase"

    preview = run("repair", dry_run=True)
    assert preview["migrations"][0]["change"].startswith("removes the history row")
    assert history(pg_dsn) == [(1, False), (2, True)]
    assert run("repair")["status"] == "applied"
    assert history(pg_dsn) == [(1, False)]  # back to pending: migrate re-runs it

    mdir.write(
        "2_idx.up.sql",
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_b ON t (b);\n",
    )
    assert run("migrate")["status"] == "applied"
    assert history(pg_dsn) == [(1, False), (2, False)]


def test_dry_run_and_status_change_nothing(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    write_three(mdir)
    preview = run("migrate", dry_run=True)
    assert preview["status"] == "planned" and preview["dry_run"] is True
    assert [m["state"] for m in preview["migrations"]] == ["planned"] * 3
    assert preview["migrations"][0]["sql"] == THREE[0][2]
    status = run("status")
    assert status["status"] == "planned" and len(status["pending"]) == 3
    assert tables(pg_dsn) == set()  # not even the history table


def test_lock_timeout_statement_is_retried_then_fails_cleanly(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    from tests.fixtures.engine import make_runner

    mdir.pair("1", "t", "CREATE TABLE t (a int);")
    mdir.pair("2", "col", "ALTER TABLE t ADD COLUMN b int;")
    run = make_runner(pg_dsn, mdir.path, lock_timeout="100ms")
    run("migrate", target=1)
    with psycopg.connect(pg_dsn) as blocker:  # holds a lock ALTER TABLE must wait behind
        blocker.execute("LOCK TABLE t IN ACCESS SHARE MODE")
        result = run("migrate", tuning={"lock_retries": 2})
    assert result["status"] == "failed"
    assert result["error"]["sqlstate"] == "55P03"
    assert "lock_timeout" in result["error"]["message"]
    assert history(pg_dsn) == [(1, False)]
    log = query(pg_dsn, "SELECT outcome FROM schema_migrations_log WHERE version = 2")
    assert log == [("failed",)]
    assert run("migrate")["status"] == "applied"  # once the blocker is gone


def test_an_error_in_the_first_statement_is_located_exactly(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    # BEGIN travels in the same message as the first statement: positions must not shift.
    mdir.write("1_first.up.sql", "-- header\n  SELECT no_such_column FROM pg_class;\n")
    error = run("migrate")["error"]
    assert (error["line"], error["column"], error["statement"]) == (2, 10, 1)
    assert history(pg_dsn) == []


def test_a_failure_at_commit_leaves_nothing_and_says_so(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.write(
        "1_deferred.up.sql",
        "CREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (42);\n",  # checked only at COMMIT
    )
    result = run("migrate")
    error = result["error"]
    assert result["status"] == "failed" and error["type"] == "MigrationFailed"
    assert "at COMMIT" in error["message"] and "statement" not in error
    assert error["sqlstate"] == "23503"
    assert {"parent", "child"}.isdisjoint(tables(pg_dsn))
    assert history(pg_dsn) == []
    log = query(pg_dsn, "SELECT outcome FROM schema_migrations_log")
    assert log == [("failed",)]

"""Where a failure happened (file, line, column, statement) and what a lost session does."""

from __future__ import annotations

from tests.unit.engine.kit import Env, error_type, pending, states


def details(env: Env, script: str) -> dict[str, object]:
    env.source.pair(1, "x", script)
    out = env.run()
    assert out.error is not None and error_type(out) == "MigrationFailed"
    return {**out.error.details, "message": out.error.message}


def test_a_syntax_error_points_at_the_misspelled_word(env: Env) -> None:
    got = details(env, "SELECT 1;\nCREATE TABEL x (id int);\n")
    assert (got["line"], got["column"], got["statement"]) == (2, 8, 2)
    assert (got["file"], got["version"], got["sqlstate"]) == ("0001_x.up.sql", 1, "42601")
    assert "0001_x.up.sql line 2, column 8 (statement 2)" in str(got["message"])


def test_comments_and_indentation_before_the_statement_are_counted(env: Env) -> None:
    got = details(env, "-- leading\n\nSELECT 1;\n  INSERT INTO nope VALUES (1);\n")
    assert (got["line"], got["column"], got["statement"]) == (4, 15, 2)


def test_a_position_on_a_later_line_of_a_statement(env: Env) -> None:
    got = details(env, "CREATE TABLE a (\n  id int\n);\nINSERT INTO\n  nope VALUES (1);\n")
    assert (got["line"], got["column"], got["statement"]) == (5, 3, 2)


def test_an_error_without_a_position_points_at_the_statement_start(env: Env) -> None:
    got = details(env, "SELECT 1;\n\n   SELECT 1/0;\n")
    assert (got["line"], got["column"], got["statement"]) == (3, 4, 2)
    assert got["sqlstate"] == "22012"
    assert "rolled back, nothing of it remains" in str(got["message"])


def test_a_failure_at_commit_points_after_the_last_statement(env: Env) -> None:
    env.db.fail_commit(error="constraint")
    got = details(env, "SELECT 1;\nSELECT 2;\n")
    assert "statement" not in got
    assert (got["line"], got["sqlstate"]) == (3, "23505")
    assert "at COMMIT, after its last statement" in str(got["message"])
    assert env.versions() == []


def test_a_failure_stops_the_run_and_reports_the_rest_as_not_run(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "bad", "SELECT 1/0;")
    env.tables(3)
    out = env.run()
    assert out.status == "failed"
    assert states(out) == [(1, "up", "applied"), (2, "up", "failed"), (3, "up", "not_run")]
    assert pending(out) == [2, 3] and out.current_version == 1
    assert out.entries[1].duration_ms is not None


def test_a_failed_down_script_keeps_the_version_applied(env: Env) -> None:
    env.source.pair(1, "x", "CREATE TABLE x (id int);", "DROP TABLE x;\nSELECT 1/0;")
    env.run()
    out = env.run("rollback")
    assert out.error is not None and "version 1 down failed" in out.error.message
    assert env.versions() == [1] and "x" in env.user_tables()
    assert env.log()[-1] == (1, "down", "failed")


def test_a_lost_connection_in_a_migration_is_logged_from_a_new_session(env: Env) -> None:
    env.tables(1)
    env.db.fail_call("run_batch")
    out = env.run()
    assert (out.status, error_type(out)) == ("failed", "MigrationFailed")
    assert out.error is not None and "connection was lost" in out.error.message
    assert env.versions() == [] and env.user_tables() == set()
    assert env.log() == [(1, "up", "failed")]
    runner, logger = env.db.sessions
    assert env.db.log_rows()[0]["request_id"] == "req-1"
    assert runner.broken and logger.closed
    assert env.db.locks == {}


def test_a_lost_connection_outside_a_migration_is_database_unavailable(env: Env) -> None:
    env.tables(1)
    env.db.fail_call("read_history")
    out = env.run()
    assert (out.status, error_type(out)) == ("failed", "DatabaseUnavailable")
    assert env.db.locks == {}


def test_a_database_that_cannot_be_reached_is_database_unavailable(env: Env) -> None:
    env.tables(1)
    env.db.unreachable = True
    out = env.run()
    assert (out.status, error_type(out)) == ("failed", "DatabaseUnavailable")


def test_a_read_only_database_is_refused_before_any_write(env: Env) -> None:
    env.tables(1)
    env.db.state.default_read_only = True
    out = env.run()
    assert error_type(out) == "DatabaseUnavailable"
    assert out.error is not None and "read-only" in out.error.message
    assert env.db.table_names() == set()


def test_a_commit_lost_before_it_reached_the_server_reports_failed(env: Env) -> None:
    env.tables(1)
    env.db.fail_commit(error="lost", committed=False)
    out = env.run()
    assert out.status == "failed"
    assert env.versions() == [] and env.log() == [(1, "up", "failed")]


def test_a_commit_in_doubt_that_committed_is_reported_and_logged_as_applied(env: Env) -> None:
    env.tables(1)
    env.db.fail_commit(error="lost", committed=True)
    out = env.run()
    assert env.versions() == [1]  # the server did commit
    assert (1, "up", "failed") not in env.log()
    assert states(out) == [(1, "up", "applied")]

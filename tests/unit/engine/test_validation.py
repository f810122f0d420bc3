"""Everything is validated before the first change: source, dirty state, drift, order."""

from __future__ import annotations

import pytest

from tests.unit.engine.kit import NO_TX, Env, error_type, pending, states


def dirty_up(env: Env) -> None:
    """Version 2 is a no-transaction script that failed half-way: dirty up."""
    env.tables(1)
    env.source.pair(2, "half", NO_TX + "CREATE TABLE half (id int);\nSELECT 1/0;\n")
    env.run()
    assert env.dirty() == [(2, "up")]


def test_a_malformed_file_name_refuses_the_source_before_connecting(env: Env) -> None:
    env.tables(1)
    env.source.write("2-bad-name.up.sql", "SELECT 1;")
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "InvalidSource")
    assert env.db.sessions == []


def test_a_bad_script_later_in_the_plan_refuses_the_whole_run(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "copy", "COPY t1 FROM STDIN;\n")
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "InvalidSource")
    assert env.versions() == [] and env.user_tables() == set()
    assert env.db.table_names() == set()  # refused before even the history tables


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ("COPY t1 TO STDOUT;\n", "line 1: COPY ... TO STDOUT"),
        ("SELECT 1;\nCLUSTER;\n", "line 2: CLUSTER cannot run inside a transaction block"),
        (
            "CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql RETURN begin + 1;\n"
            "COMMIT;\n",
            "line 2: COMMIT is transaction control",
        ),
        ("SET standard_conforming_strings = off;\n", "line 1: a migration may not change"),
    ],
    ids=["copy-to-stdout", "bare-cluster", "commit-after-begin-parameter", "std-strings-off"],
)
def test_what_the_runner_refuses_is_refused_before_anything_runs(
    env: Env, script: str, said: str
) -> None:
    """Issue 26 items 2-5 (SPEC section 7 item 5), on the fake backend."""
    env.tables(1)
    env.source.pair(2, "bad", script)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "InvalidSource")
    assert out.error is not None and said in out.error.message
    assert env.versions() == [] and env.db.table_names() == set()


def test_concurrent_index_without_the_directive_is_refused(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "idx", "CREATE INDEX CONCURRENTLY i ON t1 (id);\n")
    out = env.run()
    assert error_type(out) == "InvalidSource"
    assert out.error is not None and "patcher:no-transaction" in out.error.message
    assert env.versions() == []


def test_a_dirty_version_refuses_migrate(env: Env) -> None:
    dirty_up(env)
    env.tables(3)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "DirtyDatabase")
    assert out.error is not None and out.error.details["version"] == 2
    assert "repair" in out.error.message
    assert "t3" not in env.user_tables()


def test_a_dirty_version_refuses_rollback(env: Env) -> None:
    dirty_up(env)
    out = env.run("rollback")
    assert error_type(out) == "DirtyDatabase"
    assert env.versions() == [1, 2]


def test_repair_of_a_dirty_up_makes_it_pending_again(env: Env) -> None:
    dirty_up(env)
    out = env.run("repair")
    assert out.status == "applied"
    assert states(out) == [(2, "up", "not_run")]  # pending again, not applied (issue 28)
    assert out.entries[0].change == (
        "removes the history row the unfinished up script left: the version is pending again"
    )
    assert pending(out) == [2]
    assert env.versions() == [1] and env.dirty() == []
    status = env.run("status")
    assert (status.status, pending(status)) == ("planned", [2])


def test_after_repair_migrate_runs_the_fixed_script_again(env: Env) -> None:
    dirty_up(env)
    env.run("repair")
    env.source.pair(2, "half", NO_TX + "CREATE TABLE IF NOT EXISTS half (id int);\n")
    out = env.run()
    assert states(out) == [(2, "up", "applied")]
    assert env.versions() == [1, 2] and env.dirty() == []


def test_repair_of_a_dirty_down_makes_it_applied_again(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "x", "CREATE TABLE x (id int);", NO_TX + "DROP TABLE x;\nSELECT 1/0;\n")
    env.run()
    env.run("rollback")
    assert env.dirty() == [(2, "down")]
    out = env.run("repair")
    assert states(out) == [(2, "down", "applied")]
    assert env.versions() == [1, 2] and env.dirty() == []
    assert env.run("status").status == "up_to_date"


def test_repair_dry_run_shows_what_it_would_do_and_changes_nothing(env: Env) -> None:
    dirty_up(env)
    out = env.run("repair", dry_run=True)
    assert out.status == "planned"
    assert states(out) == [(2, "up", "planned")]
    assert env.dirty() == [(2, "up")]


def test_repair_with_nothing_to_repair_says_so(env: Env) -> None:
    env.tables(1)
    env.run()
    out = env.run("repair")
    assert out.status == "up_to_date"
    assert any("nothing to repair" in w for w in out.warnings)


def test_a_changed_applied_file_refuses_migrate(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    env.source.pair(1, "t1", "CREATE TABLE t1 (id bigint);\n")
    env.tables(3)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "ChecksumMismatch")
    assert out.error is not None and "0001_t1.up.sql" in out.error.message
    assert env.versions() == [1, 2]


def test_repair_records_the_new_checksum_and_unblocks_migrate(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(1, "t1", "-- reformatted\nCREATE TABLE t1 (id int);\n")
    out = env.run("repair")
    assert out.entries[0].change == "records the changed file's new checksum"
    new = env.db.history_rows()[0]["checksum"]
    assert new == out.entries[0].checksum and new != env.db.log_rows()[0]["checksum"]
    assert env.log()[-1] == (1, "up", "rechecksummed")
    env.tables(2)
    assert env.run().status == "applied"


def test_unchanged_fingerprints_spare_reading_applied_files() -> None:
    env = Env(fingerprints=True)
    env.tables(1, 2)
    env.run()
    env.tables(3)
    env.source.reads.clear()
    out = env.run()
    assert out.status == "applied"
    assert env.source.reads == ["0003_t3.up.sql"]


def test_a_changed_fingerprint_is_read_and_drift_detected() -> None:
    env = Env(fingerprints=True)
    env.tables(1)
    env.run()
    env.source.pair(1, "t1", "CREATE TABLE t1 (id text);\n")
    out = env.run()
    assert error_type(out) == "ChecksumMismatch"


def test_an_applied_version_missing_from_the_source_is_refused(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    env.source.delete("0002_t2.up.sql")
    env.source.delete("0002_t2.down.sql")
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "MissingMigration")
    assert out.error is not None and out.error.details["version"] == 2


def test_a_pending_version_below_the_newest_applied_is_refused(env: Env) -> None:
    env.tables(1, 3)
    env.run()
    env.tables(2, 4)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "OutOfOrder")
    assert out.error is not None and out.error.details["version"] == 2
    assert env.versions() == [1, 3] and "t4" not in env.user_tables()
    assert pending(out) == [2, 4]  # refused, but the history was read: what is pending is known


def test_version_zero_is_refused_naming_the_file(env: Env) -> None:
    """Issue 26 item 10 (SPEC 2): version 0 is InvalidSource; target 0 could not revert it."""
    env.source.pair(0, "x", "CREATE TABLE x (id int);\n", "DROP TABLE x;\n")
    env.tables(1)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "InvalidSource")
    assert out.error is not None and "'0000_x.up.sql' has version 0" in out.error.message
    assert out.error.details["file"] == "0000_x.down.sql"  # the first name listed
    assert env.versions() == [] and env.user_tables() == set()


def test_a_history_row_zero_is_refused_with_what_to_do(env: Env) -> None:
    env.tables(1)
    env.run()
    env.db.state.tables["schema_migrations"].rows[0]["version"] = 0  # an older release's row
    for action in ("migrate", "rollback", "status", "repair"):
        out = env.run(action)
        assert (out.status, error_type(out)) == ("invalid", "InvalidSource"), action
        assert out.error is not None and "SET version = NEW WHERE version = 0" in out.error.message


def test_another_tools_history_refuses_migrate_while_ours_is_empty(env: Env) -> None:
    """Issue 26 item 12: migrate would run every version again; status only warns."""
    from tests.fakes.state import Table

    env.db.state.tables["goose_db_version"] = Table(
        ["id", "version_id", "is_applied", "tstamp"], rows=[{"version_id": 1}]
    )
    env.tables(1)
    out = env.run()
    assert (out.status, error_type(out)) == ("invalid", "ConfigError")
    assert out.error is not None
    assert "patcher adopt --from goose --table public.goose_db_version" in out.error.message
    assert env.versions() == [] and "t1" not in env.user_tables()
    status = env.run("status")
    assert status.error is None
    assert any("public.goose_db_version" in w for w in status.warnings)

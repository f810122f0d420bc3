"""A failed no-transaction script says what repair will do for its direction, and that is
what repair then does (issue 26 item 11): for a down, repair clears the mark and the version is
applied again; the next rollback re-runs the whole down script."""

from __future__ import annotations

from tests.fixtures.engine import MigrationDir, Run, history, query, tables

DOWN = "-- patcher:no-transaction\nDROP TABLE a;\nDROP INDEX CONCURRENTLY nope;\nDROP TABLE b;\n"


def test_a_failed_no_transaction_down_gives_the_down_advice(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "ab", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n", DOWN)
    assert run("migrate")["status"] == "applied"

    failed = run("rollback")

    assert failed["status"] == "failed"
    error = failed["error"]
    assert (error["sqlstate"], error["statement"]) == ("42704", 2)
    message = error["message"]
    assert message.startswith("version 1 down failed at 1_ab.down.sql line 3")
    assert "first statement ran and stays in effect, and the version is marked dirty" in message
    assert (
        "then run repair (it clears the dirty mark, the version is applied again (migrate will "
        "not re-run its up script), and the next rollback re-runs the whole down script from "
        "its first statement)"
    ) in message
    assert "pending again" not in message and "next migrate re-runs" not in message
    assert query(pg_dsn, "SELECT dirty, dirty_direction FROM schema_migrations") == [(True, "down")]

    # What it said is what repair does.
    assert run("repair")["status"] == "applied"
    assert history(pg_dsn) == [(1, False)]  # applied again
    assert run("migrate")["status"] == "up_to_date"  # the up script is not re-run
    assert tables(pg_dsn) >= {"b"} and "a" not in tables(pg_dsn)  # as the down left it
    again = run("rollback")  # re-runs the down from its first statement
    assert again["status"] == "failed"
    assert again["error"]["statement"] == 1 and 'table "a" does not exist' in str(again["error"])
    run("repair")
    mdir.write("1_ab.down.sql", DOWN.replace("TABLE a", "TABLE IF EXISTS a").replace(
        "nope", "IF EXISTS nope"))  # fmt: skip
    assert run("rollback")["status"] == "reverted"
    assert history(pg_dsn) == [] and not {"a", "b"} & tables(pg_dsn)

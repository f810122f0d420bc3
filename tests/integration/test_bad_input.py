"""Bad input: each a clear ``invalid`` result, and nothing changed in the database."""

from __future__ import annotations

import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir, Run, query, tables


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"1_a.up.sql": "SELECT 1;", "x1_b.up.sql": "SELECT 1;"}, "'x1_b.up.sql' does not parse"),
        ({"0007_x.up.sql": "SELECT 1;", "7_y.up.sql": "SELECT 1;"}, "version 7 has two up"),
        ({"1_a.up.sql": "SELECT 1;", "2_b.down.sql": "SELECT 1;"}, "'2_b.down.sql' has no"),
        ({"1_a.up.sql": "SELECT 1;", "1_b.down.sql": "SELECT 1;"}, "different descriptions"),
        ({"1_a.up.sql": b"SELECT 'caf\xe9';"}, "not valid UTF-8"),
        ({"1_a.up.sql": "COPY t FROM STDIN;"}, "COPY"),
        ({"1_a.up.sql": "BEGIN; CREATE TABLE x (i int); COMMIT;"}, "BEGIN"),
        ({"0000_x.up.sql": "CREATE TABLE x (i int);"}, "'0000_x.up.sql' has version 0"),
    ],
)
def test_invalid_source_is_refused_and_nothing_changes(
    run: Run, mdir: MigrationDir, pg_dsn: str, files: dict[str, str | bytes], needle: str
) -> None:
    mdir.pair("90", "base", "CREATE TABLE base (id int);")
    for name, text in files.items():
        mdir.write(name, text)
    for dry_run in (True, False):
        result = run("migrate", dry_run=dry_run)
        assert result["ok"] is False and result["status"] == "invalid"
        assert result["error"]["type"] == "InvalidSource"
        assert needle in result["error"]["message"]
    assert tables(pg_dsn) == set()


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"action": "explode"}, "unknown action"),
        ({"action": "rollback", "steps": 0}, "steps must be 1 or more"),
        ({"action": "rollback", "target": -1}, "out of range"),
        ({"action": "migrate", "steps": 2}, "steps is only for rollback"),
        ({"action": "rollback", "steps": 1, "target": 1}, "not both"),
        ({"action": "migrate", "verify": True}, "verify needs dry_run"),
        ({"action": "baseline"}, "baseline needs a target"),
    ],
)
def test_invalid_request_is_refused_and_nothing_changes(
    run: Run, mdir: MigrationDir, pg_dsn: str, fields: dict[str, object], needle: str
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    action = str(fields.pop("action"))
    result = run(action, **fields)
    assert result["status"] == "invalid" and result["error"]["type"] == "InvalidRequest"
    assert needle in result["error"]["message"]
    assert tables(pg_dsn) == set()


def test_cli_exit_codes(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    base = ["--source", str(mdir.path), "--database-url", pg_dsn]
    assert main(["migrate", *base]) == 0
    assert "1        a            up   applied" in capsys.readouterr().out
    assert main(["rollback", "--steps", "0", *base]) == 2  # bad usage
    assert main(["rollback", "--steps", "5", *base]) == 2
    mdir.write("1_a.up.sql", "CREATE TABLE a (id bigint);")  # drift
    assert main(["status", "--json", *base]) == 1
    assert '"type": "ChecksumMismatch"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["rollback", "--target", "-3", *base])
    assert exc.value.code == 2


def test_a_database_with_version_zero_applied_is_told_what_to_do(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    """Issue 26 item 10: a history row 0 (an older release applied 0000_x) is refused, saying
    how to move it; following that advice, the next migrate goes on."""
    mdir.pair("0001", "x", "CREATE TABLE x (i int);", "DROP TABLE x;")
    assert run("migrate")["ok"]
    query(pg_dsn, "UPDATE schema_migrations SET version = 0")  # as version 0 once applied
    for action in ("migrate", "rollback", "status"):
        refused = run(action, target=0) if action == "rollback" else run(action)
        assert refused["status"] == "invalid" and refused["error"]["type"] == "InvalidSource"
        assert "SET version = NEW WHERE version = 0" in refused["error"]["message"]
    query(pg_dsn, "UPDATE schema_migrations SET version = 1 WHERE version = 0")
    assert run("rollback", target=0)["status"] == "reverted"
    assert tables(pg_dsn) == {"schema_migrations", "schema_migrations_log", "schema_migrations_snp"}

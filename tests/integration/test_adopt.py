"""``patcher adopt`` (SPEC 10): per tool, a database whose history that tool wrote, adopted,
then migrated only past it and rolled back through the adopted versions; and each refusal
writing nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir, make_runner, query, tables
from tests.fixtures.foreign_tools import (
    FLYWAY_DDL,
    STEPS,
    apply_with_tool,
    flyway_row,
    run_dbmate,
    version_of,
    write_files,
)

TOOLS = ["golang-migrate", "flyway", "dbmate", "goose", "sqlx"]
OURS = "patcher_migrations"  # golang-migrate and dbmate hold schema_migrations already


def our_rows(dsn: str) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in query(dsn, f"SELECT version, description FROM {OURS} ORDER BY 1")]


@pytest.mark.parametrize("tool", TOOLS)
def test_adopt_then_migrate_only_newer_then_roll_back(
    pg_dsn: str, mdir: MigrationDir, tool: str
) -> None:
    apply_with_tool(tool, pg_dsn, mdir.path, 3)  # the other tool applied three versions
    write_files(tool, mdir.path, 4)  # and a fourth was written since
    run = make_runner(pg_dsn, mdir.path, table=OURS)
    versions = [version_of(tool, n) for n in (1, 2, 3, 4)]

    preview = run("adopt", adopt_from=tool, dry_run=True)
    assert preview["ok"] and preview["status"] == "planned", preview["error"]
    assert [m["version"] for m in preview["migrations"]] == versions[:3]
    assert OURS not in tables(pg_dsn)  # a dry run writes nothing

    adopted = run("adopt", adopt_from=tool)
    assert adopted["ok"] and adopted["status"] == "applied", adopted["error"]
    assert our_rows(pg_dsn) == [(v, d) for v, (d, _, _) in zip(versions[:3], STEPS, strict=False)]
    assert any("DROP TABLE" in w for w in adopted["warnings"])
    log = query(pg_dsn, f"SELECT version, outcome FROM {OURS}_log ORDER BY id")
    assert log == [(v, "adopted") for v in versions[:3]]

    migrated = run("migrate")
    assert migrated["ok"], migrated["error"]
    assert [m["version"] for m in migrated["migrations"]] == versions[3:]
    assert query(pg_dsn, "SELECT count(*) FROM information_schema.columns "
                 "WHERE table_name = 'a' AND column_name = 'note'") == [(1,)]  # fmt: skip

    back = run("rollback", target=0)
    assert back["ok"], back["error"]
    assert [m["version"] for m in back["migrations"]] == versions[::-1]
    assert {"a", "b"} & tables(pg_dsn) == set()
    assert our_rows(pg_dsn) == []


def test_adopting_twice_is_refused(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("goose", pg_dsn, mdir.path, 2)
    run = make_runner(pg_dsn, mdir.path)
    assert run("adopt", adopt_from="goose")["ok"]
    again = run("adopt", adopt_from="goose")
    assert again["error"]["type"] == "InvalidRequest"
    assert "already has 2 version(s)" in again["error"]["message"]


def test_goose_down_rows_count_as_reverted(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("goose", pg_dsn, mdir.path, 3)
    query(pg_dsn, "DROP INDEX b_a_id")  # goose down of 3, as goose < 3.x records it:
    query(pg_dsn, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (3, false)")
    result = make_runner(pg_dsn, mdir.path)("adopt", adopt_from="goose")
    assert [m["version"] for m in result["migrations"]] == [1, 2]


def refused(
    pg_dsn: str, mdir: MigrationDir, tool: str, adopt_table: str | None = None, **config: object
) -> dict[str, object]:
    run = make_runner(pg_dsn, mdir.path, **config)
    before = tables(pg_dsn)
    result = run("adopt", adopt_from=tool, adopt_table=adopt_table)
    assert result["status"] == "invalid", result
    assert tables(pg_dsn) == before  # nothing written, not even our tables
    error = result["error"]
    assert isinstance(error, dict)
    return error


def test_dirty_golang_migrate_is_refused(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("golang-migrate", pg_dsn, mdir.path, 2)
    query(pg_dsn, "UPDATE schema_migrations SET dirty = true")
    error = refused(pg_dsn, mdir, "golang-migrate", table=OURS)
    assert error["type"] == "DirtyDatabase"
    assert "version 2 dirty" in error["message"] and "migrate force" in error["message"]


def test_failed_sqlx_and_flyway_rows_are_refused(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("sqlx", pg_dsn, mdir.path, 2)
    query(pg_dsn, "UPDATE _sqlx_migrations SET success = false WHERE version = 2")
    assert refused(pg_dsn, mdir, "sqlx")["type"] == "DirtyDatabase"
    query(pg_dsn, FLYWAY_DDL)
    flyway_dir = MigrationDir(mdir.path.parent / "flyway")
    flyway_dir.path.mkdir()
    ups = write_files("flyway", flyway_dir.path, 2)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        flyway_row(conn, 1, ups[1])
        flyway_row(conn, 2, ups[2], success=False)
    error = refused(pg_dsn, flyway_dir, "flyway")
    assert error["type"] == "DirtyDatabase" and "flyway repair" in error["message"]


def test_a_version_with_no_file_is_refused(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("dbmate", pg_dsn, mdir.path, 2)
    (mdir.path / f"{version_of('dbmate', 2)}_create_b.sql").unlink()
    error = refused(pg_dsn, mdir, "dbmate", table=OURS)
    assert error["type"] == "MissingMigration"
    assert str(version_of("dbmate", 2)) in error["message"]


@pytest.mark.parametrize("tool", ["golang-migrate", "dbmate"])
def test_the_schema_migrations_name_clash_names_patcher_table(
    pg_dsn: str, mdir: MigrationDir, tool: str
) -> None:
    apply_with_tool(tool, pg_dsn, mdir.path, 1)
    error = refused(pg_dsn, mdir, tool)  # PATCHER_TABLE left at schema_migrations
    assert error["type"] == "ConfigError"
    assert "PATCHER_TABLE=patcher_migrations" in error["message"]
    migrate = make_runner(pg_dsn, mdir.path)("migrate")  # and a plain migrate says so too
    assert "PATCHER_TABLE" in migrate["error"]["message"]
    assert f"adopt --from {tool} --table public.schema_migrations" in migrate["error"]["message"]


def test_a_table_of_another_tool_is_named(pg_dsn: str, mdir: MigrationDir) -> None:
    apply_with_tool("goose", pg_dsn, mdir.path, 1)
    error = refused(pg_dsn, mdir, "sqlx", adopt_table="goose_db_version")
    assert error["type"] == "ConfigError" and "--from goose" in error["message"]


def test_cli_adopt_with_the_real_dbmate(
    pg_dsn: str,
    mdir: MigrationDir,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply_with_tool("dbmate", pg_dsn, mdir.path, 2)
    monkeypatch.setenv("PATCHER_TABLE", OURS)
    argv = ["adopt", "--from", "dbmate", "--source", str(mdir.path), "--database-url", pg_dsn]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "adopt: applied" in out and "DROP TABLE" in out
    write_files("dbmate", mdir.path, 4)
    assert main(["migrate", "--source", str(mdir.path), "--database-url", pg_dsn]) == 0
    status = run_dbmate(pg_dsn, mdir.path, "status")  # dbmate's own table was left alone
    assert "[ ] 20240101000003_index_b.sql" in status


def test_cli_adopt_bad_usage_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["adopt", "--from", "liquibase"])
    assert info.value.code == 2


def test_migrate_meets_dbmate_history_in_another_schema_of_the_search_path(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    """Issue 26 item 12, measure-sh's setup: dbmate keeps measure.schema_migrations (its URL's
    search_path), ours would be public.schema_migrations. A plain migrate ran every version
    again from the first; now it is refused naming the table and the adopt command."""
    dbname = psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    sep = "&" if "?" in pg_dsn else "?"
    apply_with_tool("dbmate", pg_dsn + f"{sep}search_path=measure", mdir.path, 2)
    assert query(pg_dsn, "SELECT count(*) FROM measure.schema_migrations") == [(2,)]
    query(pg_dsn, f"ALTER DATABASE {dbname} SET search_path = measure, public")
    write_files("dbmate", mdir.path, 3)
    run = make_runner(pg_dsn, mdir.path)
    for dry_run in (True, False):
        refused = run("migrate", dry_run=dry_run)
        assert (refused["status"], refused["error"]["type"]) == ("invalid", "ConfigError")
        message = refused["error"]["message"]
        assert "dbmate's history table measure.schema_migrations" in message
        assert "patcher adopt --from dbmate --table measure.schema_migrations" in message
    assert query(pg_dsn, "SELECT to_regclass('public.schema_migrations')") == [(None,)]
    status = run("status")
    assert status["ok"] and any("measure.schema_migrations" in w for w in status["warnings"])
    adopted = run("adopt", adopt_from="dbmate", adopt_table="measure.schema_migrations")
    assert adopted["status"] == "applied", adopted["error"]
    done = run("migrate")
    assert [m["version"] for m in done["migrations"]] == [version_of("dbmate", 3)]


def test_a_goose_table_with_only_its_marker_row_is_not_a_history(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    query(pg_dsn, "CREATE SCHEMA tools")
    query(pg_dsn, "CREATE TABLE tools.goose_db_version (id serial, version_id bigint, "
          "is_applied boolean, tstamp timestamp default now())")  # fmt: skip
    query(pg_dsn, "INSERT INTO tools.goose_db_version (version_id, is_applied) VALUES (0, true)")
    dbname = psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    query(pg_dsn, f"ALTER DATABASE {dbname} SET search_path = public, tools")
    mdir.pair("1", "a", "CREATE TABLE a (i int);")
    run = make_runner(pg_dsn, mdir.path)
    assert run("migrate")["status"] == "applied"


def test_a_waiting_adopt_waits_as_a_run_does_and_names_the_holder(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    """Issue 27 item 5: adopt waits in the runner's lock wait: ``lock_waiting`` events naming
    the holder, then ``locked`` with the holder's pid and name; once the holder lets go (at the
    first event), it proceeds."""
    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request
    from patcher.db import lock_key
    from tests.fixtures.engine import FAST

    apply_with_tool("goose", pg_dsn, mdir.path, 2)
    config = Config(source=str(mdir.path), database_url=pg_dsn, table=OURS, lock_wait_seconds=0.3)
    seen: list[tuple[str, dict[str, object]]] = []

    def adopt(events: object) -> dict[str, object]:
        invocation = Invocation(conninfo=lambda: pg_dsn, events=events, tuning=FAST)  # type: ignore[arg-type]
        return execute(Request("adopt", adopt_from="goose"), config, invocation).to_dict()

    with psycopg.connect(pg_dsn, autocommit=True, application_name="holder-app") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", OURS),))
        pid = holder.info.backend_pid
        result = adopt(lambda name, fields: seen.append((name, fields)))
        assert result["status"] == "locked", result
        error = result["error"]
        assert isinstance(error, dict) and error["type"] == "LockTimeout"
        assert error["holder_pid"] == pid and error["holder_application_name"] == "holder-app"
        waiting = [f for name, f in seen if name == "lock_waiting"]
        assert waiting and waiting[0]["holder_pid"] == pid
        assert OURS not in tables(pg_dsn)

        def let_go(name: str, _fields: dict[str, object]) -> None:
            seen.append((name, _fields))
            if name == "lock_waiting":
                holder.execute("SELECT pg_advisory_unlock_all()")

        seen.clear()
        result = adopt(let_go)
    assert result["ok"] and result["status"] == "applied", result["error"]
    # (besides the connection attempts, logged since issue 33)
    assert [name for name, _ in seen if name.startswith("lock_")] == [
        "lock_waiting",
        "lock_acquired",
    ]
    assert [v for v, _ in our_rows(pg_dsn)] == [version_of("goose", 1), version_of("goose", 2)]

"""Flyway repeatable scripts (SPEC 2a): after the versioned ones when new or changed, in
description order, recorded in the audit log apart from the history, shown by status and dry
runs; and adopted from Flyway's history when Flyway ran the very same file."""

from __future__ import annotations

import psycopg

from tests.fixtures.engine import MigrationDir, Run, query
from tests.fixtures.foreign_tools import apply_with_tool, flyway_row

VIEW = "create or replace view user_names as select id, name from users;\n"
FUNC = "create or replace function user_count() returns bigint\nlanguage sql as $$ select count(*) from users $$;\n"  # noqa: E501


def flyway_dir(mdir: MigrationDir) -> None:
    mdir.write("V1__users.sql", "create table users (id bigint primary key, name text);\n")
    mdir.write("U1__users.sql", "drop view if exists user_names;\ndrop table users;\n")
    mdir.write("R__user_names.sql", VIEW)
    mdir.write("R__count.sql", FUNC)


def shown(result: dict[str, object]) -> list[tuple[object, object, object]]:
    return [(m["version"], m["description"], m["state"]) for m in result["migrations"]]  # type: ignore[attr-defined, index]


def test_repeatables_run_after_versions_when_new_or_changed(run: Run, mdir: MigrationDir) -> None:
    flyway_dir(mdir)
    first = run("migrate")
    assert first["ok"], first["error"]
    assert shown(first) == [
        (1, "users", "applied"), (None, "count", "applied"), (None, "user_names", "applied")
    ]  # fmt: skip
    assert all(m.get("repeatable") for m in first["migrations"][1:])
    assert run("migrate")["status"] == "up_to_date"

    mdir.write("R__user_names.sql", VIEW.replace("id, name", "id, upper(name) AS name"))
    status = run("status")
    assert status["status"] == "planned"
    assert shown(status) == [
        (1, "users", "applied"), (None, "count", "applied"), (None, "user_names", "planned")
    ]  # fmt: skip
    dry = run("migrate", dry_run=True)
    assert shown(dry) == [(None, "user_names", "planned")]
    assert "upper(name)" in dry["migrations"][0]["sql"]
    assert dry["migrations"][0]["risks"] == []  # a view replaced: nothing to warn about
    mdir.write("R__purge.sql", "truncate users;\n")
    risky = run("migrate", dry_run=True)
    assert "TRUNCATE" in [r["code"] for r in risky["migrations"][0]["risks"]]
    (mdir.path / "R__purge.sql").unlink()
    again = run("migrate")
    assert shown(again) == [(None, "user_names", "applied")]
    assert run("migrate")["status"] == "up_to_date"


def test_repeatables_are_audit_rows_with_no_version(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    flyway_dir(mdir)
    assert run("migrate")["ok"]
    rows = query(pg_dsn, "SELECT version, description, outcome FROM schema_migrations_log "
                 "WHERE version IS NULL ORDER BY id")  # fmt: skip
    assert rows == [(None, "count", "applied"), (None, "user_names", "applied")]
    assert query(pg_dsn, "SELECT version FROM schema_migrations") == [(1,)]


def test_a_failing_repeatable_is_reported_and_runs_again(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    flyway_dir(mdir)
    mdir.write(
        "R__user_names.sql", "create or replace view user_names as\nselect nope from users;\n"
    )
    failed = run("migrate")
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "MigrationFailed"
    assert failed["error"]["file"] == "R__user_names.sql" and failed["error"]["line"] == 2
    assert shown(failed)[-1] == (None, "user_names", "failed")
    assert query(pg_dsn, "SELECT version FROM schema_migrations") == [(1,)]  # kept
    mdir.write("R__user_names.sql", VIEW)
    fixed = run("migrate")
    assert shown(fixed) == [(None, "user_names", "applied")]


def test_a_no_transaction_repeatable_from_its_script_config(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    flyway_dir(mdir)
    mdir.write(
        "R__name_index.sql", "create index concurrently if not exists users_name on users (name);\n"
    )
    mdir.write("R__name_index.sql.conf", "executeInTransaction=false\n")
    result = run("migrate")
    assert result["ok"], result["error"]
    index = [m for m in result["migrations"] if m["description"] == "name_index"]
    assert index[0]["transactional"] is False
    assert query(
        pg_dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_name'::regclass"
    ) == [(True,)]


def test_adopt_records_repeatables_flyway_ran_unchanged(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    apply_with_tool("flyway", pg_dsn, mdir.path, 1)
    (mdir.path / "V1__create_a.sql").write_text("create table a (id int primary key);\n")
    mdir.write("R__same.sql", "create or replace view same_v as select 1 AS one;\n")
    mdir.write("R__changed.sql", "create or replace view changed_v as select 2 AS two;\n")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create view same_v as select 1 AS one")
        flyway_row(conn, None, mdir.path / "R__same.sql")
        flyway_row(conn, None, mdir.path / "R__changed.sql")
    mdir.write("R__changed.sql", "create or replace view changed_v as select 3 AS two;\n")
    adopted = run("adopt", adopt_from="flyway")
    assert shown(adopted) == [(1, "create_a", "applied"), (None, "same", "applied")]
    assert shown(run("migrate")) == [(None, "changed", "applied")]
    assert query(pg_dsn, "SELECT two FROM changed_v") == [(3,)]


def test_two_waiting_runs_apply_a_repeatable_once(pg_dsn: str, mdir: MigrationDir) -> None:
    """Issue 26 item 8: the due repeatables are decided under the lock, so a run that waited
    does not re-run the one the lock's holder just ran."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request
    from patcher.db import lock_key
    from tests.fixtures.engine import FAST

    mdir.write("V1__hits.sql", "create table hits (n int);\n")
    config = Config(source=str(mdir.path), database_url=pg_dsn, lock_wait_seconds=30)
    first = execute(Request("migrate"), config, Invocation(conninfo=lambda: pg_dsn)).to_dict()
    assert first["ok"], first["error"]
    mdir.write("R__rv.sql", "insert into hits values (1);\n")  # due, not versioned: no wait
    waiting, told = threading.Barrier(3), set()

    def events(name: str, _fields: dict[str, object]) -> None:
        if name == "lock_waiting" and threading.get_ident() not in told:
            told.add(threading.get_ident())
            waiting.wait(timeout=30)  # each run once, at its first poll of the held lock

    def migrate(i: int) -> dict[str, object]:
        invocation = Invocation(
            request_id=f"r{i}", conninfo=lambda: pg_dsn, events=events, tuning=FAST
        )
        return execute(Request("migrate"), config, invocation).to_dict()

    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(migrate, i) for i in range(2)]
            waiting.wait(timeout=30)  # both runs planned and wait for the lock
            holder.execute("SELECT pg_advisory_unlock_all()")
            results = [f.result() for f in futures]
    assert all(r["ok"] for r in results), [r["error"] for r in results]
    assert query(pg_dsn, "SELECT count(*) FROM hits") == [(1,)]
    assert sorted(str(r["status"]) for r in results) == ["applied", "up_to_date"]

"""What the runner relies on that differs between PostgreSQL majors, shown on the session's
server: the matrix (``make test-matrix``, ``.ci/run``) runs this module on 13 and 18, and every
other major. Each test asks the server its ``server_version_num`` and expects what that major
does; none is skipped.

- ``client_connection_check_interval`` (PG 14+) is set at connect and after every script; on
  13 it does not exist, is not asked for, and connecting works all the same.
- ``statement_timeout`` caps each statement of a script sent in one message (PG 13+): a script
  of short statements passes a cap that their sum exceeds; one long statement is cancelled.
- ``ALTER TYPE ... ADD VALUE`` runs inside the migration's transaction (PG 12+), but the new
  value cannot be used before COMMIT: a script that does both fails and leaves nothing.
- PUBLIC's CREATE on schema ``public`` (gone in 15): a role without its own grant gets the
  runner's ConfigError on 15+ and can migrate before 15.
- The lock holder report (``pg_locks`` joined to ``pg_stat_activity``) names the holder.
- Syntax newer than the server (MERGE 15, JSON_TABLE 17, RETURNING OLD/NEW 18): a dry run
  never crashes: on a major that has it, it is planned and applied; on an older one the
  server's own syntax error is the verified dry run's MigrationFailed, and nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from patcher.db import advisory_lock, connection
from tests.fixtures.engine import MigrationDir, Run, login_role, make_runner, query, tables
from tests.fixtures.postgres import PgServer


def _connect(dsn: str, statement_timeout: str | None = None) -> psycopg.Connection[Any]:
    return connection.connect(
        dsn,
        application_name="patcher:majors-test",
        lock_timeout="5s",
        statement_timeout=statement_timeout,
        connect_timeout=10,
        sslmode=None,
        sslrootcert=None,
    )


def _setting(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- sessions


def test_client_check_is_set_where_the_server_has_it(pg_dsn: str, pg_server: PgServer) -> None:
    has_check = pg_server.server_version >= 140000
    with _connect(pg_dsn) as conn:
        # pg_settings: in ms; absent on 13, where connect() must not have asked for it.
        assert _setting(conn, "client_connection_check_interval") == ("1000" if has_check else None)
        restore = connection.restore_sql(conn)
        assert ("client_connection_check_interval" in restore) is has_check
        conn.execute("SET lock_timeout = '1min'")
        conn.execute(restore)  # the statements run after every script: valid on this major
        assert _setting(conn, "lock_timeout") == "5000"
        if has_check:
            assert _setting(conn, "client_connection_check_interval") == "1000"


def test_statement_timeout_caps_each_statement_of_a_script(pg_dsn: str, mdir: MigrationDir) -> None:
    run = make_runner(pg_dsn, mdir.path, statement_timeout="1s")
    mdir.pair("1", "short", "SELECT pg_sleep(0.4);\nSELECT pg_sleep(0.4);\nSELECT pg_sleep(0.4);\n")
    assert run("migrate")["status"] == "applied"  # 1.2 s in all, 0.4 s each
    mdir.pair("2", "long", "CREATE TABLE t (id int);\nSELECT pg_sleep(3);\n")
    result = run("migrate")
    assert result["status"] == "failed", result
    assert "statement timeout" in result["error"]["message"], result["error"]
    assert "t" not in tables(pg_dsn)


# --------------------------------------------------------------------------- enum values


def test_enum_add_value_runs_in_the_transaction_but_cannot_be_used_before_commit(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    run = make_runner(pg_dsn, mdir.path)
    mdir.pair("1", "mood", "CREATE TYPE mood AS ENUM ('sad', 'ok');")
    mdir.pair("2", "happy", "ALTER TYPE mood ADD VALUE 'happy';")
    entry = run("migrate", dry_run=True)["migrations"][1]
    assert "CANNOT_RUN_IN_TRANSACTION" not in {r["code"] for r in entry["risks"]}
    assert run("migrate")["status"] == "applied"
    assert query(pg_dsn, "SELECT enum_range(NULL::mood)::text") == [("{sad,ok,happy}",)]
    mdir.pair("3", "used", "ALTER TYPE mood ADD VALUE 'glad';\nSELECT 'glad'::mood;\n")
    result = run("migrate")
    assert result["status"] == "failed", result
    assert "unsafe use of new value" in result["error"]["message"], result["error"]
    assert query(pg_dsn, "SELECT enum_range(NULL::mood)::text") == [("{sad,ok,happy}",)]


# --------------------------------------------------------------------------- privileges


@pytest.fixture
def plain_role_dsn(pg_dsn: str) -> Iterator[str]:
    """A role with CONNECT and USAGE on public, but no CREATE grant of its own anywhere."""
    with login_role(pg_dsn, "patcher_plain", ("GRANT CONNECT ON DATABASE {db} TO {role}",)) as dsn:
        yield dsn


def test_public_schema_create_follows_the_major(
    plain_role_dsn: str, mdir: MigrationDir, pg_server: PgServer
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    result = make_runner(plain_role_dsn, mdir.path)("migrate")
    if pg_server.server_version >= 150000:  # PUBLIC lost CREATE on public in 15
        assert (result["status"], result["error"]["type"]) == ("invalid", "ConfigError"), result
        assert "CREATE" in result["error"]["message"]
    else:
        assert result["status"] == "applied", result["error"]


# --------------------------------------------------------------------------- lock views


def test_the_lock_holder_is_named_from_the_activity_view(pg_dsn: str) -> None:
    key = advisory_lock.lock_key("public", "schema_migrations")
    with psycopg.connect(pg_dsn, autocommit=True, application_name="holder-test") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        pid = holder.info.backend_pid
        with _connect(pg_dsn) as conn:
            found = advisory_lock.lock_holder(conn, key)
    assert found is not None
    assert (found.pid, found.application_name) == (pid, "holder-test")


# --------------------------------------------------------------------------- newer syntax

NEWER_SYNTAX = {  # the first major that parses it -> a script using it
    150000: "MERGE INTO t USING (VALUES (1)) AS s(id) ON t.id = s.id "
    "WHEN NOT MATCHED THEN INSERT VALUES (s.id);",
    170000: "INSERT INTO t SELECT id FROM JSON_TABLE('[{\"id\": 2}]'::jsonb, '$[*]' "
    "COLUMNS (id int PATH '$.id'));",
    180000: "UPDATE t SET id = id + 10 RETURNING WITH (OLD AS o, NEW AS n) o.id, n.id;",
}


@pytest.mark.parametrize("since", sorted(NEWER_SYNTAX))
def test_newer_syntax_never_crashes_a_dry_run(
    run: Run, mdir: MigrationDir, pg_dsn: str, pg_server: PgServer, since: int
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);")
    run("migrate")
    mdir.pair("2", "newer", NEWER_SYNTAX[since])
    plain = run("migrate", dry_run=True)
    assert plain["ok"] and plain["status"] == "planned", plain
    codes = {r["code"] for r in plain["migrations"][0]["risks"]}
    # pglast's grammar (PG 18) knows every one of these: no parse finding on any major.
    assert not codes & {"PARSE_ERROR", "PARSE_UNSUPPORTED"}, plain["migrations"][0]["risks"]
    verified = run("migrate", dry_run=True, verify=True)
    if pg_server.server_version >= since:
        assert verified["status"] == "planned", verified
        assert run("migrate")["status"] == "applied"
    else:
        assert verified["status"] == "failed", verified
        assert verified["error"]["type"] == "MigrationFailed"
        assert "syntax error" in verified["error"]["message"], verified["error"]
        assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(1,)]

"""Issue 26 item 9: a mixed-case PATCHER_SCHEMA (``Ops``) is an identifier everywhere: looked
up quoted, never folded to ``ops``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.fixtures.engine import MigrationDir, make_runner, query


@pytest.fixture
def ops_role_dsn(pg_dsn: str) -> Iterator[str]:
    """A role with USAGE and CREATE on schema "Ops" only: no CREATE on the database, so a
    CREATE SCHEMA sent because "Ops" was looked up as ops fails."""
    name = f"patcher_ops_{uuid.uuid4().hex[:8]}"
    dbname = urlsplit(pg_dsn).path.lstrip("/")
    query(pg_dsn, f"CREATE ROLE {name} LOGIN")
    query(pg_dsn, f"REVOKE CREATE ON DATABASE {dbname} FROM PUBLIC")
    query(pg_dsn, 'CREATE SCHEMA "Ops"')
    query(pg_dsn, f'GRANT USAGE, CREATE ON SCHEMA "Ops" TO {name}')
    query(pg_dsn, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    query(pg_dsn, f"GRANT USAGE, CREATE ON SCHEMA public TO {name}")
    parts = urlsplit(pg_dsn)
    yield urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port}"))
    query(pg_dsn, f"DROP OWNED BY {name}")
    query(pg_dsn, f"DROP ROLE {name}")


def test_a_mixed_case_schema_is_used_as_written(
    pg_dsn: str, ops_role_dsn: str, mdir: MigrationDir
) -> None:
    mdir.write("V1__t.sql", "CREATE TABLE t (id int);\n")
    mdir.write("U1__t.sql", "DROP VIEW IF EXISTS v;\nDROP TABLE t;\n")
    mdir.write("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n")
    run = make_runner(ops_role_dsn, mdir.path, schema="Ops")
    first = run("migrate")
    assert first["status"] == "applied", first["error"]
    assert [m["version"] for m in first["migrations"]] == [1, None]
    tables = query(
        pg_dsn,
        "SELECT relname FROM pg_class WHERE relnamespace = '\"Ops\"'::regnamespace "
        "AND relkind = 'r' ORDER BY 1",
    )
    assert tables == [("schema_migrations",), ("schema_migrations_log",)]
    assert query(pg_dsn, "SELECT to_regnamespace('ops')") == [(None,)]  # never folded
    assert run("migrate")["status"] == "up_to_date"  # the repeatable's row is found, too
    assert run("status")["current_version"] == 1
    dry = run("rollback", dry_run=True)
    assert dry["status"] == "planned", dry["error"]
    back = run("rollback")
    assert back["status"] == "reverted", back["error"]

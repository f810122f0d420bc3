"""Issue 26 item 9: a mixed-case PATCHER_SCHEMA (``Ops``) is an identifier everywhere: looked
up quoted, never folded to ``ops``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.engine import MigrationDir, login_role, make_runner, query


@pytest.fixture
def ops_role_dsn(pg_dsn: str) -> Iterator[str]:
    """A role with USAGE and CREATE on schema "Ops" only: no CREATE on the database, so a
    CREATE SCHEMA sent because "Ops" was looked up as ops fails."""
    grants = (
        'CREATE SCHEMA "Ops"',
        'GRANT USAGE, CREATE ON SCHEMA "Ops" TO {role}',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    )
    with login_role(pg_dsn, "patcher_ops", grants) as dsn:
        yield dsn


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
    assert tables == [
        ("schema_migrations",),
        ("schema_migrations_log",),
        ("schema_migrations_snp",),
    ]
    assert query(pg_dsn, "SELECT to_regnamespace('ops')") == [(None,)]  # never folded
    assert run("migrate")["status"] == "up_to_date"  # the repeatable's row is found, too
    assert run("status")["current_version"] == 1
    dry = run("rollback", dry_run=True)
    assert dry["status"] == "planned", dry["error"]
    back = run("rollback")
    assert back["status"] == "reverted", back["error"]

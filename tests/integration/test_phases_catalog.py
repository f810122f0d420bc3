"""The catalog refines a type change's verdict in runs against a database (SPEC 11)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from patcher.db.catalog_facts import CatalogFacts
from patcher.sql.phases.classify import ChangeSet, classify_statement

SCHEMA = """
CREATE TABLE accounts (
    id integer PRIMARY KEY, code varchar(10), note text, score integer, ratio real,
    amount numeric(10,2), flag boolean
);
"""


@pytest.mark.parametrize(
    ("statement", "prepared_queries_break"),
    [
        ("ALTER TABLE accounts ALTER COLUMN code TYPE varchar(50)", True),  # relaxed length
        ("ALTER TABLE accounts ALTER COLUMN code TYPE text", True),  # binary-coercible
        ("ALTER TABLE accounts ALTER COLUMN score TYPE bigint", True),  # widening
        ("ALTER TABLE accounts ALTER COLUMN ratio TYPE double precision", True),
        ("ALTER TABLE accounts ALTER COLUMN code TYPE varchar(5)", False),  # shorter
        ("ALTER TABLE accounts ALTER COLUMN note TYPE varchar(20)", False),  # a new limit
        ("ALTER TABLE accounts ALTER COLUMN note TYPE integer USING note::integer", False),
        ("ALTER TABLE accounts ALTER COLUMN amount TYPE numeric(8,2)", False),
        ("ALTER TABLE accounts ALTER COLUMN flag TYPE integer USING flag::integer", False),
    ],
)
def test_a_type_change_is_contract_even_when_the_catalog_shows_a_no_op(
    pg_connect: Any, statement: str, prepared_queries_break: bool
) -> None:
    conn = pg_connect()
    conn.execute(SCHEMA)
    with_catalog = classify_statement(statement, ChangeSet(catalog=CatalogFacts(conn)))[0]
    offline = classify_statement(statement, ChangeSet())[0]
    assert with_catalog.phase == offline.phase == "contract", with_catalog
    assert ("cached plan must not change result type" in with_catalog.reason) is (
        prepared_queries_break
    )
    assert not offline.catalog  # the catalog cannot make it expand


@pytest.mark.parametrize(
    "alter",
    ["ALTER COLUMN score TYPE bigint", "ALTER COLUMN code TYPE varchar(50)",
     "ALTER COLUMN code TYPE text"],
)  # fmt: skip
def test_the_previous_release_prepared_read_fails_after_a_no_op_type_change(
    pg_connect: Any, alter: str
) -> None:
    """Why: psycopg (like JDBC, pgx, asyncpg) prepares a repeated query; after the change
    PostgreSQL refuses to run it with its old result type. Writes still work."""
    ddl = pg_connect()
    ddl.execute(SCHEMA + "INSERT INTO accounts (id, code, score) VALUES (1, 'a', 1);")
    app = pg_connect()
    read = "SELECT code, score FROM accounts WHERE id = %s"
    app.execute(read, (1,), prepare=True).fetchall()
    ddl.execute(f"ALTER TABLE accounts {alter}")
    app.execute("UPDATE accounts SET score = %s WHERE id = %s", (2, 1), prepare=True)
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan must not change"):
        app.execute(read, (1,), prepare=True)

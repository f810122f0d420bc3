"""The catalog refines a type change's verdict in runs against a database (SPEC 11)."""

from __future__ import annotations

from typing import Any

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
    ("statement", "phase"),
    [
        ("ALTER TABLE accounts ALTER COLUMN code TYPE varchar(50)", "expand"),  # relaxed length
        ("ALTER TABLE accounts ALTER COLUMN code TYPE text", "expand"),  # binary-coercible
        ("ALTER TABLE accounts ALTER COLUMN score TYPE bigint", "expand"),  # widening
        ("ALTER TABLE accounts ALTER COLUMN ratio TYPE double precision", "expand"),
        ("ALTER TABLE accounts ALTER COLUMN code TYPE varchar(5)", "contract"),  # shorter
        ("ALTER TABLE accounts ALTER COLUMN note TYPE varchar(20)", "contract"),  # a new limit
        ("ALTER TABLE accounts ALTER COLUMN note TYPE integer USING note::integer", "contract"),
        ("ALTER TABLE accounts ALTER COLUMN amount TYPE numeric(8,2)", "contract"),
        ("ALTER TABLE accounts ALTER COLUMN flag TYPE integer USING flag::integer", "contract"),
    ],
)
def test_type_change_verdict_follows_the_catalog(
    pg_connect: Any, statement: str, phase: str
) -> None:
    conn = pg_connect()
    conn.execute(SCHEMA)
    with_catalog = classify_statement(statement, ChangeSet(catalog=CatalogFacts(conn)))[0]
    offline = classify_statement(statement, ChangeSet())[0]
    assert with_catalog.phase == phase, with_catalog
    assert offline.phase == "contract"  # the parse alone cannot tell ...
    assert offline.catalog  # ... and says that the catalog could change the answer

"""Reading the history in one query (issue 32, contention): a missing schema or table reads as
no history, a table of another shape is refused as before, rows come back in version order
whatever the table's order, and a read inside an open transaction never aborts it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from patcher.core.errors import ConfigError
from patcher.db.history import History

OURS_BUT_APPLIED_BY = (
    "CREATE TABLE {t} (version bigint PRIMARY KEY, description text NOT NULL, checksum text NOT "
    "NULL, applied_at timestamptz NOT NULL DEFAULT now(), execution_ms integer NOT NULL DEFAULT "
    "0, dirty boolean NOT NULL DEFAULT false, dirty_direction text, source_fingerprint text{more})"
)


@pytest.fixture
def conn(pg_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        yield c


def history(conn: psycopg.Connection[Any], schema: str = "public") -> History:
    return History(conn, schema, "schema_migrations", request_id="t", invoked_by="t")


def sent(conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every query text this connection's cursors send from now on."""
    queries: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if self.connection is conn:
            queries.append(query.as_string(conn) if hasattr(query, "as_string") else str(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return queries


def test_no_schema_no_table_read_as_no_history_and_a_table_in_one_query(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = sent(conn, monkeypatch)
    assert history(conn, "no_such_schema").read_history() == []
    assert history(conn).read_history() == []
    conn.execute(OURS_BUT_APPLIED_BY.format(t="schema_migrations", more=", applied_by text"))
    conn.execute(
        "INSERT INTO schema_migrations (version, description, checksum) VALUES (1, 'm', 'c')"
    )
    del queries[:]
    assert [r.version for r in history(conn).read_history()] == [1]
    assert len(queries) == 1, queries  # no catalog lookups before the read
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_read_inside_a_transaction_leaves_it_usable(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("CREATE TABLE kept (id int)")
        assert history(conn).read_history() == []
        conn.execute("INSERT INTO kept VALUES (1)")  # an aborted transaction would refuse this
    assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)


def test_a_table_missing_one_of_our_columns_is_refused_and_named(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(OURS_BUT_APPLIED_BY.format(t="schema_migrations", more=""))
    with pytest.raises(ConfigError, match=r"not made by StackFlowPatcher.*missing: applied_by"):
        history(conn).read_history()


def test_rows_come_back_in_version_order_with_extra_columns_ignored(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        OURS_BUT_APPLIED_BY.format(t="schema_migrations", more=", applied_by text, note text")
    )
    for version in (30, 4, 1000, 7):  # a heap in insertion order, not version order
        conn.execute(
            "INSERT INTO schema_migrations (version, description, checksum, note) "
            "VALUES (%s, 'm', 'c', 'x')",
            (version,),
        )
    rows = history(conn).read_history()
    assert [r.version for r in rows] == [4, 7, 30, 1000]
    assert {r.description for r in rows} == {"m"}

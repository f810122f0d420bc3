"""The drift check's first question, sent ahead (SPEC section 13; issue 32).

Before a run changes the schema it holds the stored snapshot against the live schema
(``engine/drift_check.py``). Its common answer, "unchanged", is one query whose cost is the
server's aggregation of the catalog (~0.15 s at 2,000 tables) and which does not depend on the
scripts. So the runner sends it in pipeline mode before it reads and checks the scripts (from
a directory or S3) and reads the answer when they are loaded: the server aggregates while the
client works. Nothing else uses the session in between (loading scripts never does). The answer
serves the run's next ``schema_drift``; a "no" (no snapshot, a difference, a catalog this role
cannot read whole) sends that call straight to the full comparison, which says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from patcher.core.schema_drift import DriftReading
from patcher.db.snapshot_store import unchanged_query, unchanged_reading

Answer = DriftReading | bool
"""What the question sent ahead found: the reading of an unchanged schema, or False (not
unchanged, or unanswerable: the full comparison decides)."""


@contextmanager
def asked_ahead(
    conn: psycopg.Connection[Any], schema: str, table: str, answer: list[Answer]
) -> Iterator[None]:
    """Send the question now; when the block ends, read the answer into ``answer`` (one item).
    The block must not use ``conn``. An error raised in the block still drains the answer
    first (the session stays usable for the run's failure record), then propagates; so does a
    driver error of the question's own, after the block."""
    raised: BaseException | None = None
    lost: psycopg.Error | None = None
    got: Answer = False
    try:
        with conn.pipeline():
            cursor = _send(conn, schema, table)  # a long text may meet its error while sent
            try:
                yield
            except BaseException as exc:  # raised again below, once drained
                raised = exc
            if cursor is not None:
                got = _read(cursor)
    except _NO:
        got = False
    except psycopg.Error as exc:
        lost = exc
    if raised is not None:
        raise raised
    if lost is not None:
        raise lost
    answer.append(got)


_NO = (psycopg.ProgrammingError, psycopg.DataError)
"""The question's own refusals (no table, an altered one, a catalog this role cannot read):
the answer is no, and the full comparison says which."""


def _send(conn: psycopg.Connection[Any], schema: str, table: str) -> psycopg.Cursor[Any] | None:
    try:
        return conn.execute(*unchanged_query(schema, table))
    except _NO:
        return None


def _read(cursor: psycopg.Cursor[Any]) -> Answer:
    reading = unchanged_reading(cursor.fetchone())
    return reading if reading is not None else False

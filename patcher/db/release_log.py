"""The release gate's memory in the audit log (SPEC 11): the alias version that was live when a
contract version was first held, as an audit row ``outcome = 'held'`` of that version whose
``error`` column reads ``release alias <ARN> routed to version <N>``."""

from __future__ import annotations

import re
from typing import Any, Final

from psycopg import Connection, errors, sql

_ROUTED: Final = re.compile(r"routed to version (\S+)$")


def held_since(conn: Connection[Any], log: sql.Composable, version: int) -> str | None:
    """The live version recorded when ``version`` was first held, or None."""
    query = sql.SQL(
        "SELECT error FROM {log} WHERE version = %s AND outcome = 'held' AND error IS NOT NULL "
        "ORDER BY id LIMIT 1"
    ).format(log=log)
    try:
        row = conn.execute(query, (version,)).fetchone()
    except errors.UndefinedTable:  # no audit log yet (nothing ever ran): nothing recorded
        return None
    match = _ROUTED.search(str(row[0])) if row else None
    return match[1] if match else None


def routed_text(alias: str, version: str) -> str:
    """The audit row's text for a hold (what ``held_since`` reads back)."""
    return f"release alias {alias} routed to version {version}"

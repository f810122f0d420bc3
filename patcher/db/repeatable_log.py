"""Where repeatable (Flyway ``R__``) scripts are recorded: rows of the audit log
``<schema>.<table>_log`` with ``version`` NULL, apart from the versioned history.

Each run of a repeatable appends one row (``outcome`` 'applied' or 'failed', its
``description`` and file ``checksum``) in the transaction that ran it; the checksum a
repeatable was last applied with is that of its newest 'applied' row. No table beyond the two
the runner already has, so the grants stay those of SPEC 5.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

_LAST_APPLIED = (
    "SELECT DISTINCT ON (description) description, checksum, at FROM {} "
    "WHERE version IS NULL AND outcome = 'applied' ORDER BY description, id DESC"
)


def recorded(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    """Each repeatable's last applied checksum by description; empty before the first run."""
    log = sql.Identifier(schema, f"{table}_log")
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (log.as_string(conn),)).fetchone()
    if not (exists and exists[0]):
        return {}
    rows = conn.execute(sql.SQL(_LAST_APPLIED).format(log)).fetchall()
    return {description: checksum for description, checksum, _ in rows}

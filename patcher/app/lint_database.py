"""``patcher lint --database-url``: what exists, read from a database's catalog (read-only).

Lint then judges as a dry run does: a table the database has exists, with its row estimate;
one it lacks does not (a statement on it is no risk to existing data); rewrites and the
tables a statement reaches are decided from the catalog. The session is read-only and short
(``default_transaction_read_only``), nothing is locked beyond a catalog read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from patcher.core.catalog_port import Catalog


@contextmanager
def database_facts(url: str) -> Iterator[tuple[dict[str, int], Catalog, str]]:
    """(table sizes, catalog, the line the report says) on one read-only session."""
    from patcher.db.catalog_facts import CatalogFacts
    from patcher.db.connection import connect, errors_translated
    from patcher.db.introspection import table_sizes

    conn = connect(
        url,
        application_name="patcher lint",
        lock_timeout="5s",
        statement_timeout="60s",
        connect_timeout=10,
        sslmode=None,
        sslrootcert=None,
    )
    try:
        with errors_translated():
            conn.execute("SET default_transaction_read_only = on")
            sizes = table_sizes(conn)
            info = conn.info
            said = (
                f"database: what exists is what {info.dbname} on {info.host}:{info.port} has "
                f"({len(sizes)} tables and materialized views, read from its catalog)"
            )
            yield sizes, CatalogFacts(conn), said
    finally:
        conn.close()

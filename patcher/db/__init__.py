"""The PostgreSQL side: ``PostgresBackend`` (the engine's ``MigrationBackend``), the documented
advisory ``lock_key`` and ``make_conninfo``. Imports ``patcher.core`` only, never the engine.

History table ``<schema>.<table>``: one row per applied version, written in the same transaction
as a transactional migration. Audit log ``<schema>.<table>_log``: every attempt, append-only.
Advisory lock key: the first 8 bytes of SHA-256 of ``stackflowpatcher:<schema>.<table>`` as a
signed big-endian bigint (see ``lock_key``); one run at a time per database, history table.
"""

from patcher.db.advisory_lock import lock_key
from patcher.db.backend import PostgresBackend
from patcher.db.connection import make_conninfo

__all__ = ["PostgresBackend", "lock_key", "make_conninfo"]

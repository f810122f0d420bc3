"""The vocabulary of data a rollback would destroy (SPEC section 4, ``data_at_risk``): the
changes, the ``Probe`` a down script's statement becomes (``patcher.sql.at_risk`` finds them)
and the ``Loss`` the database side counts for it (``patcher.db.data_counts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# The changes a probe or a measured loss names (``change`` in a data_at_risk item).
DROP: Final = "drop"  # the table is dropped: every row
TRUNCATE: Final = "truncate"  # every row
DELETE: Final = "delete"  # the rows the WHERE matches
UPDATE: Final = "update"  # the rows the WHERE matches are overwritten
DROP_COLUMN: Final = "drop_column"  # the column's non-null values
ALTER_TYPE: Final = "alter_type"  # the non-null values the new type changes or refuses
ROW_CHANGES: Final = frozenset({DROP, TRUNCATE, DELETE})


@dataclass(frozen=True)
class Probe:
    """One thing a down script destroys, as SQL fragments the database side can count.

    ``where`` and ``source`` are deparsed from the statement (its condition, and its USING or
    FROM list); ``new_type`` and ``cast`` those of an ALTER COLUMN TYPE (``cast`` is its
    USING expression, or None for the implicit cast)."""

    change: str
    schema: str | None
    table: str
    column: str | None = None
    alias: str | None = None
    where: str | None = None
    source: str | None = None
    new_type: str | None = None
    cast: str | None = None
    cascade: bool = False
    only: bool = False  # ONLY: the table's inheritance children are left alone

    @property
    def key(self) -> str:
        return f"{self.schema or 'public'}.{self.table}"


@dataclass
class Created:
    """What a reverted version's up script created: tables (``schema.table``) and columns
    added to tables. Every row of such a table, every value of such a column, was written after
    the version was applied (``written_since_applied``), so nothing there needs dating."""

    tables: set[str] = field(default_factory=set)
    columns: set[tuple[str, str]] = field(default_factory=set)

    def holds(self, relation: str, column: str | None = None) -> bool:
        """True when the version created ``relation`` (or, for a column, added ``column``)."""
        return relation in self.tables or (
            column is not None and (relation, column) in self.columns
        )


@dataclass
class Loss:
    """One ``data_at_risk`` item before the engine attributes it: ``rows`` (values when
    ``column`` is set; None: unknown), and of them ``since`` the ones whose row was written
    (inserted or updated) after the reverted version's transaction (None: not known)."""

    relation: str
    column: str | None
    change: str
    rows: int | None
    estimated: bool = False
    since: int | None = None
    note: str | None = None

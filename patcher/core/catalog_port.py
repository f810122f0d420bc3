"""What a dry run can ask the database's catalog: the port between the risk rules
(``patcher.sql.risks``, which ask) and the database side (``patcher.db.catalog_facts``, which
answers). Shared vocabulary, so neither of the two imports the other."""

from __future__ import annotations

from typing import Protocol


class Catalog(Protocol):
    """What a dry run can ask the database (``patcher.db.catalog_facts.CatalogFacts``), for
    rewrites (here) and for the tables a statement reaches through foreign keys (``reach``)."""

    def column_type(self, table: str, column: str) -> tuple[int, int] | None:
        """(type oid, typmod) of ``table.column`` (``table`` as ``schema.name``), or None."""
        ...

    def type_oid(self, name: str) -> int | None:
        """The oid of a type name as SQL spells it (``varchar``, ``pg_catalog.int8``)."""
        ...

    def cast_method(self, source: int, target: int) -> str | None:
        """``pg_cast.castmethod`` (b: binary-coercible, f: function, i: I/O) or None."""
        ...

    def volatility(self, function: str) -> str | None:
        """The strongest ``provolatile`` of functions by that name (v > s > i), or None."""
        ...

    def timezone(self) -> str:
        """The session's TimeZone setting."""
        ...

    def domain(self, oid: int) -> tuple[int, int, bool] | None:
        """(base type oid, base typmod, has constraints) when ``oid`` is a domain, else None."""
        ...

    def index_table(self, index: str) -> str | None:
        """The ``schema.table`` an index ``schema.name`` is on, or None."""
        ...

    def column_links(self, table: str, column: str) -> list[str]:
        """Every other table joined to ``table`` by a foreign key that involves ``column``."""
        ...

    def foreign_keys(self, table: str) -> list[tuple[str, str]]:
        """(constraint name, referenced ``schema.table``) of every foreign key of ``table``."""
        ...

    def referencing(self, table: str) -> list[str]:
        """Every ``schema.table`` with a foreign key to ``table``."""
        ...

    def cascade_reach(self, kind: str, name: str) -> list[str]:
        """The tables and materialized views (``schema.name``) whose ACCESS EXCLUSIVE lock a
        ``DROP <kind> name CASCADE`` takes through the objects it drops with it (triggers,
        defaults, constraints, indexes, policies, dependent views): ``kind`` is ``function``
        (``name`` as ``schema.f`` or ``schema.f(argtype, ...)``) or ``relation``."""
        ...

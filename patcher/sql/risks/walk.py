"""What a rule sees and reports: ``Risk``, the tables it names, and the state of the walk."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from patcher.sql.risks.lock_modes import ACCESS_EXCLUSIVE, lock_mode

if TYPE_CHECKING:
    from pglast import ast

    from patcher.core.catalog_port import Catalog


@dataclass(frozen=True)
class Risk:
    """One hazard found in a script: a stable ``code``, the statement, and why it matters."""

    code: str
    statement: str
    explanation: str
    table: str | None = None
    offset: int = field(default=-1, compare=False)  # the statement's first token in the script
    at: int = field(default=-1, compare=False)  # where inside it, when one token is at fault

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "statement": self.statement,
            "explanation": self.explanation,
        }
        if self.table is not None:
            out["table"] = self.table
        return out


@dataclass(frozen=True)
class Table:
    schema: str | None
    name: str

    @classmethod
    def of(cls, rel: ast.RangeVar | None) -> Table | None:
        return cls(rel.schemaname, rel.relname) if rel is not None and rel.relname else None

    @property
    def key(self) -> str:
        """Identity within the script; an unqualified name is taken to be in ``public``."""
        return f"{self.schema or 'public'}.{self.name}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass
class Walk:
    """What the walk knows: tables the script made or renamed, the statement, risks so far."""

    existing: Mapping[str, int] | None
    # Relations (tables, views, indexes, sequences) by Table.key, and other objects by
    # "kind:key" (see ``made``), that the script or an earlier file of the change set creates.
    created: set[str] = field(default_factory=set)
    renamed: dict[str, str] = field(default_factory=dict)  # new key -> key before the script
    statement: str = ""
    offset: int = -1
    risks: list[Risk] = field(default_factory=list)
    transactional: bool = True
    design: bool = False  # also the design rules (lint): PREFER_BIGINT, PREFER_TEXT...
    enum_values: set[str] = field(default_factory=set)  # ADD VALUE'd in this transaction
    # SET ROLE / search_path not reset yet: setting -> (statement, offset) of the SET.
    pending_session: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Triggers DISABLEd and not enabled again yet: (table key, name or "ALL"/"USER") -> where.
    disabled_triggers: dict[tuple[str, str], tuple[str, int, str]] = field(default_factory=dict)
    # A dry run's database facts for rewrite decisions (patcher.sql.risks.rewrites decides).
    catalog: Catalog | None = None
    settings: dict[str, str] = field(default_factory=dict)  # SET timezone ... in the script
    functions: dict[str, str] = field(default_factory=dict)  # CREATE FUNCTION name -> volatility
    # (table key, column) -> (type oid, typmod) after an ALTER COLUMN TYPE earlier in the script
    column_types: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # (table key before the script, column name now) -> its name before the script
    renamed_columns: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, code: str, why: str, table: Table | None = None) -> None:
        """One risk; ``table`` is named as it was before the script (a rename earlier in the
        script changes the explanation's name, not the relation's identity)."""
        name = str(table) if table is not None else None
        if table is not None and table.key in self.renamed:
            before = self.renamed[table.key]
            name = before.removeprefix("public.") if table.schema is None else before
        self.risks.append(Risk(code, self.statement, why, name, self.offset))

    def rename_column(self, table: Table, old: str, new: str) -> None:
        """RENAME COLUMN of a table that existed: later statements name it by ``new``."""
        key = self.renamed.get(table.key, table.key)
        self.renamed_columns[(key, new)] = self.renamed_columns.pop((key, old), old)

    def column_before(self, table: Table, column: str) -> tuple[str, str]:
        """(table key, column name) as the catalog knows them, before the script renamed them."""
        key = self.renamed.get(table.key, table.key)
        return key, self.renamed_columns.get((key, column), column)

    def made(self, kind: str, key: str) -> bool:
        """Whether this script (or the change set before it) created object ``kind:key``."""
        return f"{kind}:{key}" in self.created or (kind == "rel" and key in self.created)

    def rows(self, table: Table | None) -> int | None:
        """Row estimate of a table that existed before the script (-1: unknown, -2: offline), else
        None."""
        if table is None or table.key in self.created:
            return None
        if self.existing is None:
            return -2
        key = self.renamed.get(table.key, table.key)
        schema, _, bare = key.partition(".")
        for candidate in (key, bare) if schema == "public" else (key,):
            if candidate in self.existing:
                return int(self.existing[candidate])
        return None

    def lock(self, kind: str, table: Table | None, rows: int) -> None:
        """ACCESS_EXCLUSIVE_LOCK when statement ``kind`` takes that mode (see LOCK_MODES)."""
        if lock_mode(kind) == ACCESS_EXCLUSIVE:
            self.add(
                "ACCESS_EXCLUSIVE_LOCK",
                f"takes an ACCESS EXCLUSIVE lock on {label(table, rows)}: every read and "
                "write of it waits until the transaction ends, and so does all that queues "
                "behind; keep the transaction short and SET lock_timeout so it gives up instead",
                table,
            )

    def rewrite(self, table: Table | None, rows: int, what: str, *, maybe: bool = False) -> None:
        verb = "may rewrite" if maybe else "rewrites"
        why = (
            f"{what} {verb} {label(table, rows)} and all its indexes under an ACCESS "
            "EXCLUSIVE lock, blocking every use of it for as long as that takes"
        )
        if maybe:
            why += (
                "; whether it does depends on the catalog (the column's current type and the "
                "cast in pg_cast, or the function's volatility in pg_proc), which only a dry "
                "run against the database can tell"
            )
        self.add("TABLE_REWRITE", why, table)


UNKNOWN_SIZE: Final = " (it exists already; how big it is, a dry run against the database tells)"


def label(table: Table | None, rows: int) -> str:
    """A table's name with its row estimate (-1: not known, -2: not known offline)."""
    name = str(table) if table is not None else "every table of the database"
    if rows == -2:
        return name + UNKNOWN_SIZE
    return f"{name} (~{rows:,} rows)" if rows >= 0 else name


def enum_name(value: object) -> str:
    """The member name of a pglast enum value ("" for None)."""
    return str(getattr(value, "name", ""))


def calls(node: object) -> Iterator[Any]:
    """Every function call in a statement or expression, at any depth."""
    from pglast.ast import FuncCall, Node

    if isinstance(node, FuncCall) and node.funcname:
        yield node
    if isinstance(node, Node):
        for attribute in node:
            yield from calls(getattr(node, attribute))
    elif isinstance(node, tuple):
        for item in node:
            yield from calls(item)


def functions(node: object) -> Iterator[str]:
    """The name of every function an expression calls, at any depth."""
    for call in calls(node):
        yield call.funcname[-1].sval

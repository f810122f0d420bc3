"""What a down script would destroy, read from its statements: the probes a rollback preview
counts (SPEC section 4, ``data_at_risk``), and what an up script created.

Pure: statements are parsed one by one by PostgreSQL's own parser (pglast, imported when a
function here runs) and no database is touched. Each data-destroying statement on a table the
script did not create itself becomes one ``Probe``: the database side
(``patcher.db.data_counts``) turns probes into counts. A statement that does not parse, or any
other statement, gives no probe; ``verify`` measures what the script really does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from patcher.core.data_loss import (
    ALTER_TYPE,
    DELETE,
    DROP,
    DROP_COLUMN,
    TRUNCATE,
    UPDATE,
    Created,
    Probe,
)


def probes(statements: Iterable[str]) -> list[Probe]:
    """The probes of a down script, in statement order, on tables it did not create."""
    made: set[str] = set()
    found: list[Probe] = []
    for stmt in _parsed(statements):
        kind = type(stmt).__name__
        if kind in ("CreateStmt", "CreateTableAsStmt"):
            rel = stmt.relation if kind == "CreateStmt" else stmt.into.rel
            made.add(_key(rel.schemaname, rel.relname))
            continue
        for probe in _probes_of(kind, stmt):
            if probe.key not in made:
                found.append(probe)
    return found


def created(statements: Iterable[str]) -> Created:
    """The tables and columns an up script creates (CREATE TABLE [AS], ADD COLUMN)."""
    out = Created()
    for stmt in _parsed(statements):
        kind = type(stmt).__name__
        if kind == "CreateStmt":
            out.tables.add(_key(stmt.relation.schemaname, stmt.relation.relname))
        elif kind == "CreateTableAsStmt" and stmt.into is not None:
            out.tables.add(_key(stmt.into.rel.schemaname, stmt.into.rel.relname))
        elif kind == "AlterTableStmt" and stmt.relation is not None:
            table = _key(stmt.relation.schemaname, stmt.relation.relname)
            for cmd in stmt.cmds or ():
                if _enum(cmd.subtype) == "AT_AddColumn" and cmd.def_ is not None:
                    out.columns.add((table, cmd.def_.colname))
    return out


def _parsed(statements: Iterable[str]) -> Iterator[Any]:
    from pglast.parser import ParseError, parse_sql

    for text in statements:
        try:
            raws = parse_sql(text)
        except ParseError:
            continue  # the dry run's risks report it; verify runs the script as it is
        for raw in raws:
            yield raw.stmt


def _probes_of(kind: str, stmt: Any) -> Iterator[Probe]:
    if kind == "DropStmt" and _enum(stmt.removeType) in ("OBJECT_TABLE", "OBJECT_MATVIEW"):
        cascade = _enum(stmt.behavior) == "DROP_CASCADE"
        for names in stmt.objects or ():
            parts = [part.sval for part in names]
            yield Probe(DROP, parts[-2] if len(parts) > 1 else None, parts[-1], cascade=cascade)
    elif kind == "TruncateStmt":
        cascade = _enum(stmt.behavior) == "DROP_CASCADE"
        for rel in stmt.relations or ():
            yield Probe(TRUNCATE, rel.schemaname, rel.relname, cascade=cascade, only=not rel.inh)
    elif kind in ("DeleteStmt", "UpdateStmt") and stmt.withClause is None:
        rel = stmt.relation
        extra = stmt.usingClause if kind == "DeleteStmt" else stmt.fromClause
        yield Probe(
            DELETE if kind == "DeleteStmt" else UPDATE,
            rel.schemaname,
            rel.relname,
            alias=rel.alias.aliasname if rel.alias is not None else None,
            where=_sql(stmt.whereClause) if stmt.whereClause is not None else None,
            source=", ".join(_sql(item) for item in extra) if extra else None,
            only=not rel.inh,
        )
    elif kind == "AlterTableStmt" and _enum(stmt.objtype) == "OBJECT_TABLE":
        yield from _alter_probes(stmt)


def _alter_probes(stmt: Any) -> Iterator[Probe]:
    rel = stmt.relation
    for cmd in stmt.cmds or ():
        subtype = _enum(cmd.subtype)
        if subtype == "AT_DropColumn":
            yield Probe(DROP_COLUMN, rel.schemaname, rel.relname, column=cmd.name)
        elif subtype == "AT_AlterColumnType" and cmd.def_ is not None:
            using = cmd.def_.raw_default
            yield Probe(
                ALTER_TYPE,
                rel.schemaname,
                rel.relname,
                column=cmd.name,
                new_type=_sql(cmd.def_.typeName),
                cast=_sql(using) if using is not None else None,
            )


def _sql(node: Any) -> str:
    from pglast.stream import RawStream

    return str(RawStream()(node))


def _key(schema: str | None, name: str) -> str:
    return f"{schema or 'public'}.{name}"


def _enum(value: object) -> str:
    return str(getattr(value, "name", ""))

"""The ``-- patcher:backfill`` directive (SPEC section 12): its options, and the one statement it
allows, turned into a template the runner fills with one key range at a time.

A backfill script is one ``UPDATE``, ``DELETE`` or ``INSERT ... SELECT`` over one table (for
``INSERT ... SELECT``, the table it reads). The statement is parsed by PostgreSQL's parser
(pglast, loaded only for a script that carries the directive) and deparsed with a marker ANDed
to its ``WHERE``: the runner replaces the marker with ``(key) > (last) AND (key) <= (upper)``.
Whether the table has a primary key is known only from the catalog, at run time.
"""

from __future__ import annotations

import re
from typing import Any

from patcher.core.errors import InvalidSource
from patcher.core.models import SourceObject
from patcher.core.record import record
from patcher.sql.classify import NO_TRANSACTION_DIRECTIVE
from patcher.sql.lexer import Statement, block_comment_end

BACKFILL_DIRECTIVE = "patcher:backfill"
RANGE_MARKER = "__patcher_backfill_range__"
"""Stands in the template's WHERE for the key range of one batch."""

DEFAULT_BATCH_ROWS = 10_000
_LIMITS = {"batch_rows": (1, 1_000_000), "pause_ms": (0, 600_000), "max_lag_ms": (1, 3_600_000)}


@record
class Backfill:
    """A backfill script, parsed: its options and the statement as a template."""

    line: int  # the directive's line
    batch_rows: int
    pause_ms: int
    max_lag_ms: int | None
    table: str  # the table the key ranges run over, quoted (schema-qualified when written so)
    qualifier: str  # how the statement names that table (its alias, or its name), quoted
    template: str  # the statement, RANGE_MARKER ANDed to its WHERE
    verb: str  # UPDATE, DELETE or INSERT

    def statement(self, predicate: str) -> str:
        """The statement for one range: ``predicate`` in the marker's place."""
        return self.template.replace(RANGE_MARKER, f"({predicate})")


def directive_line(text: str) -> tuple[int, str] | None:
    """The leading comment line that is the backfill directive: (line number, its options)."""
    pos, size = 0, len(text)
    while pos < size:
        blank = _BLANK.match(text, pos)
        pos = blank.end() if blank else pos
        if text.startswith("--", pos):
            end = _LINE_END.search(text, pos)
            stop = size if end is None else end.start()
            body = text[pos + 2 : stop].strip()
            if body.lower().startswith(BACKFILL_DIRECTIVE) and (
                len(body) == len(BACKFILL_DIRECTIVE) or body[len(BACKFILL_DIRECTIVE)].isspace()
            ):
                return text.count("\n", 0, pos) + 1, body[len(BACKFILL_DIRECTIVE) :].strip()
            pos = stop
        elif text.startswith("/*", pos):
            pos = block_comment_end(text, pos + 2)
            if pos < 0:
                return None
        else:
            return None
    return None


_BLANK = re.compile(r"[ \t\n\r\f\v]*+")
_LINE_END = re.compile(r"[\n\r]")


def parse_backfill(
    obj: SourceObject, text: str, statements: tuple[Statement, ...], transactional: bool
) -> Backfill | None:
    """The script's backfill, or None without the directive; ``InvalidSource`` naming the file
    and line when the directive or the statement cannot be a backfill."""
    found = directive_line(text)
    if found is None:
        return None
    line, rest = found
    options = _options(obj, line, rest)

    def refuse(why: str, at: int = line) -> InvalidSource:
        return InvalidSource(
            f"{obj.name} line {at}: {why}", file=obj.name, line=at, column=1 if at == line else None
        )

    if _is_down(obj):
        raise refuse(f"'-- {BACKFILL_DIRECTIVE}' is for an up script only; remove it here")
    if not transactional:
        raise refuse(
            f"'-- {BACKFILL_DIRECTIVE}' and '-- {NO_TRANSACTION_DIRECTIVE}' exclude each other: "
            "a backfill runs each range in its own transaction; remove one of them"
        )
    if len(statements) != 1:
        at = statements[1].line if len(statements) > 1 else line
        raise refuse(
            f"a backfill script is exactly one UPDATE, DELETE or INSERT ... SELECT statement; "
            f"it has {len(statements)}. Put the other statements in a version of their own",
            at,
        )
    stmt = statements[0]
    shape = _shape(stmt.text)
    if isinstance(shape, str):
        raise refuse(f"this statement cannot be a backfill: {shape}", stmt.line)
    table, qualifier, template, verb = shape
    return Backfill(
        line=line,
        batch_rows=options.get("batch_rows", DEFAULT_BATCH_ROWS),
        pause_ms=options.get("pause_ms", 0),
        max_lag_ms=options.get("max_lag_ms"),
        table=table,
        qualifier=qualifier,
        template=template,
        verb=verb,
    )


def _options(obj: SourceObject, line: int, rest: str) -> dict[str, int]:
    options: dict[str, int] = {}
    for word in rest.split():
        name, sep, value = word.partition("=")
        limits = _LIMITS.get(name.lower())
        low, high = limits or (0, 0)
        why = None
        if limits is None or not sep:
            why = f"unknown backfill option {word!r}; the options are batch_rows=N, pause_ms=N "
            why += "and max_lag_ms=N"
        elif not value.isdigit() or not low <= int(value) <= high:
            why = f"backfill option {name} must be a whole number from {low} to {high}, not "
            why += f"{value!r}"
        elif name.lower() in options:
            why = f"backfill option {name} is given twice"
        if why is not None:
            raise InvalidSource(f"{obj.name} line {line}: {why}", file=obj.name, line=line)
        options[name.lower()] = int(value)
    return options


def _is_down(obj: SourceObject) -> bool:
    if obj.form is not None:
        if obj.form.section is not None:
            return obj.form.section == "down"
        return obj.name.rsplit("/", 1)[-1].startswith("U")  # Flyway undo
    return obj.name.endswith(".down.sql")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _shape(sql: str) -> tuple[str, str, str, str] | str:
    """(table, qualifier, template, verb), or why the statement cannot be batched."""
    from pglast import ast, enums
    from pglast.parser import ParseError, parse_sql
    from pglast.stream import RawStream

    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        return f"PostgreSQL's parser refuses it ({exc})"
    node: Any = parsed[0].stmt
    where_owner: Any = node
    relation: Any
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
        relation = node.relation
        if node.withClause is not None:
            return "a WITH clause is not batched; write the statement without it"
        if isinstance(node.whereClause, ast.CurrentOfExpr):
            return "WHERE CURRENT OF names a cursor, not rows"
    elif isinstance(node, ast.InsertStmt):
        verb = "INSERT"
        select = node.selectStmt
        if node.withClause is not None or not isinstance(select, ast.SelectStmt):
            return "an INSERT is batched only as INSERT ... SELECT (no WITH)"
        if select.valuesLists:
            return "INSERT ... VALUES has no table to read in ranges; use INSERT ... SELECT"
        if select.op != enums.SetOperation.SETOP_NONE or select.withClause is not None:
            return "the SELECT of a backfill reads one table (no UNION, no WITH)"
        if any(
            getattr(select, part)
            for part in ("groupClause", "havingClause", "distinctClause", "limitCount",
                         "limitOffset", "windowClause")
        ):  # fmt: skip
            return (
                "GROUP BY, HAVING, DISTINCT, LIMIT, OFFSET and WINDOW work across rows, so "
                "ranges would change the result; only a row-by-row SELECT can be batched"
            )
        items = select.fromClause or ()
        if len(items) != 1 or not isinstance(items[0], ast.RangeVar):
            return "the SELECT of a backfill reads exactly one table (no join, no subquery in FROM)"
        relation, where_owner = items[0], select
    else:
        kind = type(node).__name__.removesuffix("Stmt")
        return f"it is a {kind} statement, not UPDATE, DELETE or INSERT"
    marker = ast.ColumnRef(fields=(ast.String(sval=RANGE_MARKER),))
    where = where_owner.whereClause
    where_owner.whereClause = (
        marker
        if where is None
        else ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=(where, marker))
    )
    template = RawStream()(node)
    if template.count(RANGE_MARKER) != 1:  # the statement itself names the marker
        return f"it names {RANGE_MARKER}, which the runner reserves"
    table = quote(relation.relname)
    if relation.schemaname:
        table = f"{quote(relation.schemaname)}.{table}"
    alias = relation.alias.aliasname if relation.alias is not None else relation.relname
    return table, quote(alias), template, verb

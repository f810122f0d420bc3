"""The small SQL subset the fake backend interprets, with PostgreSQL's errors for it.

One statement per string (the engine splits scripts), keywords case-insensitive, names
unquoted and optionally ``public.``-qualified:

    CREATE TABLE [IF NOT EXISTS] t (col type ..., ...)       42P07 when t exists
    CREATE TEMP[ORARY] TABLE t (col type ..., ...)           the session's own: INSERT, UPDATE,
                                                             DELETE and DROP TABLE find it before
                                                             t (not public.t) until the session
                                                             restore (SPEC 7 item 2)
    DROP TABLE [IF EXISTS] t [, ...]                         42P01 when t is missing
    ALTER TABLE t ADD [COLUMN] [IF NOT EXISTS] c type        AccessExclusiveLock
    ALTER TABLE t ALTER [COLUMN] c [SET DATA] TYPE type      AccessExclusiveLock, rewrites t
    CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] i ON t (...)   ShareLock (CIC:
                                                             ShareUpdateExclusiveLock; 25001
                                                             inside a transaction)
    DROP INDEX [CONCURRENTLY] [IF EXISTS] i                  42704 when i is missing
    INSERT INTO t ... VALUES (...)[, (...)]                  42P01 (with position) when missing
    UPDATE t ... | DELETE FROM t [WHERE ...]                 (DELETE without WHERE empties t)
    ANALYZE [t]                                              table_sizes() then counts rows
    SELECT <integer> | SELECT 1/0 (22012) | SELECT pg_sleep(n) (57014 past the timeout)
    SELECT pg_advisory_unlock_all()
    SET [LOCAL | SESSION] ...                                accepted, no effect
    ALTER DATABASE d SET default_transaction_read_only = on|off   for sessions opened later

A statement starting with a word that is not an SQL command, or a misspelled keyword where one
is expected, is a 42601 syntax error at that word's 1-based position, like the server's. A
form outside this list raises ``UnsupportedSQL`` so that a test using it fails loudly instead
of passing on a made-up answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patcher.core.errors import StatementFailed
from tests.fakes.state import Index, Table

if TYPE_CHECKING:
    from tests.fakes.backend import FakeBackend

# Leading words PostgreSQL knows; anything else is a syntax error at position 1.
SQL_COMMANDS = frozenset({
    "ABORT", "ALTER", "ANALYZE", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER", "COMMENT",
    "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DISCARD", "DO", "DROP", "END",
    "EXECUTE", "EXPLAIN", "FETCH", "GRANT", "IMPORT", "INSERT", "LISTEN", "LOAD", "LOCK", "MERGE",
    "MOVE", "NOTIFY", "PREPARE", "REASSIGN", "REFRESH", "REINDEX", "RELEASE", "RESET", "REVOKE",
    "ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT", "SET", "SHOW", "START", "TABLE", "TRUNCATE",
    "UNLISTEN", "UPDATE", "VACUUM", "VALUES", "WITH",
})  # fmt: skip

_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)"
    r"|(?P<num>[0-9]+(?:\.[0-9]+)?)|(?P<str>'(?:[^']|'')*')|(?P<punct>\S))"
)


class UnsupportedSQL(Exception):
    """A statement outside the fake's documented subset (a test-writing mistake)."""


@dataclass(frozen=True)
class Token:
    text: str
    kind: str  # word, num, str, punct
    position: int  # 1-based character offset in the statement

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:  # only trailing blanks are left
            break
        kind = match.lastgroup
        tokens.append(Token(match[kind], kind, match.start(kind) + 1))
        pos = match.end()
    return tokens


def syntax_error(token: Token | None, text: str) -> StatementFailed:
    if token is None:
        return StatementFailed(
            "syntax error at end of input", sqlstate="42601", position=len(text) + 1
        )
    return StatementFailed(
        f'syntax error at or near "{token.text}"', sqlstate="42601", position=token.position
    )


class Parser:
    """Cursor over one statement's tokens, raising PostgreSQL-like syntax errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        """Whether the next tokens are ``words`` (keywords or punctuation), without consuming."""
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token.upper != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        for word in words:
            token = self.peek()
            if token is None or token.upper != word:
                raise syntax_error(token, self.text)
            self.pos += 1

    def expect_one_of(self, *words: str) -> str:
        token = self.peek()
        if token is None or token.upper not in words:
            raise syntax_error(token, self.text)
        self.pos += 1
        return token.upper

    def name(self) -> Token:
        """An object name (``public.`` stripped, lower-cased as unquoted names are)."""
        token = self.peek()
        if token is None or token.kind != "word":
            raise syntax_error(token, self.text)
        self.pos += 1
        schema, _, rest = token.text.lower().rpartition(".")
        if schema not in ("", "public"):
            raise UnsupportedSQL(f"the fake has only the public schema: {self.text!r}")
        return Token(rest, "qualified" if schema else "word", token.position)

    def parenthesized(self) -> list[list[Token]]:
        """A ``( ... )`` group split at its top-level commas."""
        self.expect("(")
        items: list[list[Token]] = [[]]
        depth = 0
        while True:
            token = self.peek()
            if token is None:
                raise syntax_error(None, self.text)
            self.pos += 1
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                if depth == 0:
                    return items
                depth -= 1
            elif token.text == "," and depth == 0:
                items.append([])
                continue
            items[-1].append(token)

    def rest(self) -> list[Token]:
        tokens, self.pos = self.tokens[self.pos :], len(self.tokens)
        return tokens

    def done(self) -> None:
        self.accept(";")
        token = self.peek()
        if token is not None:
            raise syntax_error(token, self.text)


class Interpreter:
    """Carries out one statement of the subset on the session's database."""

    def __init__(
        self,
        session: FakeBackend,
        text: str,
        timeout: int | None,
        in_transaction: bool,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.session, self.db = session, session.db
        self.state = session.db.state
        self.text, self.timeout, self.in_transaction = text, timeout, in_transaction
        self.stop = stop
        self.p = Parser(text)

    def run(self) -> None:
        first = self.p.peek()
        if first is None:
            return
        if first.kind != "word" or first.upper not in SQL_COMMANDS:
            raise syntax_error(first, self.text)
        handler = getattr(self, f"cmd_{first.upper.lower()}", None)
        if handler is None:
            raise UnsupportedSQL(f"the fake does not interpret {self.text!r}")
        self.p.pos += 1
        handler()

    # -- helpers -------------------------------------------------------------------------------

    def _lock(self, table: str, mode: str) -> None:
        effects = self.session._effects
        if effects is not None:
            effects["locks"].add((table, mode))

    def _write(self, command: str) -> None:
        if self.session.read_only or self.db.standby:
            raise StatementFailed(
                f"cannot execute {command} in a read-only transaction", sqlstate="25006"
            )

    def _table(self, name: str, position: int | None = None) -> Table:
        found = self.state.tables.get(name)
        if found is None:
            raise StatementFailed(
                f'relation "{name}" does not exist', sqlstate="42P01", position=position
            )
        return found

    def _temp(self) -> dict[str, Table]:
        """The session's temporary tables (pg_temp, first in the search path)."""
        return self.state.temp.setdefault(self.session.pid, {})

    def _target(self, name: Token) -> Table:
        """The table an unqualified name reaches: the session's temporary one first."""
        found = self._temp().get(name.text) if name.kind == "word" else None
        return found if found is not None else self._table(name.text, position=name.position)

    # -- commands --------------------------------------------------------------------------------

    def cmd_select(self) -> None:
        p = self.p
        token = p.peek()
        if token is not None and token.kind == "num":
            p.pos += 1
            if p.accept("/"):
                divisor = p.peek()
                if divisor is None or divisor.kind != "num":
                    raise UnsupportedSQL(f"the fake does not interpret {self.text!r}")
                p.pos += 1
                if float(divisor.text) == 0:
                    raise StatementFailed("division by zero", sqlstate="22012")
            p.done()
            return
        if p.accept("PG_SLEEP", "("):
            seconds = p.peek()
            if seconds is None or seconds.kind != "num":
                raise UnsupportedSQL(f"the fake does not interpret {self.text!r}")
            p.pos += 1
            p.expect(")")
            p.done()
            self._sleep(int(float(seconds.text) * 1000))
            return
        if p.accept("PG_ADVISORY_UNLOCK_ALL", "(", ")"):
            p.done()
            self.session._release_all()
            return
        raise UnsupportedSQL(f"the fake does not interpret {self.text!r}")

    def _sleep(self, ms: int) -> None:
        """Sleep on the server clock in 100 ms steps: a statement timeout or a cancel from the
        client (the engine's deadline cut: ``stop``) ends it as on PostgreSQL (57014)."""
        slept = 0
        while slept < ms:
            if self.timeout and slept >= self.timeout:
                raise StatementFailed(
                    "canceling statement due to statement timeout", sqlstate="57014", cancelled=True
                )
            if self.session.cancel_requested or (self.stop is not None and self.stop()):
                self.session.cancel_requested = False
                raise StatementFailed(
                    "canceling statement due to user request", sqlstate="57014", cancelled=True
                )
            step = min(100, ms - slept, (self.timeout - slept) if self.timeout else ms)
            self.db.clock.advance(step)
            slept += step
        if self.timeout and slept > self.timeout:  # pragma: no cover - guarded above
            raise AssertionError("slept past the timeout")

    def cmd_set(self) -> None:
        self.p.rest()  # SET [LOCAL] anything: accepted, no effect on the fake

    def cmd_create(self) -> None:
        p = self.p
        if p.accept("TEMP") or p.accept("TEMPORARY"):
            p.expect("TABLE")
            self._create_table(temp=True)
            return
        unique = p.accept("UNIQUE")
        kind = p.expect_one_of("INDEX", "TABLE") if not unique else "INDEX"
        if unique:
            p.expect("INDEX")
        if kind == "TABLE":
            self._create_table()
        else:
            self._create_index(unique)

    def _create_table(self, temp: bool = False) -> None:
        p = self.p
        if_not_exists = p.accept("IF", "NOT", "EXISTS")
        name = p.name()
        columns = [
            item[0].text.lower()
            for item in p.parenthesized()
            if item and item[0].upper not in {"PRIMARY", "UNIQUE", "CHECK", "CONSTRAINT", "FOREIGN"}
        ]
        p.done()
        self._write("CREATE TABLE")
        if temp:
            if name.text in self._temp():
                raise StatementFailed(f'relation "{name.text}" already exists', sqlstate="42P07")
            self._temp()[name.text] = Table(columns, filenode=self.db.new_filenode())
            return
        if name.text in self.state.tables or name.text in self.state.indexes:
            if if_not_exists:
                return
            raise StatementFailed(f'relation "{name.text}" already exists', sqlstate="42P07")
        self.state.tables[name.text] = Table(columns, filenode=self.db.new_filenode())

    def _create_index(self, unique: bool) -> None:
        p = self.p
        concurrently = p.accept("CONCURRENTLY")
        if_not_exists = p.accept("IF", "NOT", "EXISTS")
        name = p.name()
        p.expect("ON")
        table = p.name()
        p.parenthesized()
        p.done()
        if concurrently and self.in_transaction:
            raise StatementFailed(
                "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
                sqlstate="25001",
            )
        self._write("CREATE INDEX")
        self._table(table.text)
        self._lock(table.text, "ShareUpdateExclusiveLock" if concurrently else "ShareLock")
        if name.text in self.state.indexes or name.text in self.state.tables:
            if if_not_exists:
                return
            raise StatementFailed(f'relation "{name.text}" already exists', sqlstate="42P07")
        self.state.indexes[name.text] = Index(table.text, unique=unique)

    def cmd_drop(self) -> None:
        p = self.p
        kind = p.expect_one_of("TABLE", "INDEX")
        concurrently = kind == "INDEX" and p.accept("CONCURRENTLY")
        if_exists = p.accept("IF", "EXISTS")
        names = [p.name()]
        while p.accept(","):
            names.append(p.name())
        p.accept("CASCADE")
        p.done()
        if concurrently and self.in_transaction:
            raise StatementFailed(
                "DROP INDEX CONCURRENTLY cannot run inside a transaction block", sqlstate="25001"
            )
        self._write(f"DROP {kind}")
        for name in names:
            if kind == "TABLE" and name.kind == "word" and name.text in self._temp():
                del self._temp()[name.text]
            elif kind == "TABLE":
                if name.text not in self.state.tables:
                    if if_exists:
                        continue
                    raise StatementFailed(f'table "{name.text}" does not exist', sqlstate="42P01")
                self._lock(name.text, "AccessExclusiveLock")
                del self.state.tables[name.text]
                for index in [i for i, x in self.state.indexes.items() if x.table == name.text]:
                    del self.state.indexes[index]
            else:
                if name.text not in self.state.indexes:
                    if if_exists:
                        continue
                    raise StatementFailed(f'index "{name.text}" does not exist', sqlstate="42704")
                del self.state.indexes[name.text]

    def cmd_alter(self) -> None:
        p = self.p
        if p.accept("DATABASE"):
            p.name()
            p.expect("SET", "DEFAULT_TRANSACTION_READ_ONLY")
            p.expect_one_of("=", "TO")
            value = p.expect_one_of("ON", "OFF", "TRUE", "FALSE")
            p.done()
            self.state.default_read_only = value in ("ON", "TRUE")
            return
        p.expect("TABLE")
        name = p.name()
        table = self._table(name.text)
        self._write("ALTER TABLE")
        self._lock(name.text, "AccessExclusiveLock")
        action = p.expect_one_of("ADD", "ALTER")
        p.accept("COLUMN")
        if action == "ADD":
            if_not_exists = p.accept("IF", "NOT", "EXISTS")
            column = p.name()
            if not p.rest():
                raise syntax_error(None, self.text)
            if column.text in table.columns:
                if if_not_exists:
                    return
                raise StatementFailed(
                    f'column "{column.text}" of relation "{name.text}" already exists',
                    sqlstate="42701",
                )
            table.columns.append(column.text)
            return
        column = p.name()
        p.accept("SET", "DATA")
        p.expect("TYPE")
        if not p.rest():
            raise syntax_error(None, self.text)
        if column.text not in table.columns:
            raise StatementFailed(
                f'column "{column.text}" of relation "{name.text}" does not exist',
                sqlstate="42703",
            )
        table.filenode = self.db.new_filenode()  # a type change rewrites the table
        self._lock(name.text, "ShareLock")  # as the server's rewrite takes it too
        if self.session._effects is not None:
            self.session._effects["rewrites"].add(name.text)

    def cmd_insert(self) -> None:
        p = self.p
        p.expect("INTO")
        name = p.name()
        table = self._target(name)
        self._write("INSERT")
        self._lock(name.text, "RowExclusiveLock")
        columns = [c[0].text for c in p.parenthesized()] if p.at("(") else table.columns
        p.expect("VALUES")
        rows = []
        while True:
            values = zip(columns, p.parenthesized(), strict=False)
            rows.append({c: _literal(v[0]) for c, v in values if len(v) == 1})
            if not p.accept(","):
                break
        p.done()
        table.rows.extend(rows)  # a single-token literal is kept; an expression is not

    def cmd_update(self) -> None:
        name = self.p.name()
        self._target(name)
        self._write("UPDATE")
        self._lock(name.text, "RowExclusiveLock")
        self.p.expect("SET")
        self.p.rest()

    def cmd_delete(self) -> None:
        self.p.expect("FROM")
        name = self.p.name()
        table = self._target(name)
        self._write("DELETE")
        self._lock(name.text, "RowExclusiveLock")
        if self.p.accept("WHERE"):
            self.p.rest()
            return
        self.p.done()
        table.rows.clear()

    def cmd_analyze(self) -> None:
        token = self.p.peek()
        names = [self.p.name().text] if token is not None else list(self.state.tables)
        self.p.done()
        for name in names:
            table = self._table(name)
            table.reltuples = len(table.rows)


def _literal(token: Token) -> Any:
    """The value of a one-token literal (a number, a string, true, false, NULL)."""
    if token.kind == "num":
        return float(token.text) if "." in token.text else int(token.text)
    if token.kind == "str":
        return token.text[1:-1].replace("''", "'")
    return {"TRUE": True, "FALSE": False, "NULL": None}.get(token.upper, token.text)

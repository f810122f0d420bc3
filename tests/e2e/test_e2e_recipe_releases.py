"""The recipes' own files through the two-release proof (SPEC 11 and 12, issue 30 item 5).

For each recipe, ``patcher new --recipe ...`` writes its versions after a base version (a table
with rows); ``patcher lint`` (with the database) reports no warning; the files go to the test's
S3 and the real handler runs exactly the steps of test_e2e_two_releases.py: ``phase: expand``
applies the expand and backfill versions and holds the contract versions, the next release
starts, the alias shifts 10 % -> 50 % (contract ``held``) -> 100 %, ``phase: contract``. The
previous release works on the old column or shape, the next on the new; neither gets one error
before contract, and after it the previous release fails exactly at what contract removes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patcher.cli.main import main
from tests.e2e.e2ekit import LambdaEnv
from tests.e2e.release_harness import (
    Op,
    Pattern,
    assert_two_releases,
    print_table,
    release,
    table_row,
)
from tests.e2e.release_patterns import ROWS, column_ops, table_sql
from tests.fixtures.engine import query

TABLE: list[str] = []
NOT_NULL_DEFAULT = (
    "SELECT a.attnotnull, a.atthasdef FROM pg_attribute a"
    " WHERE a.attrelid = %s::regclass AND a.attname = %s"
)


@pytest.fixture(scope="module", autouse=True)
def _print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from print_table(
        request, "recipes through two releases, errors/successes per stage (issue 30):", TABLE
    )


def _orders_ops() -> list[Op]:
    """The previous release also writes references to no customer and deletes customers that
    orders reference (each delete removes the customer the op before added)."""
    return [
        *column_ops("orders", "customer_id", 1, "prev"),
        ("insert orphan", lambda n: (
            "INSERT INTO orders (customer_id) VALUES (%s)", (1_000_000 + n,)
        )),
        ("add customer", lambda n: (
            "WITH c AS (INSERT INTO customers (id) VALUES (%s) RETURNING id) "
            "INSERT INTO orders (customer_id) SELECT id FROM c", (100_000 + n,)
        )),
        ("delete customer", lambda n: (
            "DELETE FROM customers WHERE id = %s", (100_000 + n - 1,)
        )),
    ]  # fmt: skip


def _case(recipe: str, argv: list[str], base: str, previous: list[Op], nxt: list[Op],
          removed: set[str]) -> tuple[list[str], Pattern]:  # fmt: skip
    pattern = Pattern(recipe, base, "", "", previous, nxt, frozenset(removed))
    return ["--recipe", recipe, *argv], pattern


CASES = [
    _case(
        "rename-column",
        [
            "--table",
            "people",
            "--column",
            "name",
            "--to",
            "full_name",
            "--type",
            "text",
            "--not-null",
            "--default",
            "'nobody'",
        ],
        table_sql("people", "name text NOT NULL DEFAULT 'nobody'", "name = 'p' || id"),
        column_ops("people", "name", "text", "prev"),
        column_ops("people", "full_name", "text", "next"),
        {"read name", "insert name", "update name"},
    ),
    _case(
        "change-type",
        [
            "--table",
            "items",
            "--column",
            "amount",
            "--to",
            "amount_exact",
            "--type",
            "numeric(12,2)",
            "--from-type",
            "integer",
            "--not-null",
            "--default",
            "0",
        ],
        table_sql("items", "amount integer NOT NULL DEFAULT 0", "amount = id * 10"),
        column_ops("items", "amount", 40, "prev"),
        column_ops("items", "amount_exact", 12.25, "next"),
        {"read amount", "insert amount", "update amount"},
    ),
    _case(
        "set-not-null",
        ["--table", "contacts", "--column", "email", "--default", "'unknown@example.invalid'"],
        table_sql("contacts", "email text", "email = CASE WHEN id % 3 = 0 THEN NULL ELSE 'c' END"),
        [
            *column_ops("contacts", "email", "text", "prev"),
            ("insert without email", lambda n: ("INSERT INTO contacts DEFAULT VALUES", ())),
        ],
        column_ops("contacts", "email", "text", "next"),
        {"insert without email"},
    ),
    _case(
        "add-foreign-key",
        ["--table", "orders", "--column", "customer_id", "--references", "customers(id)"],
        "CREATE TABLE customers (id bigint PRIMARY KEY);\n"
        "INSERT INTO customers SELECT generate_series(1, 50);\n"
        + table_sql("orders", "customer_id bigint", "customer_id = id % 60 + 1"),  # orphans
        _orders_ops(),
        column_ops("orders", "customer_id", 1, "next"),
        {"insert orphan", "delete customer"},
    ),
    _case(
        "add-unique",
        ["--table", "accounts", "--column", "email", "--fix", "NULL"],
        table_sql("accounts", "email text", "email = 'a' || id % 150 || '@example.com'"),
        [
            *column_ops("accounts", "email", "unique", "prev"),
            (
                "insert duplicate",
                lambda n: ("INSERT INTO accounts (email) VALUES ('dup@example.com')", ()),
            ),
        ],
        column_ops("accounts", "email", "unique", "next"),
        {"insert duplicate"},
    ),
    _case(
        "add-check",
        ["--table", "scores", "--column", "points", "--check", "points >= 0", "--fix", "0"],
        table_sql("scores", "points integer", "points = id % 100 - 20"),  # some negative
        [
            *column_ops("scores", "points", 3, "prev"),
            ("insert negative", lambda n: ("INSERT INTO scores (points) VALUES (-5)", ())),
        ],
        column_ops("scores", "points", 5, "next"),
        {"insert negative"},
    ),
]


def write_recipe(folder: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[Path]:
    code = main(["new", *argv, "--dir", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [Path(line.removeprefix("created ")) for line in out.splitlines()]


def lint_findings(dsn: str, files: list[Path], capsys: pytest.CaptureFixture[str]) -> list[Any]:
    argv = ["lint", "--format", "json", "--fail-on", "never", "--database-url", dsn]
    code = main([*argv, *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 0, err
    decoder, at, documents = json.JSONDecoder(), 0, []
    while out[at:].strip():  # the handler's logger (set up in this process) writes here too
        at += len(out[at:]) - len(out[at:].lstrip())
        document, at = decoder.raw_decode(out, at)
        documents.append(document)
    findings: list[Any] = next(d for d in documents if "findings" in d)["findings"]
    return findings


@pytest.mark.parametrize(("argv", "pattern"), CASES, ids=[p.name for _, p in CASES])
def test_recipe_files_through_expand_shift_and_contract(
    argv: list[str],
    pattern: Pattern,
    lambda_env: LambdaEnv,
    api_alias: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "0001_base.up.sql").write_text(pattern.base)
    written = write_recipe(tmp_path, argv, capsys)
    lambda_env.put("0001_base.up.sql", pattern.base)
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    assert query(lambda_env.dsn, f"SELECT count(*) FROM {argv[3]}") == [(ROWS,)]

    ups = [p for p in written if p.name.endswith(".up.sql")]
    warnings = [
        f for f in lint_findings(lambda_env.dsn, written, capsys) if f["severity"] != "info"
    ]
    assert warnings == []
    versions = {int(p.name.split("_")[0]): p.name.split("_")[1] for p in ups}
    assert "backfill" in versions.values()
    assert any(p.read_text().startswith("-- patcher:backfill") for p in ups)
    applied = sorted(v for v, kind in versions.items() if kind != "contract")
    held = sorted(v for v, kind in versions.items() if kind == "contract")
    assert applied and held and max(applied) < min(held)
    lambda_env.put_many({p.name: p.read_text() for p in written})

    prev, nxt = release(lambda_env, api_alias, pattern, applied=applied, held=held)
    TABLE.append(table_row(pattern.name, prev, nxt))
    assert_two_releases(pattern, prev, nxt)
    # contract left no recipe trigger or function and no constraint unvalidated; the backfill
    # filled every row the base version had
    leftovers = (
        "SELECT (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),"
        " (SELECT count(*) FROM pg_proc WHERE pronamespace = current_schema()::regnamespace),"
        " (SELECT count(*) FROM pg_constraint WHERE NOT convalidated)"
    )
    assert query(lambda_env.dsn, leftovers) == [(0, 0, 0)]
    if argv[1] in ("rename-column", "change-type"):
        filled = f"SELECT count(*) FROM {argv[3]} WHERE id <= {ROWS} AND {argv[7]} IS NULL"
        assert query(lambda_env.dsn, filled) == [(0,)]
        # the new column got the old one's NOT NULL and default
        assert query(lambda_env.dsn, NOT_NULL_DEFAULT, (argv[3], argv[7])) == [(True, True)]

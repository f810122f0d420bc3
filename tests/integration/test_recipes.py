"""``patcher new --recipe`` (SPEC 12, issue 30 item 5): per recipe, on real PostgreSQL, from a
table with rows: lint finds nothing but the contract version's marking, expand stops exactly
before the contract version, writes of the previous release (old column) during expand reach
the new column, and up / down all / up leaves equal catalogs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir, Run, make_runner, query, schema_snapshot

TABLE = (
    "CREATE TABLE teams (id bigint PRIMARY KEY);\n"
    "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " name text NOT NULL DEFAULT 'anon', age integer, team_id bigint);\n"
)
ROWS = "INSERT INTO users (name, age) SELECT 'n' || g, CASE WHEN mod(g, 3) = 0 THEN NULL ELSE g END FROM generate_series(1, 250) g"  # noqa: E501

RECIPES: dict[str, list[str]] = {
    "rename-column": [
        "--column", "name", "--to", "full_name", "--type", "text",
        "--not-null", "--default", "'anon'",
    ],
    "change-type": [
        "--column", "age", "--to", "age_big", "--type", "bigint", "--from-type", "integer",
    ],
    "set-not-null": ["--column", "age", "--default", "0"],
    "add-unique": ["--column", "age", "--fix", "NULL"],
    "add-foreign-key": ["--column", "team_id", "--references", "teams(id)"],
    "add-check": ["--column", "age", "--check", "age < 200", "--fix", "199"],
}  # fmt: skip
# versions each recipe writes, by kind (the rest: expand, backfill, contract)
KINDS = {  # a second contract version: the index, or VALIDATE in a transaction of its own
    "add-unique": ["expand", "backfill", "contract", "contract"],
    "add-foreign-key": ["expand", "expand", "backfill", "contract", "contract"],  # index first
    "add-check": ["expand", "backfill", "contract", "contract"],
    "set-not-null": ["expand", "backfill", "contract", "contract"],
    "rename-column": ["expand", "backfill", "contract", "contract"],  # with --not-null
}

LEADING_INDEX = (
    "SELECT bool_and(i.indisvalid) FROM pg_index i JOIN pg_attribute a"
    " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
    " WHERE i.indrelid = %s::regclass AND a.attname = %s"
)

COLUMN = (
    "SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
    " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE a.attrelid = %s::regclass AND a.attname = %s"
)


def write(mdir: MigrationDir, recipe: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    mdir.pair("0001", "users", TABLE, "DROP TABLE users;\nDROP TABLE teams;\n")
    code = main(
        ["new", "--recipe", recipe, "--table", "users", *RECIPES[recipe], "--dir", str(mdir.path)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return [line.removeprefix("created ") for line in out.splitlines()]


def lint_json(capsys: pytest.CaptureFixture[str], dsn: str, files: list[str]) -> list[Any]:
    code = main(["lint", "--format", "json", "--fail-on", "never", "--database-url", dsn, *files])
    out, err = capsys.readouterr()
    assert code == 0, err
    findings: list[Any] = json.loads(out)["findings"]
    return findings


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_lints_clean_holds_contract_syncs_and_round_trips(
    recipe: str, run: Run, mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write(mdir, recipe, capsys)
    ups = [Path(p) for p in paths if p.endswith(".up.sql")]
    assert len(paths) == 2 * len(ups)  # each with its down
    kinds = [p.name.split("_")[1] for p in ups]
    assert kinds == KINDS.get(recipe, ["expand", "backfill", "contract"])
    assert [int(p.name[:4]) for p in ups] == list(range(2, 2 + len(ups)))
    for up in ups:  # the contract versions declare themselves, after -- patcher:no-transaction
        head = up.read_text().split("\n", 2)[:2]
        assert any(line.startswith("-- patcher:contract (recipe ") for line in head) == (
            up.name.split("_")[1] == "contract"
        )
    assert ups[kinds.index("backfill")].read_text().startswith("-- patcher:backfill")
    expands = [v for v, kind in enumerate(kinds, start=2) if kind != "contract"]
    contracts = [v for v, kind in enumerate(kinds, start=2) if kind == "contract"]

    assert run("migrate", target=1)["ok"]
    query(pg_dsn, ROWS)
    query(pg_dsn, "INSERT INTO teams SELECT generate_series(1, 10)")
    query(pg_dsn, "UPDATE users SET team_id = mod(id, 12)")  # 0 and 11: no such team
    if recipe == "add-unique":
        query(pg_dsn, "UPDATE users SET age = 1 WHERE id IN (2, 4)")  # three rows of age 1
    findings = lint_json(capsys, pg_dsn, paths)
    others = [f for f in findings if f["severity"] != "info"]
    # no warning, no error, no unused suppression anywhere: the contract versions declare
    # themselves (-- patcher:contract), so their contract statements are not reported
    assert others == []

    expand = run("migrate", phase="expand")
    assert expand["ok"], expand["error"]
    assert [m["version"] for m in expand["migrations"]] == expands
    assert [h["version"] for h in expand["held"]] == contracts
    assert [m["version"] for m in expand["pending"]] == contracts
    check_in_step(recipe, pg_dsn)

    assert run("migrate", phase="contract")["ok"]
    if recipe == "rename-column":  # the old column's NOT NULL and default, on the new one
        assert query(pg_dsn, COLUMN, ("users", "full_name")) == [(True, "'anon'::text")]
    if recipe == "add-foreign-key":  # the referencing column has a valid index of its own
        assert query(pg_dsn, LEADING_INDEX, ("users", "team_id")) == [(True,)]
    first = schema_snapshot(pg_dsn)
    after_contract = query(pg_dsn, "SELECT * FROM users ORDER BY id")
    down = run("rollback", target=1)
    assert down["ok"], down["error"]
    if recipe == "rename-column":  # the contract's down gave the old column both back
        assert query(pg_dsn, COLUMN, ("users", "name")) == [(True, "'anon'::text")]
    again = run("migrate")
    assert again["ok"], again["error"]
    assert schema_snapshot(pg_dsn) == first
    assert query(pg_dsn, "SELECT * FROM users ORDER BY id") == after_contract


def check_in_step(recipe: str, dsn: str) -> None:
    """Writes of the previous release (old column) and of the next (new column) during
    expand; the backfill filled the rows that were there before."""
    if recipe == "add-foreign-key":  # the backfill set the orphans NULL
        assert query(dsn, "SELECT count(*) FROM users WHERE team_id IN (0, 11)") == [(0,)]
        assert query(dsn, "SELECT team_id FROM users WHERE id IN (11, 12, 13) ORDER BY id") == [
            (None,),
            (None,),
            (1,),
        ]
        query(dsn, "INSERT INTO users (name, team_id) VALUES ('old release', 99)")  # id 251
        query(dsn, "UPDATE users SET team_id = 77 WHERE id = 1")
        query(dsn, "DELETE FROM teams WHERE id = 2")  # the previous release deletes a team
        assert query(dsn, "SELECT team_id FROM users WHERE id IN (1, 2, 251) ORDER BY id") == [
            (None,),
            (None,),
            (None,),
        ]
        assert query(dsn, "SELECT team_id FROM users WHERE id = 3") == [(3,)]
        return
    if recipe == "add-unique":  # every age once; the backfill nulled the duplicates
        dupes = "SELECT count(*) FROM (SELECT age FROM users GROUP BY age HAVING count(*) > 1) d"
        dupes = dupes.replace("GROUP BY", "WHERE age IS NOT NULL GROUP BY")
        assert query(dsn, dupes) == [(0,)]
        assert query(dsn, "SELECT count(DISTINCT age) FROM users") == [(165,)]
        assert query(dsn, "SELECT id FROM users WHERE age = 1") == [(1,)]
        query(dsn, "INSERT INTO users (name, age) VALUES ('old release', 5)")  # a duplicate
        query(dsn, "INSERT INTO users (name, age) VALUES ('new value', 1000)")
        query(dsn, "UPDATE users SET age = 7 WHERE id = 1")  # a duplicate
        query(dsn, "UPDATE users SET name = 'same age' WHERE id = 5")  # age unchanged, kept
        got = query(dsn, "SELECT age FROM users WHERE id IN (1, 2, 5, 251, 252) ORDER BY id")
        assert got == [(None,), (None,), (5,), (None,), (1000,)]
        assert query(dsn, dupes) == [(0,)]
        return
    if recipe == "add-check":  # rows 200..250 broke it before; the backfill fixed them
        assert query(dsn, "SELECT count(*) FROM users WHERE age >= 200") == [(0,)]
        assert query(dsn, "SELECT age FROM users WHERE id = 250") == [(199,)]
        query(dsn, "INSERT INTO users (name, age) VALUES ('old release', 500)")
        query(dsn, "UPDATE users SET age = 300 WHERE id = 1")
        query(dsn, "INSERT INTO users (name, age) VALUES ('null age', NULL)")
        assert query(dsn, "SELECT age FROM users WHERE id IN (1, 251, 252) ORDER BY id") == [
            (199,),
            (199,),
            (None,),
        ]
        return
    if recipe == "set-not-null":
        query(dsn, "INSERT INTO users (name, age) VALUES ('old release', NULL)")
        query(dsn, "UPDATE users SET age = NULL WHERE id = 1")
        assert query(dsn, "SELECT count(*) FROM users WHERE age IS NULL") == [(0,)]
        assert query(dsn, "SELECT age FROM users WHERE id IN (1, 3) ORDER BY id") == [(0,), (0,)]
        return
    old, new = ("name", "full_name") if recipe == "rename-column" else ("age", "age_big")
    value = "'x'" if recipe == "rename-column" else "7"
    query(dsn, "INSERT INTO users (name, age) VALUES ('w', 5)")  # previous release
    query(dsn, f"UPDATE users SET {old} = {value} WHERE id = 2")  # previous release
    if recipe == "rename-column":
        query(dsn, "INSERT INTO users (full_name, age) VALUES ('next', 6)")  # next release
    else:
        query(dsn, "INSERT INTO users (name, age_big) VALUES ('next', 9)")
    query(dsn, f"UPDATE users SET {new} = {value} WHERE id = 4")  # next release
    differ = query(
        dsn, f"SELECT count(*) FROM users WHERE {old}::text IS DISTINCT FROM {new}::text"
    )
    assert differ == [(0,)]
    assert query(dsn, f"SELECT {new}::text FROM users WHERE id IN (1, 2, 4) ORDER BY id") == [
        ("n1" if recipe == "rename-column" else "1",),
        ("x" if recipe == "rename-column" else "7",),
        ("x" if recipe == "rename-column" else "7",),
    ]


def test_validation_runs_beside_the_applications_writes(
    run: Run, mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """add-check's VALIDATE has a version (a transaction) of its own: it applies while a
    transaction of the application holds an uncommitted write on the table (the version that
    adds the constraint NOT VALID takes ACCESS EXCLUSIVE, and its transaction ends first)."""
    write(mdir, "add-check", capsys)
    assert run("migrate", target=1)["ok"]
    query(pg_dsn, ROWS)
    assert run("migrate", target=4)["ok"]  # expand, backfill, the constraint NOT VALID
    with psycopg.connect(pg_dsn) as app:  # a transaction of the application, left open
        app.execute("UPDATE users SET age = 5 WHERE id = 1")
        done = make_runner(pg_dsn, mdir.path, lock_timeout="2s")("migrate")
        app.rollback()
    assert done["ok"], done["error"]
    assert [m["version"] for m in done["migrations"]] == [5]
    valid = "SELECT convalidated FROM pg_constraint WHERE conname = 'users_age_check'"
    assert query(pg_dsn, valid) == [(True,)]


def test_add_unique_over_two_columns(
    run: Run, mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--column team_id,age``: duplicates of the pair (not of either column) get --fix in
    the last column, from the backfill and from writes during expand; contract adds the one
    two-column constraint; up / down / up equal catalogs."""
    mdir.pair("0001", "users", TABLE, "DROP TABLE users;\nDROP TABLE teams;\n")
    argv = ["--recipe", "add-unique", "--table", "users", "--column", "team_id, age"]
    code = main(["new", *argv, "--fix", "NULL", "--dir", str(mdir.path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    paths = [line.removeprefix("created ") for line in out.splitlines()]
    assert Path(paths[0]).name == "0002_expand_add_unique_users_team_id_age.up.sql"
    assert run("migrate", target=1)["ok"]
    query(pg_dsn, ROWS)
    query(pg_dsn, "UPDATE users SET team_id = 1, age = 5 WHERE id IN (5, 6, 7)")  # thrice
    query(pg_dsn, "UPDATE users SET team_id = 2, age = 5 WHERE id = 8")  # same age, once
    assert [f for f in lint_json(capsys, pg_dsn, paths) if f["severity"] != "info"] == []

    assert run("migrate", phase="expand")["ok"]
    query(pg_dsn, "INSERT INTO users (name, team_id, age) VALUES ('dup', 1, 5), ('new', 3, 5)")
    pairs = "SELECT id, age FROM users WHERE id IN (5, 6, 7, 8, 251, 252) ORDER BY id"
    assert query(pg_dsn, pairs) == [(5, 5), (6, None), (7, None), (8, 5), (251, None), (252, 5)]
    assert run("migrate", phase="contract")["ok"]
    key = "SELECT cardinality(conkey) FROM pg_constraint WHERE conname = 'users_team_id_age_key'"
    assert query(pg_dsn, key) == [(2,)]
    first = schema_snapshot(pg_dsn)
    assert run("rollback", target=1)["ok"]
    assert run("migrate")["ok"]
    assert schema_snapshot(pg_dsn) == first


def test_rename_refuses_a_column_whose_default_or_not_null_it_was_not_told(
    run: Run, mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """users.name is NOT NULL DEFAULT 'anon': a recipe written without --not-null / --default
    would let the columns drift apart on insert and lose both at contract; its expand version
    fails before it changes anything, naming the flags."""
    mdir.pair("0001", "users", TABLE, "DROP TABLE users;\nDROP TABLE teams;\n")
    argv = ["--table", "users", "--column", "name", "--to", "full_name", "--type", "text"]
    assert main(["new", "--recipe", "rename-column", *argv, "--dir", str(mdir.path)]) == 0
    capsys.readouterr()
    assert run("migrate", target=1)["ok"]
    expand = run("migrate", phase="expand")
    assert not expand["ok"]
    assert "without --default, without --not-null" in json.dumps(expand["error"])
    assert [m["version"] for m in expand["pending"]][:1] == [2]
    gone = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = %s"
    assert query(pg_dsn, gone, ("full_name",)) == [(0,)]


@pytest.mark.parametrize(("recipe", "column"), [("rename-column", "name"), ("change-type", "age")])
def test_recipe_refuses_a_column_an_index_or_constraint_depends_on(
    recipe: str,
    column: str,
    run: Run,
    mdir: MigrationDir,
    pg_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The contract's DROP COLUMN drops the old column's index and CHECK silently: the new
    column would go to production without them. The expand version fails before it changes
    anything, naming each, and its NOT NULL and default (which the recipe carries) are not
    named."""
    extra = (
        f"CREATE INDEX users_{column}_idx ON users ({column});\n"
        f"ALTER TABLE users ADD CONSTRAINT users_{column}_small\n"
        f"  CHECK (length({column}::text) < 90);\n"
    )
    mdir.pair("0001", "users", TABLE + extra, "DROP TABLE users;\nDROP TABLE teams;\n")
    argv = ["--recipe", recipe, "--table", "users", *RECIPES[recipe], "--dir", str(mdir.path)]
    assert main(["new", *argv]) == 0
    capsys.readouterr()
    assert run("migrate", target=1)["ok"]
    expand = run("migrate", phase="expand")
    assert not expand["ok"] and expand["error"]["version"] == 2, expand
    message = expand["error"]["message"]
    assert f"index users_{column}_idx" in message
    assert f"constraint users_{column}_small on table users" in message
    assert "not_null" not in message and "default" not in message
    assert "cannot carry these over" in message and "CREATE INDEX CONCURRENTLY" in message
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(1,)]
    assert query(pg_dsn, ADDED, (RECIPES[recipe][3],)) == [(0,)]


ADDED = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = %s"


def test_contract_refuses_an_index_added_to_the_old_column_after_expand(
    run: Run, mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Between the releases someone indexes the old column: the contract version stops before
    its DROP COLUMN (the trigger drop before it rolls back too), naming the index."""
    write(mdir, "rename-column", capsys)
    assert run("migrate", target=1)["ok"]
    assert run("migrate", phase="expand")["ok"]
    query(pg_dsn, "CREATE INDEX users_name_late ON users (name)")
    contract = run("migrate", phase="contract")
    assert not contract["ok"], contract
    assert "index users_name_late" in contract["error"]["message"]
    assert query(pg_dsn, ADDED, ("name",)) == [(1,)]
    sync = "SELECT count(*) FROM pg_trigger WHERE tgname = 'users_name_full_name_sync'"
    assert query(pg_dsn, sync) == [(1,)]
    query(pg_dsn, "DROP INDEX users_name_late")
    assert run("migrate", phase="contract")["ok"]
    assert query(pg_dsn, ADDED, ("name",)) == [(0,)]


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--recipe", "drop-everything", "--table", "users"], "unknown recipe 'drop-everything'"),
        (
            ["--recipe", "rename-column", "--table", "users", "--to", "x", "--type", "text"],
            "--column is missing",
        ),
        (
            [
                "--recipe",
                "rename-column",
                "--table",
                "users; DROP",
                "--column",
                "a",
                "--to",
                "b",
                "--type",
                "text",
            ],
            "--table 'users; DROP' is not a plain identifier",
        ),
        (
            ["--recipe", "set-not-null", "--table", "users", "--column", "age"],
            "--default is missing",
        ),
        (
            [
                "--recipe",
                "change-type",
                "--table",
                "t",
                "--column",
                "a",
                "--to",
                "b",
                "--type",
                "bigint",
            ],
            "--from-type None is missing",
        ),
        (
            [
                "--recipe",
                "rename-column",
                "--table",
                "t",
                "--column",
                "a",
                "--to",
                "b",
                "--type",
                "text; x",
            ],
            "--type 'text; x'",
        ),
        (["--table", "users"], "--table only go with --recipe"),
        (
            ["--recipe", "add-unique", "--table", "users", "--column", "age"],
            "--fix is missing or not one SQL expression",
        ),
        (
            ["--recipe", "add-foreign-key", "--table", "t", "--column", "a", "--references", "x"],
            "--references 'x' is missing or not TABLE(COLUMN)",
        ),
        (
            ["--recipe", "add-check", "--table", "t", "--column", "a", "--check", "a > 0"],
            "--fix is missing or not one SQL expression",
        ),
    ],
)
def test_bad_recipe_input_exits_2_naming_it_and_writes_nothing(
    argv: list[str], wanted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["new", *argv, "--dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert wanted in err
    assert list(tmp_path.iterdir()) == []

"""``phase`` (SPEC 11): expand stops before the first contract version and lists what it
holds; contract runs the rest; a dry run shows the same split; phase is for migrate only."""

from __future__ import annotations

from typing import Any

import pytest

from patcher.aws.request import parse_payload
from patcher.cli.main import main
from patcher.core.errors import InvalidRequest
from tests.fixtures.engine import MigrationDir, Run, query


def four_versions(mdir: MigrationDir) -> None:
    mdir.pair(
        "1", "users", "CREATE TABLE users (id bigint PRIMARY KEY, name text);", "DROP TABLE users;"
    )
    mdir.pair(
        "2",
        "email",
        "ALTER TABLE users ADD COLUMN email text;",
        "ALTER TABLE users DROP COLUMN email;",
    )
    mdir.pair(
        "3",
        "rename",
        "CREATE INDEX users_name_idx ON users (name);\n"
        "ALTER TABLE users RENAME COLUMN name TO full_name;\n",
        "ALTER TABLE users RENAME COLUMN full_name TO name;\nDROP INDEX users_name_idx;",
    )
    mdir.pair(
        "4",
        "index",
        "CREATE INDEX users_email_idx ON users (email);",
        "DROP INDEX users_email_idx;",
    )


def versions(result: dict[str, Any], key: str) -> list[int]:
    return [m["version"] for m in result[key]]


def test_expand_holds_the_first_contract_version_and_every_later_one(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    four_versions(mdir)
    assert run("migrate", target=1)["ok"]  # users exists before the change set
    dry = run("migrate", phase="expand", dry_run=True)
    assert dry["ok"] and dry["status"] == "planned"
    assert versions(dry, "migrations") == [2]
    assert versions(dry, "held") == [3, 4]
    assert versions(dry, "pending") == [2, 3, 4]

    first = run("migrate", phase="expand")
    assert first["ok"], first["error"]
    assert first["status"] == "applied"
    assert versions(first, "migrations") == [2]
    assert versions(first, "pending") == [3, 4]
    held = first["held"]
    assert held[0]["description"] == "rename"
    (statement,) = held[0]["statements"]
    assert statement["file"] == "3_rename.up.sql"
    assert statement["line"] == 2
    assert statement["statement"] == "ALTER TABLE users RENAME COLUMN name TO full_name"
    assert "RENAME COLUMN" in statement["reason"] and "rename-column" in statement["reason"]
    assert held[1] == {"version": 4, "description": "index", "statements": []}
    assert any("3_rename.up.sql line 2" in w for w in first["warnings"])
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(2,)]

    again = run("migrate", phase="expand")
    assert again["ok"] and again["status"] == "up_to_date"
    assert versions(again, "held") == [3, 4]

    contract = run("migrate", phase="contract")
    assert contract["ok"] and contract["status"] == "applied"
    assert versions(contract, "migrations") == [3, 4]
    assert "held" not in contract
    assert any("PATCHER_RELEASE_ALIAS" in w for w in contract["warnings"])
    assert run("migrate", phase="expand")["held"] == []


def test_no_phase_is_todays_behaviour(run: Run, mdir: MigrationDir) -> None:
    four_versions(mdir)
    result = run("migrate")
    assert versions(result, "migrations") == [1, 2, 3, 4]
    assert "held" not in result and "release" not in result


def test_what_the_pending_set_creates_is_not_contract(run: Run, mdir: MigrationDir) -> None:
    four_versions(mdir)  # users is created by the same pending set: renaming it breaks no one
    assert versions(run("migrate", phase="expand", dry_run=True), "migrations") == [1, 2, 3, 4]
    for name in mdir.path.iterdir():
        name.unlink()
    mdir.pair("1", "t", "CREATE TABLE t (id bigint PRIMARY KEY, a text);")
    mdir.pair("2", "rename", "ALTER TABLE t RENAME COLUMN a TO b;")
    result = run("migrate", phase="expand")
    assert versions(result, "migrations") == [1, 2] and result["held"] == []


def test_even_a_widening_type_change_waits_for_contract(run: Run, mdir: MigrationDir) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (id bigint PRIMARY KEY, code varchar(10), n int);")
    assert run("migrate")["ok"]
    mdir.pair("2", "wider", "ALTER TABLE t ALTER COLUMN code TYPE varchar(40);")
    mdir.pair("3", "bigint", "ALTER TABLE t ALTER COLUMN n TYPE bigint;")
    result = run("migrate", phase="expand")
    assert versions(result, "migrations") == []
    assert versions(result, "held") == [2, 3]
    (statement,) = result["held"][0]["statements"]
    assert "cached plan must not change result type" in statement["reason"]


def test_a_waived_statement_does_not_hold(run: Run, mdir: MigrationDir) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (id bigint PRIMARY KEY);")
    assert run("migrate")["ok"]
    mdir.pair(
        "2",
        "drop",
        "-- patcher:ignore BREAKS_PREVIOUS_RELEASE no release ever read t\nDROP TABLE t;",
    )
    result = run("migrate", phase="expand")
    assert versions(result, "migrations") == [2] and result["held"] == []


def test_a_declared_contract_version_is_held(run: Run, mdir: MigrationDir) -> None:
    """``-- patcher:contract`` holds a version even when none of its statements classifies
    contract (here a comment on the table)."""
    mdir.pair("1", "t", "CREATE TABLE t (id bigint PRIMARY KEY);")
    assert run("migrate")["ok"]
    mdir.pair("2", "note", "-- patcher:contract (recipe x)\nCOMMENT ON TABLE t IS 'old';")
    mdir.pair("3", "later", "CREATE TABLE u (id bigint);")
    result = run("migrate", phase="expand")
    assert versions(result, "migrations") == [] and versions(result, "held") == [2, 3]
    (statement,) = result["held"][0]["statements"]
    assert statement["statement"] == "-- patcher:contract" and statement["line"] == 1
    assert versions(run("migrate", phase="contract"), "migrations") == [2, 3]


@pytest.mark.parametrize("action", ["rollback", "status", "baseline", "repair"])
def test_phase_with_another_action_is_invalid(run: Run, mdir: MigrationDir, action: str) -> None:
    result = run(action, phase="expand", **({"target": 1} if action == "baseline" else {}))
    assert result["status"] == "invalid"
    assert result["error"]["type"] == "InvalidRequest"
    assert "migrate only" in result["error"]["message"]
    with pytest.raises(InvalidRequest, match="migrate only"):
        parse_payload({"action": action, "phase": "contract"})


def test_payload_refuses_an_unknown_phase() -> None:
    with pytest.raises(InvalidRequest, match="phase"):
        parse_payload({"action": "migrate", "phase": "both"})
    assert parse_payload({"action": "migrate", "phase": "expand"}).phase == "expand"


def test_cli_phase(mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    four_versions(mdir)
    args = ["--source", str(mdir.path), "--database-url", pg_dsn, "--json"]
    assert main(["migrate", "--target", "1", *args]) == 0
    capsys.readouterr()
    assert main(["migrate", "--phase", "expand", *args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert versions(result, "held") == [3, 4]
    with pytest.raises(SystemExit) as usage:
        main(["rollback", "--phase", "expand", *args])
    assert usage.value.code == 2

"""Each layout (SPEC 2a) applied and reverted on PostgreSQL through the commands, and bad
input refused with nothing run."""

from __future__ import annotations

import pytest

from tests.contract.test_layout_contract import BAD, LAYOUTS
from tests.fixtures.engine import MigrationDir, make_runner, query, tables


def write(mdir: MigrationDir, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        mdir.write(name, data)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_migrates_and_rolls_back(pg_dsn: str, mdir: MigrationDir, layout: str) -> None:
    files, expected, repeatables = LAYOUTS[layout]
    write(mdir, files)
    run = make_runner(pg_dsn, mdir.path)  # PATCHER_LAYOUT=auto
    result = run("migrate")
    assert result["ok"], result["error"]
    versioned = [m for m in result["migrations"] if m["version"] is not None]
    assert [m["version"] for m in versioned] == [e[0] for e in expected]
    assert [m["transactional"] for m in versioned] == [e[2] for e in expected]
    assert [m["description"] for m in result["migrations"][len(versioned) :]] == repeatables
    assert "users" in tables(pg_dsn)
    assert query(pg_dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'i'::regclass") == [
        (True,)
    ]
    top = expected[-1]
    back = run("rollback", steps=2)
    if top[3] is None or top[3] == 0:  # the newest version has no down statements
        assert back["error"]["type"] == "Irreversible", back
        assert "users" in tables(pg_dsn)
    else:
        assert back["ok"], back["error"]


def test_dbmate_rollback_through_reversible_versions(pg_dsn: str, mdir: MigrationDir) -> None:
    run = make_runner(pg_dsn, mdir.path, layout="dbmate")
    write(mdir, LAYOUTS["dbmate"][0])
    assert run("migrate")["ok"]
    mdir.write(
        "20240101000002_idx.sql",
        b"-- migrate:up transaction:false\ncreate index concurrently i on users (id);\n"
        b"-- migrate:down transaction:false\ndrop index concurrently i;\n",
    )
    assert run("repair")["ok"]  # the changed file's new checksum, after a human looked
    result = run("rollback", target=0)
    assert result["ok"], result["error"]
    assert [m["version"] for m in result["migrations"]] == [20240101000002, 20240101000001]
    assert "users" not in tables(pg_dsn)


@pytest.mark.parametrize(
    "case",
    [
        "golang-migrate malformed name",
        "flyway dotted version",
        "dbmate two up sections",
        "dbmate missing up marker",
        "goose StatementBegin without StatementEnd",
        "auto mixture",
        "golang-migrate version 0",
        "flyway version 0",
        "dbmate version 0",
        "goose version 0",
    ],
)
def test_bad_input_runs_nothing(pg_dsn: str, mdir: MigrationDir, case: str) -> None:
    layout, files, name, _, _ = BAD[case]
    good = {  # a valid version: it must not run either
        "dbmate": ("90_first.sql", b"-- migrate:up\ncreate table t (id int);\n-- migrate:down\n"),
        "goose": ("90_first.sql", b"-- +goose Up\ncreate table t (id int);\n"),
        "flyway": ("V90__first.sql", b"create table t (id int);\n"),
    }.get(layout, ("90_first.up.sql", b"create table t (id int);\n"))
    write(mdir, {**files, good[0]: good[1]})
    run = make_runner(pg_dsn, mdir.path, layout=layout)
    result = run("migrate")
    assert result["status"] == "invalid"
    assert result["error"]["type"] == "InvalidSource"
    assert name in result["error"]["message"]
    assert tables(pg_dsn) == set()  # not even the history table

"""Issue 26 item 13: Flyway baseline migrations (``B<N>__desc.sql``) and ``SQL_BASELINE``
history rows, as Flyway uses them. A fresh database starts at the newest B file at or below the
target, then the V files above it; once there is a history, B files are ignored; adopt honours
an SQL_BASELINE row. Before, the directory was refused as not parsing."""

from __future__ import annotations

import hashlib

import psycopg

from tests.fixtures.engine import MigrationDir, Run, make_runner, query
from tests.fixtures.foreign_tools import FLYWAY_DDL, flyway_row

A = "create table a (id int primary key);\n"
B = "create table b (id int);\n"


def flyway_with_baseline(mdir: MigrationDir) -> None:
    mdir.write("V1__a.sql", A)
    mdir.write("V2__b.sql", B)
    mdir.write("B2__base.sql", A + B)
    mdir.write("V3__note.sql", "alter table a add column note text;\n")
    mdir.write("U3__note.sql", "alter table a drop column note;\n")


def rows(dsn: str) -> list[tuple[int, str, str]]:
    found = query(dsn, "SELECT version, description, checksum FROM schema_migrations ORDER BY 1")
    return [(r[0], r[1], r[2]) for r in found]


def sha(mdir: MigrationDir, name: str) -> str:
    return hashlib.sha256((mdir.path / name).read_bytes()).hexdigest()


def test_a_fresh_database_starts_at_the_newest_baseline(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    flyway_with_baseline(mdir)
    dry = run("migrate", dry_run=True)
    assert [(m["version"], m["description"]) for m in dry["migrations"]] == [
        (2, "base"), (3, "note")
    ]  # fmt: skip
    first = run("migrate")
    assert first["status"] == "applied", first["error"]
    assert rows(pg_dsn) == [
        (2, "base", sha(mdir, "B2__base.sql")),
        (3, "note", sha(mdir, "V3__note.sql")),
    ]
    again = run("migrate")
    assert (again["status"], again["error"]) == ("up_to_date", None)  # V1 is covered, not late
    status = run("status")
    assert status["ok"] and status["pending"] == [] and status["current_version"] == 3
    assert run("rollback")["status"] == "reverted"  # U3 undoes V3
    below = run("rollback", target=0)
    assert below["error"]["type"] == "Irreversible" and "B2__base.sql" in below["error"]["message"]
    mdir.write("V4__c.sql", "create table c (id int);\n")
    assert [m["version"] for m in run("migrate")["migrations"]] == [3, 4]


def test_a_target_below_every_baseline_and_an_existing_history_ignore_them(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    flyway_with_baseline(mdir)
    assert [m["version"] for m in run("migrate", target=1)["migrations"]] == [1]
    assert [m["version"] for m in run("migrate")["migrations"]] == [2, 3]  # V2, not B2
    assert rows(pg_dsn)[1] == (2, "b", sha(mdir, "V2__b.sql"))
    assert run("migrate")["status"] == "up_to_date"


def test_a_baseline_with_no_versioned_file_of_its_version(
    pg_dsn: str, run: Run, mdir: MigrationDir
) -> None:
    mdir.write("B5__base.sql", A + B)
    mdir.write("V6__c.sql", "create table c (id int);\n")
    assert [m["version"] for m in run("migrate")["migrations"]] == [5, 6]
    assert run("migrate")["status"] == "up_to_date"
    mdir.write("B5__base.sql", A + B + "-- edited\n")
    drift = run("migrate")
    assert drift["error"]["type"] == "ChecksumMismatch"
    assert "B5__base.sql" in drift["error"]["message"]


def test_adopt_honours_flywaysql_baseline_row(pg_dsn: str, mdir: MigrationDir) -> None:
    flyway_with_baseline(mdir)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(FLYWAY_DDL)  # type: ignore[call-overload]
        conn.execute(A + B)
        conn.execute("alter table a add column note text")
        flyway_row(conn, 2, mdir.path / "B2__base.sql", kind="SQL_BASELINE")
        flyway_row(conn, 3, mdir.path / "V3__note.sql")
    run = make_runner(pg_dsn, mdir.path)
    adopted = run("adopt", adopt_from="flyway")
    assert adopted["status"] == "applied", adopted["error"]
    assert rows(pg_dsn) == [
        (2, "base", sha(mdir, "B2__base.sql")),
        (3, "note", sha(mdir, "V3__note.sql")),
    ]
    assert not any("out of order" in w for w in adopted["warnings"])
    assert run("migrate")["status"] == "up_to_date"
    mdir.write("V4__c.sql", "create table c (id int);\n")
    assert [m["version"] for m in run("migrate")["migrations"]] == [4]


def test_adopt_refuses_an_sql_baseline_row_whose_b_file_is_gone(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    flyway_with_baseline(mdir)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(FLYWAY_DDL)  # type: ignore[call-overload]
        flyway_row(conn, 2, mdir.path / "B2__base.sql", kind="SQL_BASELINE")
    (mdir.path / "B2__base.sql").unlink()
    refused = make_runner(pg_dsn, mdir.path)("adopt", adopt_from="flyway")
    assert refused["error"]["type"] == "MissingMigration"
    assert "version(s) 2" in refused["error"]["message"]
    assert query(pg_dsn, "SELECT to_regclass('schema_migrations')") == [(None,)]

"""Issue 26 item 14: an empty source, or an S3 prefix that matches nothing, on a database with
no history is a warning naming the source, not a silent ``up_to_date``."""

from __future__ import annotations

from typing import Any

from tests.fixtures.engine import MigrationDir, Run, make_runner, tables
from tests.fixtures.s3 import MOTO_ACCOUNT, S3Bucket


def warned(result: dict[str, Any], source: str) -> bool:
    return any(f"the source {source} has no migration files" in w for w in result["warnings"])


def test_an_empty_directory_warns_naming_it(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.write("README.md", "notes\n")
    result = run("migrate")
    assert (result["ok"], result["status"]) == (True, "up_to_date")
    assert warned(result, str(mdir.path)), result["warnings"]
    assert tables(pg_dsn) == set()
    mdir.pair("1", "a", "CREATE TABLE a (i int);")
    assert not warned(run("migrate"), str(mdir.path))


def test_an_s3_prefix_that_matches_nothing_warns_naming_it(
    pg_dsn: str, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("migrations/1_a.up.sql", b"CREATE TABLE a (i int);")
    wrong = f"s3://{s3_bucket.name}/Migrations/"
    run = make_runner(pg_dsn, wrong, expected_bucket_owner=MOTO_ACCOUNT)
    for action in ("migrate", "status"):
        result = run(action)
        assert (result["ok"], result["status"]) == (True, "up_to_date")
        assert warned(result, wrong), result["warnings"]
    assert tables(pg_dsn) == set()

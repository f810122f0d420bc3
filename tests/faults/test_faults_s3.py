"""S3 faults through a fault-injecting proxy in front of moto: server errors, throttling,
connection resets, truncated bodies, an object rewritten mid-run, a huge prefix, a huge script,
undecodable and empty scripts; and ExpectedBucketOwner on every request, read off the wire."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest

from tests.faults.faultkit import FaultProxy, Seen
from tests.fixtures.engine import Run, make_runner, query, tables
from tests.fixtures.s3 import MOTO_ACCOUNT, S3Bucket

PREFIX = "migrations/"
pytestmark = pytest.mark.usefixtures("fast_retries")


def s3_runner(pg_dsn: str, bucket: S3Bucket, **config: Any) -> Run:
    config.setdefault("expected_bucket_owner", MOTO_ACCOUNT)
    return make_runner(pg_dsn, f"s3://{bucket.name}/{PREFIX}", **config)


def put_three(bucket: S3Bucket) -> None:
    for v in (1, 2, 3):
        bucket.put(f"{PREFIX}{v:03d}_t{v}.up.sql", f"CREATE TABLE t{v} (id int);".encode())


FAULTS = [
    ("ListObjectsV2", "status", {"status": 500, "code": "InternalError"}),
    ("GetObject", "status", {"status": 500, "code": "InternalError"}),
    ("ListObjectsV2", "status", {"status": 503, "code": "SlowDown"}),
    ("GetObject", "status", {"status": 503, "code": "SlowDown"}),
    ("ListObjectsV2", "reset", {}),
    ("GetObject", "reset", {}),
    ("ListObjectsV2", "truncate", {}),
    ("GetObject", "truncate", {}),
]
IDS = [f"{op}-{action}-{kw.get('code', '')}".strip("-") for op, action, kw in FAULTS]


@pytest.mark.parametrize(("operation", "action", "kwargs"), FAULTS, ids=IDS)
def test_transient_s3_faults_are_retried(
    pg_dsn: str, s3_bucket: S3Bucket, s3_proxy: FaultProxy, operation: str, action: str,
    kwargs: dict[str, Any],
) -> None:  # fmt: skip
    put_three(s3_bucket)
    fault = s3_proxy.inject(operation, action, times=2, **kwargs)
    result = s3_runner(pg_dsn, s3_bucket)("migrate")
    assert result["status"] == "applied", result["error"]
    assert fault.fired == 2
    assert query(pg_dsn, "SELECT version FROM schema_migrations ORDER BY 1") == [(1,), (2,), (3,)]


@pytest.mark.parametrize(("operation", "action", "kwargs"), FAULTS, ids=IDS)
def test_persistent_s3_faults_fail_cleanly_before_the_database(
    pg_dsn: str, s3_bucket: S3Bucket, s3_proxy: FaultProxy, operation: str, action: str,
    kwargs: dict[str, Any],
) -> None:  # fmt: skip
    put_three(s3_bucket)
    fault = s3_proxy.inject(operation, action, times=None, **kwargs)
    started = time.monotonic()
    result = s3_runner(pg_dsn, s3_bucket)("migrate")
    assert time.monotonic() - started < 10
    assert result["ok"] is False and result["status"] == "failed"
    error = result["error"]
    assert error["type"] == "SourceUnavailable", error
    assert f"s3://{s3_bucket.name}/{PREFIX}" in error["message"]
    assert "invoke again" in error["message"] or "network path" in error["message"]
    assert 1 < fault.fired <= 20  # retried, but boundedly
    assert tables(pg_dsn) == set()  # refused before the database was touched


def test_an_object_rewritten_between_list_and_get_is_never_mixed_in(
    pg_dsn: str, s3_bucket: S3Bucket, s3_proxy: FaultProxy
) -> None:
    put_three(s3_bucket)
    key = f"{PREFIX}002_t2.up.sql"

    def rewrite(seen: Seen) -> None:
        s3_bucket.put(key, b"CREATE TABLE t2_rewritten (id int);")

    s3_proxy.inject("GetObject", "before", callback=rewrite, when=lambda s: s.path.endswith(key))
    run = s3_runner(pg_dsn, s3_bucket)
    result = run("migrate")
    assert result["status"] == "failed" and result["error"]["type"] == "SourceUnavailable"
    assert "PreconditionFailed" in result["error"]["message"]
    assert "changed during the run" in result["error"]["message"]
    assert tables(pg_dsn) == set()
    gets = [s for s in s3_proxy.seen if s.operation == "GetObject"]
    assert gets and all(s.headers.get("if-match") for s in gets)
    again = run("migrate")  # the next run sees the new upload as a whole
    assert again["status"] == "applied"
    assert {"t1", "t2_rewritten", "t3"} <= tables(pg_dsn) and "t2" not in tables(pg_dsn)


@pytest.mark.slow
def test_expected_bucket_owner_is_on_every_request_on_the_wire(
    pg_dsn: str, s3_bucket: S3Bucket, s3_proxy: FaultProxy
) -> None:
    s3_bucket.put_many(
        {f"{PREFIX}{v:04d}_t{v}.up.sql": b"SELECT 1;" for v in range(1, 1201)}
    )  # two list pages
    s3_proxy.inject("GetObject", "status", times=1)  # a retry must carry it too
    s3_proxy.inject("ListObjectsV2", "reset", times=1)
    run = s3_runner(pg_dsn, s3_bucket)
    assert run("migrate", target=5)["status"] == "applied"
    assert run("migrate", dry_run=True, target=8)["status"] == "planned"
    assert run("status")["status"] == "planned"
    ops = s3_proxy.operations()
    assert ops.count("ListObjectsV2") >= 7 and ops.count("GetObject") >= 9
    owners = {s.headers.get("x-amz-expected-bucket-owner") for s in s3_proxy.seen}
    assert owners == {MOTO_ACCOUNT}, [s for s in s3_proxy.seen if s.headers.get(
        "x-amz-expected-bucket-owner") != MOTO_ACCOUNT][:3]  # fmt: skip
    unset = s3_runner(pg_dsn, s3_bucket, expected_bucket_owner=None)
    s3_proxy.seen.clear()
    assert unset("status")["status"] == "planned"
    assert all("x-amz-expected-bucket-owner" not in s.headers for s in s3_proxy.seen)


def test_a_non_utf8_script_is_refused_naming_the_file(pg_dsn: str, s3_bucket: S3Bucket) -> None:
    put_three(s3_bucket)
    s3_bucket.put(f"{PREFIX}004_latin1.up.sql", b"INSERT INTO t1 VALUES (1); -- caf\xe9\n")
    result = s3_runner(pg_dsn, s3_bucket)("migrate")
    assert result["status"] == "invalid" and result["error"]["type"] == "InvalidSource"
    assert "004_latin1.up.sql is not valid UTF-8: byte 33 (line 1)" in result["error"]["message"]
    assert tables(pg_dsn) == set()  # nothing ran, not even 1 to 3


def test_an_empty_script_is_recorded_with_a_warning(pg_dsn: str, s3_bucket: S3Bucket) -> None:
    put_three(s3_bucket)
    s3_bucket.put(f"{PREFIX}004_placeholder.up.sql", b"")
    s3_bucket.put(f"{PREFIX}005_comments.up.sql", b"-- nothing yet\n/* later */\n")
    result = s3_runner(pg_dsn, s3_bucket)("migrate")
    assert result["status"] == "applied" and result["current_version"] == 5
    empty = hashlib.sha256(b"").hexdigest()
    assert query(pg_dsn, "SELECT checksum FROM schema_migrations WHERE version = 4") == [(empty,)]
    warned = [w for w in result["warnings"] if "no statements" in w]
    assert len(warned) == 2 and "004_placeholder.up.sql" in warned[0], result["warnings"]
    assert "check the upload" in warned[0]


@pytest.mark.slow
def test_a_prefix_with_ten_thousand_objects(
    pg_dsn: str, s3_bucket: S3Bucket, s3_proxy: FaultProxy
) -> None:
    s3_bucket.put_many(
        {f"{PREFIX}{v:05d}_m{v}.up.sql": f"SELECT {v};".encode() for v in range(1, 10_001)}
    )
    run = s3_runner(pg_dsn, s3_bucket)
    status = run("status")
    assert status["status"] == "planned" and len(status["pending"]) == 10_000
    assert status["pending"][-1] == {"version": 10_000, "description": "m10000"}
    assert s3_proxy.operations().count("ListObjectsV2") == 10  # every page, not just the first
    assert s3_proxy.operations().count("GetObject") == 0  # status reads no script
    s3_proxy.seen.clear()
    applied = run("migrate", target=3)
    assert applied["status"] == "applied" and applied["current_version"] == 3
    assert s3_proxy.operations().count("GetObject") == 3  # only what the plan runs
    s3_bucket.put(f"{PREFIX}99999_z.sql", b"SELECT 1;")  # the very last key, page 10
    refused = run("migrate")
    # under PATCHER_LAYOUT=auto a lone N_desc.sql reads as another tool's layout: refused,
    # naming that file and one of the others, before anything runs
    assert refused["status"] == "invalid" and "'99999_z.sql'" in refused["error"]["message"]
    assert "mixes layouts" in refused["error"]["message"]
    assert query(pg_dsn, "SELECT count(*) FROM schema_migrations") == [(3,)]


@pytest.mark.slow
def test_a_fifty_megabyte_script(pg_dsn: str, s3_bucket: S3Bucket) -> None:
    chunk = "x" * 50_000
    line = f"INSERT INTO blob (body) VALUES ('{chunk}');\n"
    body = ("CREATE TABLE blob (id serial, body text);\n" + line * 1000).encode()
    assert len(body) > 50_000_000
    s3_bucket.put(f"{PREFIX}001_big.up.sql", body)
    run = s3_runner(pg_dsn, s3_bucket)
    preview = run("migrate", dry_run=True)
    assert preview["status"] == "planned"
    size = len(json.dumps(preview).encode())
    assert size < 6_000_000, f"a {size:,}-byte result would exceed Lambda's 6 MB"
    assert preview["migrations"][0]["sql_truncated"] is True
    result = run("migrate")
    assert result["status"] == "applied", result["error"]
    assert result["migrations"][0]["checksum"] == hashlib.sha256(body).hexdigest()
    assert query(pg_dsn, "SELECT count(*), sum(length(body)) FROM blob") == [(1000, 50_000_000)]
    assert len(json.dumps(result).encode()) < 100_000

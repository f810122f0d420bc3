"""What only the S3 source has to get right: pages, owner checks, races, retries, cut bodies."""

from __future__ import annotations

import io
import socket
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from patcher.core.errors import ConfigError, SourceUnavailable
from patcher.core.models import SourceObject
from patcher.sources.catalog import build_catalog
from patcher.sources.s3 import S3Source, client_config
from tests.fixtures.s3 import (
    FAKE_SECRET,
    MOTO_ACCOUNT,
    S3Bucket,
    count_requests,
    fail_requests,
    make_client,
    sent_requests,
)

OWNER_HEADER = "x-amz-expected-bucket-owner"


def source_for(bucket: S3Bucket, *, max_workers: int = 16, **options: Any) -> S3Source:
    """A source on the bucket, its client configured as S3Source's own (the contract suite and
    the tests below that build none check that the client made from the environment works)."""
    client = make_client(bucket.client.meta.endpoint_url, client_config(max_workers))
    return S3Source(bucket.name, "migrations/", client=client, max_workers=max_workers, **options)


def refused(exc: SourceUnavailable, *fragments: str, from_boto: bool = True) -> None:
    """The message names what failed and never carries a secret; the cause is chained."""
    for fragment in fragments:
        assert fragment in exc.message
    assert FAKE_SECRET not in exc.message
    assert (exc.__cause__ is not None) == from_boto


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://my-bucket/migrations/", "my-bucket", "migrations/"),
        ("s3://my-bucket/migrations", "my-bucket", "migrations/"),
        ("s3://my-bucket/a/b/", "my-bucket", "a/b/"),
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
    ],
)
def test_from_url(aws_env: str, url: str, bucket: str, prefix: str) -> None:
    source = S3Source.from_url(url)
    assert (source.bucket, source.prefix) == (bucket, prefix)
    assert source.describe() == f"s3://{bucket}/{prefix}"


@pytest.mark.parametrize("url", ["s3://", "s3:///migrations/", "https://my-bucket/x/"])
def test_from_url_refuses_what_is_not_an_s3_location(aws_env: str, url: str) -> None:
    with pytest.raises(ConfigError, match="s3://bucket/prefix/"):
        S3Source.from_url(url)


def test_default_client_follows_the_environment_and_the_config(aws_env: str) -> None:
    client = S3Source("my-bucket", "m/", max_workers=7).client
    assert client.meta.endpoint_url == aws_env  # AWS_ENDPOINT_URL_S3, read by boto3 itself
    config: Any = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}  # 5 retries
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.max_pool_connections == 7


def test_each_client_reads_the_environment_afresh_on_one_loader(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parsed service model is shared between clients (issue 32: ~150 ms of CPU a client
    otherwise); the endpoint, region and credentials are read anew for each."""
    first: Any = S3Source("my-bucket", "m/").client
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    second: Any = S3Source("my-bucket", "m/").client
    assert (first.meta.endpoint_url, first.meta.region_name) == (aws_env, "us-east-1")
    assert (second.meta.endpoint_url, second.meta.region_name) == (
        "http://127.0.0.1:9",
        "eu-west-1",
    )
    keys = [c._request_signer._credentials.access_key for c in (first, second)]
    assert keys == ["testing", "someone-else"]
    assert first._loader is second._loader


def test_one_client_per_process_for_one_environment(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm container's invocations share the client (issue 32: ~9 ms of CPU each made
    anew); another pool size or another AWS_* environment gets its own."""
    first: Any = S3Source("my-bucket", "m/").client
    assert S3Source("other-bucket", "x/").client is first
    assert S3Source("my-bucket", "m/", max_workers=3).client is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    assert S3Source("my-bucket", "m/").client is not first


@pytest.mark.usefixtures("fast_retries")
def test_a_client_that_failed_is_not_kept(s3_bucket: S3Bucket, aws_env: str) -> None:
    """After an error the next source makes a new client (expired credentials, a broken
    connection pool); without one it keeps the same."""
    source = S3Source(f"{s3_bucket.name}-gone", "migrations/")
    with pytest.raises(SourceUnavailable):
        source.list()
    after: Any = S3Source(s3_bucket.name, "migrations/")
    assert after.client is not source.client
    after.list()
    assert S3Source(s3_bucket.name, "migrations/").client is after.client


def test_lists_every_page_of_a_large_prefix(s3_bucket: S3Bucket) -> None:
    names = [f"{v:05d}_m.up.sql" for v in range(1, 2501)]
    s3_bucket.put_many({f"migrations/{name}": b"select 1;" for name in names})
    s3_bucket.put_many({"migrations-old/00001_m.up.sql": b"", "other/00002_m.up.sql": b""})
    source = source_for(s3_bucket)
    calls = count_requests(source.client)
    listed = source.list()
    assert [o.name for o in listed] == names
    assert all(o.key == f"migrations/{o.name}" and o.size == 9 for o in listed)
    assert calls == {"ListObjectsV2": 3}
    assert len(build_catalog(listed).migrations) == 2500


def test_lists_only_what_is_directly_under_the_prefix(s3_bucket: S3Bucket) -> None:
    for key in [
        "migrations/",  # the console's folder marker
        "migrations/0001_a.up.sql",
        "migrations/sub/0002_b.up.sql",
        "migrations/sub/deeper/0003_c.up.sql",
        "migrations-old/0004_d.up.sql",
        "0005_e.up.sql",
    ]:
        s3_bucket.put(key, b"select 1;")
    listed = source_for(s3_bucket).list()
    assert [(o.name, o.key) for o in listed] == [
        ("0001_a.up.sql", "migrations/0001_a.up.sql"),
        ("sub/", "migrations/sub/"),
    ]
    top = S3Source(s3_bucket.name, "").list()
    assert [o.name for o in top] == ["0005_e.up.sql", "migrations-old/", "migrations/"]


def test_fingerprint_is_the_etag_and_reads_are_pinned_to_it(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    (obj,) = source.list()
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=obj.key)
    assert obj.fingerprint == head["ETag"].strip('"')
    sent = sent_requests(source.client)
    assert source.read(obj) == b"select 1;"
    assert source.read(SourceObject(name=obj.name, key=obj.key)) == b"select 1;"
    assert [r.headers.get("if-match") for r in sent] == [f'"{obj.fingerprint}"', None]


def test_an_object_rewritten_between_list_and_get_is_refused(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    s3_bucket.put("migrations/0002_b.up.sql", b"select 2;")
    source = source_for(s3_bucket)
    listed = source.list()
    s3_bucket.put("migrations/0002_b.up.sql", b"select 'two';")
    assert source.read(listed[0]) == b"select 1;"
    with pytest.raises(SourceUnavailable) as info:
        source.read(listed[1])
    refused(info.value, "migrations/0002_b.up.sql", "PreconditionFailed", "changed during the run")
    with pytest.raises(SourceUnavailable, match="changed during the run"):
        list(source.read_many(listed))


def test_expected_bucket_owner_is_sent_on_every_request(s3_bucket: S3Bucket) -> None:
    s3_bucket.put_many({f"migrations/{v:04d}_m.up.sql": b"select 1;" for v in range(1, 1102)})
    source = source_for(s3_bucket, expected_bucket_owner=MOTO_ACCOUNT)
    sent = sent_requests(source.client)
    listed = source.list()
    source.read(listed[0])
    assert len(list(source.read_many(listed[:40]))) == 40
    assert [r.operation for r in sent].count("ListObjectsV2") == 2
    assert [r.operation for r in sent].count("GetObject") == 41
    assert all(r.headers.get(OWNER_HEADER) == MOTO_ACCOUNT for r in sent)


def test_no_owner_header_when_no_owner_is_configured(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    sent = sent_requests(source.client)
    source.read(source.list()[0])
    assert len(sent) == 2
    assert all(OWNER_HEADER not in r.headers for r in sent)


def test_moto_does_not_enforce_expected_bucket_owner(s3_bucket: S3Bucket) -> None:
    """Why the next test checks the owner itself; if this fails, moto enforces it now."""
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    assert source_for(s3_bucket, expected_bucket_owner="999999999999").list()


def test_a_bucket_of_another_account_is_refused(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    (obj,) = source_for(s3_bucket).list()
    source = source_for(s3_bucket, expected_bucket_owner="999999999999")
    # What S3 does: 403 AccessDenied when the header names another account than the owner's.
    fail_requests(
        source.client,
        "*",
        status=403,
        code="AccessDenied",
        when=lambda request: request.headers.get(OWNER_HEADER) not in (None, MOTO_ACCOUNT),
    )
    with pytest.raises(SourceUnavailable) as info:
        source.list()
    refused(info.value, s3_bucket.name, "AccessDenied", "PATCHER_EXPECTED_BUCKET_OWNER")
    with pytest.raises(SourceUnavailable) as info:
        source.read(obj)
    refused(info.value, obj.key, "AccessDenied", "s3:GetObject")


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "SlowDown")])
@pytest.mark.parametrize("operation", ["ListObjectsV2", "GetObject"])
def test_transient_errors_are_retried(
    s3_bucket: S3Bucket, operation: str, status: int, code: str
) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    attempts = count_requests(source.client, attempts=True)
    injected = fail_requests(source.client, operation, status=status, code=code, times=3)
    (obj,) = source.list()
    assert source.read(obj) == b"select 1;"
    assert injected["failed"] == 3
    assert attempts[operation] == 4


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "SlowDown")])
def test_errors_that_never_stop_give_source_unavailable(
    s3_bucket: S3Bucket, status: int, code: str
) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    attempts = count_requests(source.client, attempts=True)
    (obj,) = source.list()
    fail_requests(source.client, "*", status=status, code=code)
    with pytest.raises(SourceUnavailable) as info:
        source.read(obj)
    refused(info.value, obj.key, code, "invoke again")
    with pytest.raises(SourceUnavailable) as info:
        source.list()
    refused(info.value, f"s3://{s3_bucket.name}/migrations/", code)
    assert attempts == {"ListObjectsV2": 1 + 6, "GetObject": 6}


def _cut_bodies(client: Any, times: int | None) -> list[int]:
    """Answer GetObject with a 200 whose body stops halfway through its Content-Length."""
    cut: list[int] = []

    class Half:
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data[: len(data) // 2])

        def read(self, amt: int | None = None) -> bytes:
            return self._data.read(amt)

        def stream(self, **_: Any) -> Any:
            yield self._data.read()

        def close(self) -> None:
            self._data.close()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if times is not None and len(cut) >= times:
            return None
        cut.append(1)
        data = b"select 'a body long enough to be cut in half';"
        headers: Any = {"Content-Length": str(len(data)), "ETag": '"x"'}
        return AWSResponse(request.url, 200, headers, Half(data))

    client.meta.events.register("before-send.s3.GetObject", handler)
    return cut


def test_a_body_cut_short_raises(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    (obj,) = source.list()
    cut = _cut_bodies(source.client, times=None)
    with pytest.raises(SourceUnavailable) as info:
        source.read(obj)
    refused(info.value, obj.key, "cut short")
    assert len(cut) == 3  # the whole GET is tried three times


def test_a_body_cut_short_once_is_fetched_again(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    (obj,) = source.list()
    cut = _cut_bodies(source.client, times=1)
    assert source.read(obj) == b"select 1;"
    assert len(cut) == 1


def test_a_body_shorter_than_content_length_is_not_used(s3_bucket: S3Bucket) -> None:
    """Even when the stream itself does not notice, the length is checked."""
    s3_bucket.put("migrations/0001_a.up.sql", b"select 1;")
    source = source_for(s3_bucket)
    (obj,) = source.list()

    def shorten(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Body"] = StreamingBody(io.BytesIO(b"sel"), 3)

    source.client.meta.events.register("after-call.s3.GetObject", shorten)
    with pytest.raises(SourceUnavailable) as info:
        source.read(obj)
    refused(info.value, obj.key, "3 of 9 bytes", from_boto=False)


def test_read_many_fetches_in_parallel(s3_bucket: S3Bucket) -> None:
    s3_bucket.put_many({f"migrations/{v:04d}_m.up.sql": b"select 1;" for v in range(1, 41)})
    source = source_for(s3_bucket, max_workers=8)
    threads: set[int] = set()
    source.client.meta.events.register(
        "before-send.s3.GetObject", lambda **_: threads.add(threading.get_ident())
    )
    listed = source.list()
    assert [o for o, _ in source.read_many(listed)] == listed
    assert 1 < len(threads) <= 8


def test_a_missing_bucket_names_the_bucket_and_the_fix(s3_bucket: S3Bucket) -> None:
    with pytest.raises(SourceUnavailable) as info:
        S3Source(f"{s3_bucket.name}-gone", "migrations/").list()
    refused(info.value, f"{s3_bucket.name}-gone", "NoSuchBucket", "PATCHER_SOURCE")


@pytest.mark.usefixtures("fast_retries")
def test_an_unreachable_endpoint_is_source_unavailable(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://user:pw@127.0.0.1:{port}")
    with pytest.raises(SourceUnavailable) as info:
        S3Source("my-bucket", "migrations/").list()
    refused(info.value, "s3://my-bucket/migrations/", "cannot reach", "AWS_ENDPOINT_URL_S3")
    assert "pw" not in info.value.message


def test_missing_credentials_are_source_unavailable(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(SourceUnavailable) as info:
        S3Source("my-bucket", "migrations/").list()
    refused(info.value, "s3://my-bucket/migrations/", "credentials")


def test_an_invalid_bucket_name_is_source_unavailable(aws_env: str) -> None:
    with pytest.raises(SourceUnavailable) as info:
        S3Source("bad bucket!", "migrations/").list()
    refused(info.value, "bad bucket!", "PATCHER_SOURCE")

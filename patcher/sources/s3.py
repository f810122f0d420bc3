"""Migration files under one S3 prefix (``s3://bucket/prefix/``).

Only objects directly under the prefix are listed (ListObjectsV2 with ``Delimiter="/"``, every
page); "folders" below it come back as names ending in ``/`` so the catalog warns about them.

Fingerprint: the object's ETag, quotes stripped, and no version id. ListObjectsV2 does not
return version ids; getting them would take ListObjectVersions (every old version and delete
marker, plus the ``s3:ListBucketVersions`` permission) or a HeadObject per file. The fingerprint
only has to change whenever the content changes, and the ETag does (for multipart or KMS
objects it is not an MD5, and rewriting identical bytes may change it: harmless, the file is
then read and checksummed again). Reads send ``IfMatch=<ETag>``, so the bytes read are the
ones listed, on versioned and unversioned buckets alike: an object rewritten between the list
and the read fails with ``PreconditionFailed`` instead of mixing two uploads in one run.

``*.sql`` objects larger than the size cap (PATCHER_MAX_SCRIPT_MB) are refused from the
listing's ``Size``, before any GET; a GET whose ``ContentLength`` is over it is refused unread.

Every botocore error becomes ``SourceUnavailable`` naming the bucket or key, the AWS error code
and what to do; ``ExpectedBucketOwner`` goes on every request when configured.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import botocore.config
import botocore.loaders
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from patcher.core.errors import ConfigError, SourceUnavailable
from patcher.core.models import SourceObject
from patcher.sources.catalog import DEFAULT_MAX_SCRIPT_BYTES, refuse_oversized

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_ATTEMPTS = 3  # whole GETs, for bodies cut short; botocore retries the requests themselves
_ACCESS = (
    "check that the function's role allows s3:ListBucket on the bucket and s3:GetObject on the "
    "prefix (and kms:Decrypt if the objects are KMS-encrypted), and that "
    "PATCHER_EXPECTED_BUCKET_OWNER names the account that owns the bucket"
)
_CREDENTIALS = "check the AWS credentials the function or your shell runs with"
_HINTS = {
    "AccessDenied": _ACCESS,
    "AllAccessDisabled": _ACCESS,
    "Forbidden": _ACCESS,
    "403": _ACCESS,
    "NoSuchBucket": "check the bucket name in PATCHER_SOURCE / --source",
    "404": "check the bucket name in PATCHER_SOURCE / --source",
    "NoSuchKey": "the object was deleted after it was listed; re-run once the upload is done",
    "PreconditionFailed": "the object changed during the run; re-run once the upload is done",
    "PermanentRedirect": "the bucket is in another region; set AWS_REGION to the bucket's region",
    "AuthorizationHeaderMalformed": "the bucket is in another region; set AWS_REGION to it",
    "InvalidAccessKeyId": _CREDENTIALS,
    "SignatureDoesNotMatch": _CREDENTIALS,
    "ExpiredToken": _CREDENTIALS,
    "InvalidToken": _CREDENTIALS,
    "InvalidObjectState": "the object is archived (Glacier); restore it or upload it again",
}
_SERVER = "S3 kept failing through every retry; invoke again in a minute"
_OTHER = "check the bucket and prefix in PATCHER_SOURCE / --source and the function's role"
_USERINFO = re.compile(r"//[^/@\s]*@")


class S3Source:
    """Lists and reads the objects directly under ``s3://bucket/prefix/``."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        client: S3Client | None = None,
        expected_bucket_owner: str | None = None,
        max_workers: int = 16,
        max_script_bytes: int | None = DEFAULT_MAX_SCRIPT_BYTES,
    ) -> None:
        self.bucket = bucket
        self.max_script_bytes = max_script_bytes
        self.prefix = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
        self.max_workers = max(1, max_workers)
        self._owner: dict[str, Any] = (
            {"ExpectedBucketOwner": expected_bucket_owner} if expected_bucket_owner else {}
        )
        self.client = client if client is not None else self._make_client()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        client: S3Client | None = None,
        expected_bucket_owner: str | None = None,
        max_workers: int = 16,
        max_script_bytes: int | None = DEFAULT_MAX_SCRIPT_BYTES,
    ) -> S3Source:
        """``s3://bucket/prefix/`` (or ``s3://bucket`` for the bucket's top level)."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise ConfigError(f"{url!r} is not an S3 location; expected 's3://bucket/prefix/'")
        return cls(
            bucket,
            prefix,
            client=client,
            expected_bucket_owner=expected_bucket_owner,
            max_workers=max_workers,
            max_script_bytes=max_script_bytes,
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def list(self) -> list[SourceObject]:
        objects: list[SourceObject] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/", **self._owner
        )
        try:
            for page in pages:
                for folder in page.get("CommonPrefixes", []):
                    key = folder["Prefix"]
                    objects.append(SourceObject(name=key[len(self.prefix) :], key=key))
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key == self.prefix:  # the console's zero-byte "folder" marker
                        continue
                    etag = item.get("ETag")
                    objects.append(
                        SourceObject(
                            name=key[len(self.prefix) :],
                            key=key,
                            fingerprint=etag.strip('"') if etag else None,
                            size=item.get("Size"),
                        )
                    )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc, f"cannot list {self.describe()}") from exc
        refuse_oversized(objects, self.max_script_bytes)
        return sorted(objects, key=lambda o: o.name)

    def read(self, obj: SourceObject) -> bytes:
        where = f"cannot read s3://{self.bucket}/{obj.key}"
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": obj.key, **self._owner}
        if obj.fingerprint is not None:
            kwargs["IfMatch"] = f'"{obj.fingerprint}"'
        failure: BotoCoreError | None = None
        for _ in range(_READ_ATTEMPTS):
            try:
                response = self.client.get_object(**kwargs)
            except (BotoCoreError, ClientError) as exc:
                raise self._unavailable(exc, where) from exc
            self._refuse_oversized(obj, response)
            try:
                body = response["Body"].read()
            except BotoCoreError as exc:  # cut short, timed out or failed its checksum: GET again
                response["Body"].close()
                failure = exc
                continue
            expected = response.get("ContentLength")
            if expected is None or len(body) == expected:
                return body
            failure = None
        if failure is not None:
            raise self._unavailable(failure, where) from failure
        raise SourceUnavailable(
            f"{where}: the body was cut short ({len(body)} of {expected} bytes) "
            f"{_READ_ATTEMPTS} times; check the network path to S3 and invoke again"
        )

    def _refuse_oversized(self, obj: SourceObject, response: Any) -> None:
        """A GET over the cap (an object replaced since the listing, unconditionally read)."""
        length = response.get("ContentLength")
        if self.max_script_bytes is not None and (length or 0) > self.max_script_bytes:
            response["Body"].close()
            grown = SourceObject(obj.name, obj.key, size=length)
            refuse_oversized([grown], self.max_script_bytes)

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]:
        todo = list(objs)
        if len(todo) <= 1:
            for obj in todo:
                yield obj, self.read(obj)
            return
        with ThreadPoolExecutor(min(self.max_workers, len(todo))) as pool:
            yield from zip(todo, pool.map(self.read, todo), strict=True)

    def _make_client(self) -> S3Client:
        try:
            return cast("S3Client", _client(self.max_workers))
        except (BotoCoreError, ValueError) as exc:
            raise SourceUnavailable(
                f"cannot create an S3 client for {self.describe()}: {_redact(str(exc))}; "
                "check AWS_REGION and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL"
            ) from exc

    def _unavailable(self, exc: Exception, where: str) -> SourceUnavailable:
        """Turn a botocore error into a message saying what failed and what to do next (and
        forget the process's client: the next invocation makes a new one)."""
        _forget(self.client)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code") or "Unknown"
            text = (error.get("Message") or "")[:300]
            hint = _HINTS.get(code)
            if hint is None:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                hint = _SERVER if status >= 500 or code == "SlowDown" else _OTHER
            detail = f"{code}: {text}" if text else code
        elif isinstance(
            exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError
        ):
            detail, hint = "no usable AWS credentials", _CREDENTIALS
        elif isinstance(exc, ConnectionError):
            endpoint = _redact(self.client.meta.endpoint_url)
            detail = f"{type(exc).__name__}: cannot reach {endpoint}"
            hint = "check the network path (VPC endpoint or NAT) or AWS_ENDPOINT_URL_S3"
        elif isinstance(exc, IncompleteReadError):
            detail = f"IncompleteReadError: the body was cut short, {exc}"
            hint = "check the network path to S3 and invoke again"
        elif isinstance(exc, ParamValidationError):
            detail = f"ParamValidationError: {_redact(str(exc))}"
            hint = "check the bucket name and prefix in PATCHER_SOURCE / --source"
        else:
            detail = f"{type(exc).__name__}: {_redact(str(exc))}"
            hint = "check the network path to S3 and invoke again"
        return SourceUnavailable(f"{where} ({detail}); {hint}")


_LOADERS: dict[Any, botocore.loaders.Loader] = {}
_LOADERS_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}  # (pool size, the AWS_* environment) -> its client
_CLIENTS_LOCK = threading.Lock()


def _client(max_workers: int) -> Any:
    """The process's S3 client for this pool size and this ``AWS_*`` environment (region,
    endpoints, credentials, config files), made on first use. A new session and client per
    invocation cost ~9 ms of a warm invocation's ~28 ms of CPU (bench/fleet, issue 32), as AWS
    says of clients made in the handler; a changed environment makes a new one, and a client
    that reported an error is forgotten (``_forget``). botocore clients are thread-safe."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (max_workers, env)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            config = client_config(max_workers)
            client = _CLIENTS[key] = _session().create_client("s3", config=config)
        return client


def _forget(client: Any) -> None:
    """Drop ``client`` from the process's clients (after an error: expired credentials or a
    broken connection pool are not kept for the next invocation)."""
    with _CLIENTS_LOCK:
        for key in [k for k, c in _CLIENTS.items() if c is client]:
            del _CLIENTS[key]


def _session() -> botocore.session.Session:
    """A new session for each new client (credentials, region and endpoint read afresh, as a new
    ``boto3.session.Session`` did) on one data loader per process: the loader keeps the parsed
    service model and endpoint rules, which a new session's own loader parsed again for every
    client (~150 ms of CPU each; a warm container's later invocations, and bench/fleet's 20 in
    one process, paid it each time; ~15 ms with the shared loader)."""
    session = botocore.session.get_session()
    path = session.get_config_variable("data_path")
    with _LOADERS_LOCK:
        loader = _LOADERS.get(path)
        if loader is None:
            loader = _LOADERS[path] = botocore.loaders.create_loader(path)
    session.register_component("data_loader", loader)
    return session


def client_config(max_workers: int = 16) -> botocore.config.Config:
    """How S3Source configures the client it makes: 1 + 5 attempts, short timeouts."""
    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_workers,
    )


def _redact(text: str) -> str:
    """One line, without any ``user:password@`` an endpoint URL might carry."""
    return _USERINFO.sub("//***@", " ".join(text.split()))

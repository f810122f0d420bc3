"""What a user would run instead of StackFlowPatcher for the corpus benchmark (issue 32 items 5
and 6), and the processes that split our time into its parts.

Every peer gets the same S3 objects from the same moto server and applies them with one psql
process, each transactional file in its own transaction with a history row (the reference
stream of ``bench.corpus``): the fetch step writes the files to a fresh directory and psql reads
them there through a driver file of ``\\i`` lines (written beforehand, untimed: a user's script
would know its file names and checksums the same way). The batched floor sends the same SQL as
we batch it: up to ``MAX_ITEMS`` consecutive transactional migrations a message, joined with
psql's ``\\;``; a no-transaction one alone.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from patcher.engine.batched_steps import MAX_ITEMS
from patcher.sql.lexer import split_statements

NO_TX = "-- patcher:no-transaction\n"
HISTORY = ("CREATE TABLE floor_history (version bigint PRIMARY KEY, checksum text NOT NULL, "
           "applied_at timestamptz NOT NULL DEFAULT now());\n")  # fmt: skip
# boto3 as a user's small script would use it: list the prefix, get each object, write it out.
DOWNLOAD = """\
import sys
from pathlib import Path
import boto3
bucket, prefix, out, endpoint = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        (Path(out) / item["Key"][len(prefix):]).write_bytes(body)
"""
# The handler's imports alone (interpreter start and imports), then those and the S3 listing and
# reads as the handler makes them (patcher's S3 source, its thread pool), nothing applied.
IMPORTS = "import sys\nimport patcher.aws.handler\ncode = 0\n"
S3_READS = """\
import os, sys
import patcher.aws.handler
from patcher.sources.s3 import S3Source
source = S3Source.from_url(os.environ["PATCHER_SOURCE"])
objects = source.list()
read = sum(len(body) for _, body in source.read_many(objects))
code = 0 if len(objects) == int(sys.argv[1]) and read else "missing objects"
"""


def _insert(name: str, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"INSERT INTO floor_history VALUES ({int(name[:4])}, '{digest}')"


def driver(files: dict[str, str], folder: Path) -> str:
    """psql's script over the files in ``folder``: each one read with ``\\i``, in its own
    transaction with its history row (a no-transaction one as it is, then its row)."""
    parts = [HISTORY]
    for name, text in files.items():
        include = f"\\i {folder / name}\n{_insert(name, text)};\n"
        parts.append(include if text.startswith(NO_TX) else f"BEGIN;\n{include}COMMIT;\n")
    return "".join(parts)


def batched_stream(files: dict[str, str], max_items: int = MAX_ITEMS) -> str:
    """The same SQL in messages as we send it: consecutive transactional migrations, up to
    ``max_items`` a message, each in its own transaction with its history row, joined by
    ``\\;`` so psql sends them as one query; a no-transaction migration alone, statement by
    statement, then its row."""
    parts, batch = [HISTORY], []
    for name, text in files.items():
        statements = [s.text for s in split_statements(text)]
        if text.startswith(NO_TX):
            parts.append(_message(batch))
            batch = []
            parts.append("".join(f"{s}\n;\n" for s in statements) + f"{_insert(name, text)};\n")
            continue
        batch.append(["BEGIN", *statements, _insert(name, text), "COMMIT"])
        if len(batch) == max_items:
            parts.append(_message(batch))
            batch = []
    parts.append(_message(batch))
    return "".join(parts)


def _message(batch: list[list[str]]) -> str:
    """One query for psql: the statements separated by ``\\;`` on lines of their own (a
    statement's trailing line comment cannot swallow it), ended by ``;``."""
    if not batch:
        return ""
    return "\n\\;\n".join(s for migration in batch for s in migration) + "\n;\n"


def s3_sync(aws: str, bucket: str, prefix: str, out: Path, endpoint: str) -> list[str]:
    return [aws, "s3", "sync", "--only-show-errors", "--endpoint-url", endpoint,
            f"s3://{bucket}/{prefix}", str(out)]  # fmt: skip


def boto3_download(bucket: str, prefix: str, out: Path, endpoint: str) -> list[str]:
    return [sys.executable, "-c", DOWNLOAD, bucket, prefix, str(out), endpoint]

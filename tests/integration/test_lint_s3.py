"""``patcher lint s3://bucket/prefix/``: the same findings as for a directory, S3 URIs shown."""

from __future__ import annotations

import json

import pytest

from patcher.cli.main import main
from tests.fixtures.s3 import S3Bucket


def test_lint_an_s3_prefix(s3_bucket: S3Bucket, capsys: pytest.CaptureFixture[str]) -> None:
    s3_bucket.put("migrations/1_base.up.sql", b"CREATE TABLE t (a bigint);")
    s3_bucket.put("migrations/2_index.up.sql", b"CREATE INDEX ON t (a);\nCREATE INDEX ON u (a);")
    s3_bucket.put("migrations/README.md", b"ignored")
    s3_bucket.put("other/3_x.up.sql", b"DROP TABLE u;")
    prefix = f"s3://{s3_bucket.name}/migrations/"
    assert main(["lint", "--format", "json", prefix]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == [prefix + "1_base.up.sql", prefix + "2_index.up.sql"]
    assert [(f["file"], f["line"], f["code"]) for f in report["findings"]] == [
        (prefix + "2_index.up.sql", 2, "INDEX_NOT_CONCURRENT")
    ]
    assert main(["lint", "--format", "sarif", prefix]) == 1
    [result] = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": prefix + "2_index.up.sql"}


def test_lint_an_unreachable_bucket_is_a_clear_error(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "s3://no-such-bucket-i17/migrations/"]) == 2
    assert "no-such-bucket-i17" in capsys.readouterr().err

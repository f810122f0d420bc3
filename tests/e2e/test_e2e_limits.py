"""Lambda's 6 MB response limit, and the source size cap, through ``lambda_handler``.

Every result is measured both ways a Lambda runtime may serialize it: UTF-8 with
``ensure_ascii=False`` (python3.12+) and ``json.dumps``' default ASCII escapes (a CJK character
then takes 6 bytes, an emoji 12). Both must stay within 6,000,000 bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2ekit import HandlerS3, LambdaEnv
from tests.fixtures.engine import history, tables

LIMIT = 6_000_000
MARKER = "[truncated by StackFlowPatcher"
CJK = "迁移数据库字段索引约束"  # 11 characters, 33 bytes of UTF-8, 66 escaped
EMOJI = "🚀🐘📦🔥✅"  # 5 characters, 19 bytes of UTF-8, 54 escaped


def sizes(result: dict[str, Any]) -> tuple[int, int]:
    """(UTF-8 bytes, ASCII-escaped bytes) of the result as JSON."""
    return (
        len(json.dumps(result, ensure_ascii=False).encode()),
        len(json.dumps(result).encode()),
    )


def assert_fits(result: dict[str, Any]) -> None:
    utf8, escaped = sizes(result)
    print(f"result: {utf8:,} bytes UTF-8, {escaped:,} bytes ASCII-escaped")
    assert utf8 <= LIMIT and escaped <= LIMIT, (utf8, escaped)


def inserts(text: str, rows: int) -> str:
    return "".join(f"INSERT INTO t VALUES ({i}, '{text}');\n" for i in range(rows))


def test_huge_cjk_and_emoji_scripts_dry_run_fits(lambda_env: LambdaEnv) -> None:
    """Two scripts of ~3.3 MB UTF-8 each (CJK, emoji): 6.5 MB of SQL, 16 MB escaped. One
    statement each: pglast's risk analysis is slow on many non-ASCII statements."""
    lambda_env.put("1_t.up.sql", "CREATE TABLE t (id int, v text);\n")
    lambda_env.put("2_cjk.up.sql", inserts(CJK * 100_000, 1))
    lambda_env.put("3_emoji.up.sql", inserts(EMOJI * 170_000, 1))
    result = lambda_env.invoke({"action": "migrate", "dry_run": True})
    assert (result["ok"], result["status"]) == (True, "planned")
    assert_fits(result)
    entries = {e["version"]: e for e in result["migrations"]}
    assert entries[1]["sql"] == "CREATE TABLE t (id int, v text);\n"  # small ones stay whole
    for version in (2, 3):
        assert entries[version]["sql_truncated"] is True
        assert MARKER in entries[version]["sql"]
        assert f"read version {version} (up) for the rest" in entries[version]["sql"]
        assert len(entries[version]["sql"]) > 100_000  # a useful head, not a stub
    assert result["truncated"] is True and "was cut to fit" in result["warnings"][0]
    assert tables(lambda_env.dsn) == set()


def test_many_migrations_with_long_names_dry_run_fits(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """6,000 migrations whose names are 80 CJK characters: entries and pending alone are
    ~10 MB escaped. A local directory (putting 6,000 objects into moto takes minutes)."""
    source = tmp_path / "many"
    source.mkdir()
    for version in range(1, 6_001):
        description = (CJK * 8)[:80]
        (source / f"{version:05d}_{description}.up.sql").write_text(f"SELECT '{EMOJI}';\n")
    monkeypatch.setenv("PATCHER_SOURCE", str(source))
    result = lambda_env.invoke({"action": "migrate", "dry_run": True})
    assert result["status"] == "planned" and result["truncated"] is True
    assert_fits(result)
    shown = len(result["migrations"]) + result.get("migrations_truncated", 0)
    assert shown == 6_000
    assert len(result["pending"]) + result.get("pending_truncated", 0) == 6_000
    assert result["migrations"][0]["version"] == 1  # the head of the list is kept


def test_refused_payload_with_a_3mb_key_quotes_200_characters(lambda_env: LambdaEnv) -> None:
    for key in ("k" * 3_000_000, CJK * 300_000, EMOJI * 600_000):
        result = lambda_env.invoke({"action": "migrate", key: True, "target": key})
        assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidRequest")
        text = json.dumps(result, ensure_ascii=False)
        assert key[:201] not in text, "at most 200 characters of the key are quoted"
        assert key[:200] in text and f"({len(key):,} characters)" in text
        assert sizes(result)[1] < 20_000
    assert tables(lambda_env.dsn) == set()


def test_verify_of_a_huge_no_transaction_script_fits(lambda_env: LambdaEnv) -> None:
    """A no-transaction script of 4,000 statements, 8 MB: its entry's ``statements`` list (one
    more copy of the script) and its ``sql`` preview are both cut."""
    lambda_env.put("1_t.up.sql", "CREATE TABLE t (id int, v text);\n")
    body = "".join(f"SELECT {i}, '{'x' * 2_000}';\n" for i in range(4_000))
    lambda_env.put("2_big.up.sql", "-- patcher:no-transaction\n" + body)
    result = lambda_env.invoke({"action": "migrate", "dry_run": True, "verify": True})
    assert (result["ok"], result["status"]) == (True, "planned")
    assert_fits(result)
    first, big = result["migrations"]
    assert first["verified"] is True
    assert big["verified"] is False and big["transactional"] is False
    assert big["sql_truncated"] is True and MARKER in big["sql"]
    statements = big["statements"]
    assert statements[0] == f"SELECT 0, '{'x' * 2_000}'"
    assert MARKER in statements[-1] or MARKER in "".join(statements)
    assert tables(lambda_env.dsn) == set()


def test_s3_script_over_the_size_cap_is_refused_from_the_listing(
    lambda_env: LambdaEnv, handler_s3: HandlerS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHER_MAX_SCRIPT_MB", "0.5")  # 524,288 bytes
    lambda_env.put("1_t.up.sql", "CREATE TABLE t (id int, v text);\n")
    lambda_env.put("2_big.up.sql", inserts("x" * 100, 6_000))  # 796,890 bytes
    for payload in ({"action": "migrate"}, {"action": "migrate", "dry_run": True}):
        handler_s3.calls.clear()
        result = lambda_env.invoke(payload)
        assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
        message = result["error"]["message"]
        assert "'2_big.up.sql' is 796,890 bytes (0.8 MB)" in message
        assert "PATCHER_MAX_SCRIPT_MB" in message and "524,288 bytes" in message
        assert result["error"]["file"] == "2_big.up.sql"
        assert handler_s3.calls["GetObject"] == 0, "refused before any read"
    assert tables(lambda_env.dsn) == set()
    monkeypatch.setenv("PATCHER_MAX_SCRIPT_MB", "1")
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    assert history(lambda_env.dsn) == [(1, False), (2, False)]


@pytest.mark.parametrize("value", ["0", "-1", "lots", "nan", "99999"])
def test_bad_max_script_mb_is_a_config_error(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PATCHER_MAX_SCRIPT_MB", value)
    result = lambda_env.invoke({"action": "status"})
    assert (result["status"], result["error"]["type"]) == ("invalid", "ConfigError")
    assert "PATCHER_MAX_SCRIPT_MB" in result["error"]["message"]


def test_table_names_over_59_bytes_are_a_config_error(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_env.put("1_a.up.sql", "CREATE TABLE a (id int);\n")
    monkeypatch.setenv("PATCHER_TABLE", "h" * 60)
    refused = lambda_env.invoke({"action": "migrate"})
    assert (refused["status"], refused["error"]["type"]) == ("invalid", "ConfigError")
    assert "59" in refused["error"]["message"] and "_log" in refused["error"]["message"]
    assert tables(lambda_env.dsn) == set()
    monkeypatch.setenv("PATCHER_TABLE", "h" * 59)  # <table>_log is exactly 63 bytes
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    assert tables(lambda_env.dsn) == {"a", "h" * 59, "h" * 59 + "_log", "h" * 59 + "_snp"}

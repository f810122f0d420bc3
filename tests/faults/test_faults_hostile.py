"""Hostile input: thousands of generated Lambda payloads and migration file names. Every one
gets a structured result; none raises; only a well-formed payload ever reaches for the database
(which here is a closed port, so any attempt shows up as DatabaseUnavailable and is counted)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patcher.aws.handler import lambda_handler
from patcher.core.errors import InvalidSource
from patcher.core.models import ACTIONS, ADOPT_TOOLS, MAX_VERSION, SourceObject
from patcher.sources.catalog import build_catalog
from tests.faults.faultkit import DB_PASSWORD, FakeContext, closed_port

RESULT_KEYS = {
    "ok", "action", "dry_run", "status", "current_version", "migrations", "pending",
    "warnings", "error", "request_id", "duration_ms",
}  # fmt: skip
# A run that never read the history: no pending, and why the version is unknown (issue 28).
UNKNOWN_KEYS = RESULT_KEYS - {"pending"} | {"current_version_unknown_reason"}
KEYS = ("action", "dry_run", "target", "steps", "verify", "database", "from", "table")
# The string keys (SPEC 4, 8, 10) and the lengths they may have; null means absent, as for target.
TEXT_KEYS = {"database": (1, 64), "table": (0, 127)}
SETTINGS = settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True) | any_text
)  # fmt: skip
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
huge = st.sampled_from([10**5, 10**6, 5 * 10**6]).map(lambda n: "\U0001f600" * n)


def nested(depth: int) -> Any:
    value: Any = "migrate"
    for i in range(depth):
        value = [value] if i % 2 else {"action": value}
    return value


deep = st.integers(10, 800).map(nested)
field_values = (
    json_like | huge | deep | st.sampled_from([*ACTIONS, "MIGRATE", "migrate ", "", 0, 1, True])
    | st.integers(-2, 3) | st.just(MAX_VERSION) | st.just(MAX_VERSION + 1) | st.just(1.0)
)  # fmt: skip
scope_keys = st.sampled_from([
    "source", "database", "database_url", "schema", "table", "PATCHER_SOURCE",
    "PATCHER_DATABASE_URL", "secret_arn", "Action", "dryRun", "bucket", "__proto__",
])  # fmt: skip
payload_like = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS) | field_values},
    optional={k: field_values | st.booleans() | st.integers(0, 5) for k in KEYS[1:]},
)
with_extras = st.builds(
    lambda base, extra: {**base, **extra},
    payload_like,
    st.dictionaries(scope_keys | any_text, field_values, min_size=1, max_size=3),
)
well_formed = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS)},
    optional={"dry_run": st.booleans(), "verify": st.booleans(),
              "target": st.integers(0, 100), "steps": st.integers(1, 5)},
)  # fmt: skip
events = json_like | huge | deep | payload_like | with_extras | well_formed


def well_typed(event: Any) -> bool:
    """The oracle: a JSON object whose keys and value types SPEC section 4 allows."""
    if not isinstance(event, dict) or not set(event) <= set(KEYS):
        return False
    if not (isinstance(event.get("action"), str) and event["action"] in ACTIONS):
        return False
    for key in ("dry_run", "verify"):
        if key in event and type(event[key]) is not bool:
            return False
    for key, low in (("target", 0), ("steps", 1)):
        value = event.get(key)
        if value is not None and not (type(value) is int and low <= value <= MAX_VERSION):
            return False
    for key, (shortest, longest) in TEXT_KEYS.items():
        text = event.get(key)
        if text is not None and not (type(text) is str and shortest <= len(text) <= longest):
            return False
    return event.get("from") is None or event["from"] in ADOPT_TOOLS


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A valid configuration whose database is a closed port; returns a live list of every
    connection attempt psycopg was asked to make."""
    source = tmp_path / "m"
    source.mkdir()
    (source / "1_a.up.sql").write_text("CREATE TABLE a (id int);")
    (source / "1_a.down.sql").write_text("DROP TABLE a;")
    for name in ("PATCHER_DB_SECRET_ARN", "PATCHER_SCHEMA", "PATCHER_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHER_SOURCE", str(source))
    dsn = f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{closed_port()}/db"
    monkeypatch.setenv("PATCHER_DATABASE_URL", dsn)
    attempts: list[str] = []
    real_connect = psycopg.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        attempts.append(str(args[0]) if args else "")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting_connect)
    return attempts


def check_result(result: Any) -> None:
    assert isinstance(result, dict) and set(result) in (RESULT_KEYS, UNKNOWN_KEYS)
    assert isinstance(result["ok"], bool) and isinstance(result["status"], str)
    encoded = json.dumps(result)  # what the Lambda runtime does with it
    assert len(encoded) < 1_000_000


@pytest.mark.slow
def test_two_thousand_hostile_payloads_each_get_a_structured_answer(
    hostile_env: list[str],
) -> None:
    seen = {"events": 0, "well_typed": 0, "connected": 0}

    @SETTINGS
    @given(events)
    def attack(event: Any) -> None:
        seen["events"] += 1
        before = len(hostile_env)
        result = lambda_handler(event, FakeContext())
        check_result(result)
        touched = len(hostile_env) > before
        if not well_typed(event):
            assert not touched, f"an ill-typed payload reached for the database: {event!r:.200}"
            assert result["status"] == "invalid" and result["error"]["type"] == "InvalidRequest"
            return
        seen["well_typed"] += 1
        if touched:
            seen["connected"] += 1
            assert result["status"] == "failed"
            assert result["error"]["type"] == "DatabaseUnavailable"
        else:  # well typed, but the combination is refused (e.g. steps with migrate)
            assert result["status"] == "invalid" and result["error"]["type"] == "InvalidRequest"

    attack()
    assert seen["events"] >= 2000, seen
    assert seen["connected"] >= 10, seen  # the oracle let real requests through, and they tried


name_chars = st.characters(codec="utf-8", exclude_characters="/\x00")
versions = st.sampled_from(["1", "0007", "0", "9" * 18, "1" + "0" * 18, "١٢", "-1", "1e3", ""])
file_names = st.text(name_chars, max_size=60) | st.builds(
    lambda v, d, direction, ext: f"{v}_{d}.{direction}{ext}",
    versions | st.text("0123456789", min_size=1, max_size=20),
    st.text(name_chars, max_size=30),
    st.sampled_from(["up", "down", "UP", "sideways", "up.down", ""]),
    st.sampled_from([".sql", ".SQL", ".sql.bak", "", ".sql "]),
)
NAME = re.compile(r"[0-9]{1,18}_[^/]+?\.(up|down)\.sql")


@pytest.mark.slow
@given(st.lists(file_names, min_size=1, max_size=6))
@SETTINGS
def test_two_thousand_file_name_sets_parse_or_are_refused_cleanly(names: list[str]) -> None:
    objects = [SourceObject(name=n, key=f"prefix/{n}") for n in names]
    try:
        catalog = build_catalog(objects)
    except InvalidSource as exc:
        assert exc.message.startswith("the migration source is invalid, nothing was run")
        bad = [n for n in names if n.endswith(".sql") and not NAME.fullmatch(n)]
        assert bad or len(exc.details["problems"]) >= 1
        return
    for n in names:  # accepted: every .sql name really is a migration name
        assert not n.endswith(".sql") or NAME.fullmatch(n), n
    assert len(catalog.warnings) == sum(1 for n in names if not n.endswith(".sql"))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(names=st.lists(file_names, min_size=1, max_size=4, unique=True))
def test_hostile_file_names_on_disk_end_to_end(
    hostile_env: list[str], tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    directory = tmp_path_factory.mktemp("names")
    written = []
    for name in names:
        if name in ("", ".", "..") or len(name.encode()) > 255:
            continue
        (directory / name).write_bytes(b"SELECT 1;")
        written.append(name)
    os.environ["PATCHER_SOURCE"] = str(directory)  # restored by hostile_env's monkeypatch
    before = len(hostile_env)
    result = lambda_handler({"action": "migrate"}, FakeContext())
    check_result(result)
    valid = all(NAME.fullmatch(n) or not n.endswith(".sql") for n in written)
    if result["status"] == "invalid":
        assert result["error"]["type"] == "InvalidSource" and len(hostile_env) == before
    else:
        assert result["error"]["type"] == "DatabaseUnavailable", result["error"]
    if not valid:
        assert result["status"] == "invalid"

"""The pure side of drift (``patcher/core/schema_drift.py``): comparing snapshots, ignoring,
unreadable kinds, and what a dry run matches against a script's names."""

from __future__ import annotations

import json

import pytest

from patcher.aws.request import parse_payload
from patcher.core.errors import InvalidRequest
from patcher.core.models import Request
from patcher.core.schema_drift import (
    Objects,
    compare,
    ignore_patterns,
    objects_of,
    parse_body,
    summary,
    touched,
)
from patcher.engine.drift_check import _names_in

SNAPSHOT = [
    ["table", "public.users", None, {"rls": False, "owner": "runner"}],
    ["column", "public.users.email", "public.users", {"type": "text", "not_null": True}],
    [
        "index",
        "public.users_email_idx",
        "public.users",
        {"definition": "CREATE ...", "valid": True},
    ],
    ["function", "public.f(integer)", None, {"definition": "body 1"}],
    ["privilege", "public.f(integer)", None, {"grants": ["PUBLIC:EXECUTE"]}],
]


def objects(rows: list[list[object]]) -> Objects:
    return objects_of(rows)


def test_equal_snapshots_have_no_differences() -> None:
    assert compare(objects(SNAPSHOT), objects(SNAPSHOT)).differences == []


def test_added_removed_and_changed_fields_only() -> None:
    live = [row[:] for row in SNAPSHOT if row[1] != "public.users_email_idx"]
    live[1] = ["column", "public.users.email", "public.users", {"type": "text", "not_null": False}]
    live.append(["column", "public.users.nick", "public.users", {"type": "text"}])
    diffs = compare(objects(SNAPSHOT), objects(live)).differences
    assert [(d.kind, d.object, d.change) for d in diffs] == [
        ("column", "public.users.email", "changed"),
        ("column", "public.users.nick", "added"),
        ("index", "public.users_email_idx", "removed"),
    ]
    assert (diffs[0].expected, diffs[0].actual) == ({"not_null": True}, {"not_null": False})
    assert diffs[1].to_dict() == {"kind": "column", "object": "public.users.nick",
                                  "change": "added", "expected": None,
                                  "actual": {"type": "text"}}  # fmt: skip
    assert "index public.users_email_idx removed" in summary(diffs)
    assert summary(diffs, limit=1).endswith("... and 2 more")


def test_null_fields_equal_missing_fields() -> None:
    live = [row[:] for row in SNAPSHOT]
    live[0] = ["table", "public.users", None, {"rls": False, "owner": "runner", "options": None}]
    assert compare(objects(SNAPSHOT), objects(live)).differences == []


def test_ignoring_a_table_ignores_its_parts() -> None:
    live = [row for row in SNAPSHOT if row[0] not in ("column", "index")]
    assert compare(objects(SNAPSHOT), objects(live), ignore=["public.users"]).differences == []
    assert len(compare(objects(SNAPSHOT), objects(live), ignore=["public.user"]).differences) == 2
    assert ignore_patterns(" public.tmp_*, ,audit.* ") == ("public.tmp_*", "audit.*")
    assert ignore_patterns(None) == ()


def test_unreadable_kinds_are_listed_not_removed() -> None:
    live = [row for row in SNAPSHOT if row[0] not in ("function", "privilege")]
    result = compare(objects(SNAPSHOT), objects(live), unreadable_kinds=["function", "privilege"])
    assert result.differences == []
    assert result.unreadable == ["function public.f(integer)", "privilege public.f(integer)"]


@pytest.mark.parametrize("body", ["{}", "[[1, 2]]", '[["t", null, null, {}]]', "not json", '["x"]'])
def test_a_body_that_is_not_a_snapshot_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        parse_body(body)


def test_parse_body_round_trip() -> None:
    assert parse_body(json.dumps(SNAPSHOT)) == objects(SNAPSHOT)


def test_names_a_statement_touches() -> None:
    names = _names_in('ALTER TABLE Users ADD COLUMN x int; UPDATE "Audit".log SET a = 1')
    assert {"public.users", "Audit.log"} <= names
    diffs = compare(objects(SNAPSHOT), objects(SNAPSHOT[:2])).differences
    assert [d.object for d in touched(diffs, names)] == ["public.users_email_idx"]
    assert [d.object for d in touched(diffs, {"public.f"})] == [
        "public.f(integer)",
        "public.f(integer)",
    ]


def test_drift_payload_and_request() -> None:
    assert parse_payload({"action": "drift"}).action == "drift"
    with pytest.raises(InvalidRequest):
        Request("drift", target=3)

"""The pure planner: catalog + history + request -> steps, with no database and no files."""

from __future__ import annotations

from typing import Any

import pytest

from patcher.core.errors import (
    ChecksumMismatch,
    DirtyDatabase,
    InvalidRequest,
    Irreversible,
    MissingMigration,
    OutOfOrder,
    PatcherError,
)
from patcher.core.models import AppliedRow, Catalog, Migration, Request, SourceObject
from patcher.engine.planner import plan


def catalog(*versions: int, irreversible: tuple[int, ...] = ()) -> Catalog:
    def obj(v: int, d: str) -> SourceObject:
        return SourceObject(name=f"{v}_m{v}.{d}.sql", key=f"{v}_m{v}.{d}.sql")

    return Catalog(tuple(
        Migration(v, f"m{v}", obj(v, "up"), None if v in irreversible else obj(v, "down"))
        for v in versions
    ))  # fmt: skip


def applied(*versions: int, dirty: int | None = None) -> list[AppliedRow]:
    return [AppliedRow(v, f"m{v}", f"sum{v}", dirty=v == dirty) for v in versions]


def sums(*versions: int) -> dict[int, str]:
    return {v: f"sum{v}" for v in versions}


def versions_of(p: object) -> list[tuple[int, str]]:
    return [(s.migration.version, s.direction) for s in p.steps]  # type: ignore[attr-defined]


def test_migrate_plans_pending_in_order_up_to_target() -> None:
    p = plan(Request("migrate", target=4), catalog(1, 2, 4, 9), applied(1), sums(1))
    assert versions_of(p) == [(2, "up"), (4, "up")]
    assert [m.version for m in p.pending] == [2, 4, 9]
    assert p.current_version == 1


def test_rollback_steps_target_and_default() -> None:
    cat, hist, s = catalog(1, 2, 3), applied(1, 2, 3), sums(1, 2, 3)
    assert versions_of(plan(Request("rollback"), cat, hist, s)) == [(3, "down")]
    assert versions_of(plan(Request("rollback", steps=2), cat, hist, s)) == [
        (3, "down"),
        (2, "down"),
    ]
    assert len(plan(Request("rollback", target=0), cat, hist, s).steps) == 3
    assert plan(Request("rollback", target=7), cat, hist, s).steps == ()
    with pytest.raises(InvalidRequest, match="more than the 3 applied"):
        plan(Request("rollback", steps=4), cat, hist, s)


def test_rollback_across_irreversible_is_refused() -> None:
    cat = catalog(1, 2, 3, irreversible=(2,))
    with pytest.raises(Irreversible) as exc:
        plan(Request("rollback", target=1), cat, applied(1, 2, 3), sums(1, 2, 3))
    assert exc.value.details["version"] == 2
    assert versions_of(plan(Request("rollback"), cat, applied(1, 2, 3), sums(1, 2, 3))) == [
        (3, "down")
    ]


@pytest.mark.parametrize(
    ("history", "checksums", "cat", "error"),
    [
        (applied(1, 2, dirty=2), sums(1, 2), catalog(1, 2, 3), DirtyDatabase),
        (applied(1, 2), sums(1), catalog(1, 3), MissingMigration),
        (applied(1, 2), {1: "sum1", 2: "changed"}, catalog(1, 2, 3), ChecksumMismatch),
        (applied(1, 3), sums(1, 3), catalog(1, 2, 3), OutOfOrder),
    ],
)
def test_validation_refuses_before_planning(
    history: list[AppliedRow], checksums: dict[int, str], cat: Catalog, error: type[PatcherError]
) -> None:
    for request in (Request("migrate"), Request("migrate", dry_run=True), Request("status")):
        with pytest.raises(error):
            plan(request, cat, history, checksums)


def test_out_of_order_does_not_block_rollback() -> None:
    p = plan(Request("rollback"), catalog(1, 2, 3), applied(1, 3), sums(1, 3))
    assert versions_of(p) == [(3, "down")]


def test_baseline_marks_up_to_target_only_on_empty_history() -> None:
    p = plan(Request("baseline", target=2), catalog(1, 2, 3), [], {})
    assert [(s.migration.version, s.kind) for s in p.steps] == [(1, "baseline"), (2, "baseline")]
    with pytest.raises(InvalidRequest, match="empty history"):
        plan(Request("baseline", target=2), catalog(1, 2, 3), applied(1), sums(1))


def test_repair_plans_dirty_and_drift_and_warns_on_missing() -> None:
    history = [*applied(1, 2, dirty=2), AppliedRow(5, "m5", "sum5")]
    p = plan(Request("repair"), catalog(1, 2), history, {1: "new1", 2: "sum2"})
    assert [(s.migration.version, s.kind) for s in p.steps] == [
        (1, "rechecksum"),
        (2, "clear_dirty"),
    ]
    assert p.steps[0].checksum == "new1"
    assert any("5 (m5) is applied but missing" in w for w in p.warnings)


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "migrate", "steps": 1},
        {"action": "rollback", "steps": 0},
        {"action": "rollback", "steps": 1, "target": 0},
        {"action": "rollback", "target": -1},
        {"action": "migrate", "target": 10**18},
        {"action": "status", "verify": True, "dry_run": True},
        {"action": "migrate", "verify": True},
        {"action": "repair", "target": 3},
        {"action": "baseline"},
        {"action": "explode"},
    ],
)
def test_bad_requests_are_refused(fields: dict[str, Any]) -> None:
    """Refused where they are built: no invalid Request reaches the planner."""
    with pytest.raises(InvalidRequest):
        Request(**fields)


def with_baselines(*versions: int, baselines: tuple[int, ...]) -> Catalog:
    base = tuple(
        Migration(v, f"b{v}", SourceObject(name=f"B{v}__b{v}.sql", key=f"B{v}__b{v}.sql"))
        for v in baselines
    )
    return Catalog(catalog(*versions).migrations, baselines=base)


def test_a_fresh_database_starts_at_the_newest_baseline_at_or_below_the_target() -> None:
    """Issue 26 item 13: Flyway B files on a fresh database; ignored once there is history."""
    cat = with_baselines(1, 2, 3, 4, baselines=(2, 3))
    p = plan(Request("migrate"), cat, [], {})
    assert [(s.migration.version, s.migration.up.name) for s in p.steps] == [
        (3, "B3__b3.sql"), (4, "4_m4.up.sql")
    ]  # fmt: skip
    p = plan(Request("migrate", target=2), cat, [], {})
    assert [s.migration.up.name for s in p.steps] == ["B2__b2.sql"]
    assert versions_of(plan(Request("migrate", target=1), cat, [], {})) == [(1, "up")]
    history = [AppliedRow(3, "b3", "sumB3"), AppliedRow(4, "m4", "sum4")]
    p = plan(Request("migrate"), cat, history, {3: "sumB3", 4: "sum4"}, frozenset({3}))
    assert p.steps == () and p.pending == ()  # 1 and 2 are covered, not out of order
    with pytest.raises(Irreversible, match=r"B3__b3\.sql"):
        plan(Request("rollback", target=0), cat, history, {3: "sumB3", 4: "sum4"}, frozenset({3}))
    p = plan(Request("migrate"), cat, applied(1), sums(1))  # a history: B files ignored
    assert versions_of(p) == [(2, "up"), (3, "up"), (4, "up")]

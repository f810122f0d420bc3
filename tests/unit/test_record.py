"""``record`` / ``mutable_record`` behave as ``dataclass(frozen=True)`` / ``dataclass`` do."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from patcher.core.models import HistoryChange, Request, StepKind
from patcher.core.record import mutable_record, record


@record
class R:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()
    hidden: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True)
class D:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()
    hidden: int = field(default=0, repr=False, compare=False)


@mutable_record
class M:
    a: int
    items: list[int] = field(default_factory=list)


@dataclass
class DM:
    a: int
    items: list[int] = field(default_factory=list)


@record
class Empty:
    pass


@record
class One:
    a: int


CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"a": 1}, {"a": 1}),
    ({"a": 1, "b": "y"}, {"a": 1, "b": "x"}),
    ({"a": 1, "hidden": 5}, {"a": 1, "hidden": 6}),  # not compared: equal
    ({"a": 1, "c": (1, 2)}, {"a": 1, "c": (1, 2)}),
    ({"a": 2}, {"a": 1}),
]


@pytest.mark.parametrize(("left", "right"), CASES)
def test_equality_hash_and_repr_match_the_dataclass(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    r1, r2, d1, d2 = R(**left), R(**right), D(**left), D(**right)
    assert (r1 == r2) is (d1 == d2)
    assert (r1 != r2) is (d1 != d2)
    assert (hash(r1) == hash(r2)) is (hash(d1) == hash(d2))
    assert repr(r1).removeprefix("R") == repr(d1).removeprefix("D")


def test_equal_only_to_its_own_class() -> None:
    assert R(1) != D(1)  # type: ignore[comparison-overlap]
    assert R(1).__eq__(D(1)) is NotImplemented
    assert R(1) != (1, "x", ())  # type: ignore[comparison-overlap]
    assert Empty() == Empty() and hash(Empty()) == hash(Empty())
    assert One(1) == One(1) and One(1) != One(2) and hash(One(3)) == hash(One(3))


def test_frozen_and_still_a_dataclass() -> None:
    r = R(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.a = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del r.a
    assert dataclasses.replace(r, b="z") == R(1, "z")
    assert [f.name for f in dataclasses.fields(r)] == ["a", "b", "c", "hidden"]
    assert dataclasses.asdict(r) == {"a": 1, "b": "x", "c": (), "hidden": 0}
    assert pickle.loads(pickle.dumps(r)) == r
    assert R.__match_args__ == D.__match_args__


def test_mutable_record_matches_the_mutable_dataclass() -> None:
    m, dm = M(1), DM(1)
    m.items.append(3)
    dm.items.append(3)
    assert repr(m).removeprefix("M") == repr(dm).removeprefix("DM")
    assert m == M(1, [3]) and m != M(1)
    assert M.__hash__ is None and DM.__hash__ is None
    with pytest.raises(TypeError):
        hash(m)


def test_recursive_repr_does_not_loop() -> None:
    m = M(1)
    m.items.append(m)  # type: ignore[arg-type]
    dm = DM(1)
    dm.items.append(dm)  # type: ignore[arg-type]
    assert repr(m).removeprefix("M") == repr(dm).removeprefix("DM")


def test_a_class_defining_its_own_equality_is_refused() -> None:
    with pytest.raises(TypeError, match="__eq__ or __hash__"):

        @record
        class Own:
            a: int

            def __eq__(self, other: object) -> bool:
                return True


def test_the_engine_models_keep_their_value_semantics() -> None:
    change = HistoryChange(3, "add", "up", "abc", kind=StepKind.RUN)
    assert change == HistoryChange(3, "add", "up", "abc")
    assert {change: 1}[HistoryChange(3, "add", "up", "abc")] == 1
    assert repr(Request("migrate")).startswith("Request(action='migrate', dry_run=False")

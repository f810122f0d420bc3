"""The two-release harness (SPEC 11, issue 29 item 6): two workloads on one schema.

Each release is a thread looping, without pause, over its queries and writes (real SQL through
psycopg, its own autocommit connection, psycopg's default statement preparation), counting
successes and errors per operation and per stage of the release (``before`` the contract run
starts, ``during`` it, ``after`` it ends). The test moves the stage while the threads run.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.e2e.e2ekit import LambdaEnv

STAGES = ("before", "during", "after")

# An operation: a label (what it uses) and a function of the loop counter giving SQL and params.
Op = tuple[str, Callable[[int], tuple[str, tuple[Any, ...]]]]


@dataclass
class Pattern:
    """One breaking change written as an expand version and a contract version."""

    name: str
    base: str  # version 1, applied before the workloads start
    expand: str  # version 2
    contract: str  # version 3
    previous: list[Op]
    next: list[Op]
    removed: frozenset[str]  # labels of the previous release's ops that contract breaks


@dataclass
class Workload:
    """One release's loop; ``stage`` is shared with the test through ``Clock``."""

    release: str
    dsn: str
    ops: list[Op]
    clock: Clock
    ok: Counter[tuple[str, str]] = field(default_factory=Counter)  # (stage, label)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # label -> message
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.release, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), f"the {self.release} workload did not stop"

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                label, make = self.ops[n % len(self.ops)]
                sql, params = make(n)
                stage = self.clock.stage  # read before: an op that starts before contract
                try:
                    cur = conn.execute(sql, params)
                    if cur.description is not None:
                        cur.fetchall()
                except psycopg.Error as exc:
                    stage = stage if stage == self.clock.stage else "during"
                    self.errors[(stage, label)] += 1
                    self.first_error.setdefault(label, f"{stage}: {str(exc).splitlines()[0]}")
                else:
                    stage = stage if stage == self.clock.stage else "during"
                    self.ok[(stage, label)] += 1

    def count(self, what: Counter[tuple[str, str]], stage: str | None = None) -> int:
        return sum(v for (s, _), v in what.items() if stage is None or s == stage)

    def failed_labels(self, stage: str) -> set[str]:
        return {label for (s, label), v in self.errors.items() if s == stage and v}


class Clock:
    """The release's stage, moved by the test; the workloads read it around every op."""

    def __init__(self) -> None:
        self.stage = "before"


def table_row(pattern: str, prev: Workload, nxt: Workload) -> str:
    cells = [pattern]
    for load in (prev, nxt):
        for stage in STAGES:
            cells.append(f"{load.count(load.errors, stage)}/{load.count(load.ok, stage)}")
    return "| " + " | ".join(cells) + " |"


TABLE_HEAD = (
    "| pattern | previous before | previous during | previous after "
    "| next before | next during | next after |\n|---|---|---|---|---|---|---|"
)


def shift(lam: Any, version: str, weights: dict[str, float]) -> None:
    """Point the application's alias ``live`` at ``version`` plus ``weights``."""
    lam.update_alias(
        FunctionName="api", Name="live", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights},
    )  # fmt: skip


def progress(*loads: Workload, ops: int = 3, timeout: float = 30.0) -> None:
    """Wait until every workload has run each of its operations ``ops`` more times."""

    def done(load: Workload) -> int:
        return load.count(load.ok) + load.count(load.errors)

    targets = [(load, done(load) + ops * len(load.ops)) for load in loads]
    deadline = time.monotonic() + timeout
    while any(done(load) < target for load, target in targets):
        assert time.monotonic() < deadline, "a workload made no progress"
        time.sleep(0.01)


def release(env: LambdaEnv, lam: Any, pattern: Pattern, applied: list[int], held: list[int]) -> \
        tuple[Workload, Workload]:  # fmt: skip
    """With the previous release's workload running: ``phase: expand`` (applies ``applied``,
    holds ``held``), the next release's workload starts, the alias shifts 10 % -> 50 % (a
    contract run is ``held`` at each) -> 100 %, then ``phase: contract`` applies ``held``.
    Returns both workloads, stopped, with their counts per stage."""
    clock = Clock()
    prev = Workload("previous", env.dsn, pattern.previous, clock)
    nxt = Workload("next", env.dsn, pattern.next, clock)

    def invoke(phase: str) -> dict[str, Any]:
        return env.invoke({"action": "migrate", "phase": phase})

    prev.start()
    try:
        progress(prev)
        expand = invoke("expand")
        assert expand["ok"] and expand["status"] == "applied", expand
        assert [m["version"] for m in expand["migrations"]] == applied
        assert [h["version"] for h in expand["held"]] == held and expand["held"][0]["statements"]
        assert expand["release"]["held_since_version"] == "1"

        nxt.start()  # the next release is deployed once expand is applied
        progress(prev, nxt)
        for weight in (0.1, 0.5):
            shift(lam, "1", {"2": weight})
            gate = invoke("contract")
            assert gate["ok"] and gate["status"] == "held", gate
            assert gate["release"]["weights"] == {"2": weight}
            assert [m["version"] for m in gate["pending"]] == held
            progress(prev, nxt)
        shift(lam, "2", {})
        progress(prev, nxt)

        clock.stage = "during"
        contract = invoke("contract")
        clock.stage = "after"
        assert contract["ok"] and contract["status"] == "applied", contract
        assert [m["version"] for m in contract["migrations"]] == held
        progress(prev, nxt)
    finally:
        prev.stop()
        if nxt._thread is not None:
            nxt.stop()
    return prev, nxt


def assert_two_releases(pattern: Pattern, prev: Workload, nxt: Workload) -> None:
    """Neither release fails before contract; the next never; after contract the previous
    fails exactly at what contract removed, and that never works again."""
    assert prev.count(prev.errors, "before") == 0, prev.first_error
    assert nxt.count(nxt.errors) == 0, nxt.first_error
    assert prev.failed_labels("during") <= pattern.removed, prev.first_error
    assert prev.failed_labels("after") == pattern.removed, prev.first_error
    for (stage, label), n in prev.ok.items():  # what contract removed never works afterwards
        assert not (stage == "after" and label in pattern.removed), (label, n)


def print_table(request: pytest.FixtureRequest, title: str, rows: list[str]) -> Iterator[None]:
    """For a module fixture: after the module, ``rows`` under TABLE_HEAD, shown without -s."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if rows and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(title)
            for line in [*TABLE_HEAD.splitlines(), *rows]:
                reporter.write_line(line)

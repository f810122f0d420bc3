"""The two-release harness (SPEC 11, issue 29 item 6): two workloads on one schema.

Each release is a thread looping, without pause, over its queries and writes (real SQL through
psycopg, its own autocommit connection, psycopg's default statement preparation), counting
successes and errors per operation and per stage of the release (``before`` the contract run
starts, ``during`` it, ``after`` it ends). The test moves the stage while the threads run.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

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

"""``patcher adopt`` on the fake backend, through the ports (``MigrationBackend`` and
``ForeignHistory``) and the runner's lock wait (``engine/lock_wait.py``): what it writes, and
how it waits for a held lock (events, the holder named when it gives up)."""

from __future__ import annotations

from typing import Any

import pytest

from patcher.app.adopt import adopt
from patcher.core.errors import LockTimeout
from patcher.core.models import Request
from patcher.engine.context import RunOptions
from patcher.sources.layout_source import LayoutSource
from tests.fakes.backend import FakeBackend, FakeDatabase
from tests.fakes.source import MemorySource

OURS = "patcher_migrations"
WAIT = RunOptions(lock_wait_seconds=0.2, lock_poll_seconds=(0.01, 0.02))


def goose_database() -> tuple[FakeDatabase, FakeBackend]:
    """A database where goose applied versions 1 and 2 (and rolled 3 back), and our session."""
    db = FakeDatabase()
    backend = db.connect(table=OURS)
    backend.run_statements(
        ["CREATE TABLE goose_db_version (id int, version_id bigint, is_applied boolean, "
         "tstamp timestamp)"]
        + [f"INSERT INTO goose_db_version VALUES ({i}, {v}, {a}, NULL)"
           for i, v, a in [(1, 0, "true"), (2, 1, "true"), (3, 2, "true"), (4, 3, "true"),
                           (5, 3, "false")]]
    )  # fmt: skip
    return db, backend


def goose_files() -> LayoutSource:
    source = MemorySource()
    for v in (1, 2, 3):
        source.write(
            f"{v:05d}_step{v}.sql",
            f"-- +goose Up\nCREATE TABLE t{v} (id int);\n\n-- +goose Down\nDROP TABLE t{v};\n",
        )
    return LayoutSource(source, "goose")


def events() -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    seen: list[tuple[str, dict[str, Any]]] = []
    return seen, lambda name, fields: seen.append((name, fields))


def test_adopt_on_the_fake_records_what_goose_applied() -> None:
    db, backend = goose_database()
    planned = adopt(Request("adopt", dry_run=True, adopt_from="goose"), goose_files(), backend)
    assert planned.status == "planned" and [e.version for e in planned.entries] == [1, 2]
    assert OURS not in db.table_names()  # a dry run writes nothing

    seen, sink = events()
    done = adopt(Request("adopt", adopt_from="goose"), goose_files(), backend, events=sink)
    assert done.status == "applied"
    assert [r["version"] for r in db.history_rows(OURS)] == [1, 2]
    assert [r["outcome"] for r in db.log_rows(OURS)] == ["adopted", "adopted"]
    assert [name for name, _ in seen] == ["lock_acquired"]
    assert db.holder_pid(backend.key) is None  # the lock is let go


def test_a_waiting_adopt_tells_who_holds_the_lock_and_names_it_when_it_gives_up() -> None:
    db, backend = goose_database()
    holder = db.connect(application_name="deploy-42", table=OURS)
    assert holder.try_lock()
    seen, sink = events()
    with pytest.raises(LockTimeout) as caught:
        adopt(Request("adopt", adopt_from="goose"), goose_files(), backend, WAIT, events=sink)
    assert caught.value.status == "locked"
    assert caught.value.details["holder_pid"] == holder.pid
    assert caught.value.details["holder_application_name"] == "deploy-42"
    waiting = [fields for name, fields in seen if name == "lock_waiting"]
    assert waiting and waiting[0]["holder_pid"] == holder.pid
    assert waiting[0]["wait_limit_ms"] == 200
    assert OURS not in db.table_names()  # nothing written while waiting


def test_a_waiting_adopt_proceeds_once_the_holder_lets_go() -> None:
    db, backend = goose_database()
    holder = db.connect(table=OURS)
    assert holder.try_lock()
    seen, sink = events()

    def let_go(name: str, fields: dict[str, Any]) -> None:
        sink(name, fields)
        if name == "lock_waiting":
            holder.unlock()

    done = adopt(Request("adopt", adopt_from="goose"), goose_files(), backend, WAIT, events=let_go)
    assert done.status == "applied"
    assert [name for name, _ in seen] == ["lock_waiting", "lock_acquired"]


def test_a_deadline_shortens_the_wait_as_for_a_run() -> None:
    db, backend = goose_database()
    assert db.connect(table=OURS).try_lock()
    seen, sink = events()
    slow = RunOptions(lock_wait_seconds=60, lock_poll_seconds=(0.01, 0.02), time_margin_seconds=1)
    with pytest.raises(LockTimeout):
        adopt(
            Request("adopt", adopt_from="goose"),
            goose_files(),
            backend,
            slow,
            time_left_ms=lambda: 1100,  # 100 ms past the margin: the wait's whole budget
            events=sink,
        )
    assert seen[0][0] == "lock_waiting" and seen[0][1]["wait_limit_ms"] == 100

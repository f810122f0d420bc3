"""Crash at every round trip (SPEC section 7 item 6, issue 11).

A run of eight migrations in three invocations (``migrate`` that stops at the failing
version 6; ``migrate`` again once 6 is fixed; ``rollback`` to 6) is cut at each of its
client messages by ``crashkit.CrashProxy`` (the message not sent, or sent and its reply
lost), and SIGKILLed at each migration boundary. After every cut the catalog is checked
against the history (``crashkit.check_invariants``), then a next run without the proxy
(plus ``repair`` where a no-transaction version is dirty) must end as the uncut run does,
and the invariants must hold again.

The cut-point tests collect every failing cut point and report them in one assertion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.faults.crashkit import (
    Connection,
    CrashProxy,
    Variant,
    dirty_versions,
    invariant_violations,
    violations_on,
)
from tests.faults.faultkit import env_without_patcher, wait_for
from tests.fixtures.engine import REPO, make_runner, query

pytestmark = pytest.mark.slow

# Fast settings: no real waiting anywhere (the lock is free after every cut, or must be).
TUNING = {
    "lock_wait_seconds": 1.0,
    "lock_poll_seconds": (0.01, 0.05),
    "lock_retries": 1,
    "lock_retry_backoff_seconds": 0.05,
}

# --------------------------------------------------------------------------- the corpus
# Each up script declares on ``-- expect:`` lines what it leaves in the catalog; transactional
# ones write their marker row last. Each script starts at a GATE: a shared advisory lock keyed
# by how many migrations the history log says are done, free unless a test holds that key (the
# SIGKILL test does, to stop the run at the start of the migration after the n-th).

GATE_CLASS = 6006
GATE = (
    f"SELECT pg_advisory_xact_lock_shared({GATE_CLASS}, count(*)::int) FROM "
    "schema_migrations_log WHERE outcome IN ('applied', 'reverted');"
)

CORPUS: dict[str, str] = {
    "1_base.up.sql": f"""-- expect: table markers, table t1, index i1, marker 1
{GATE}
CREATE TABLE markers (version int PRIMARY KEY);
CREATE TABLE t1 (id int PRIMARY KEY, v text);
INSERT INTO t1 VALUES (1, 'a'), (2, 'b');
CREATE INDEX i1 ON t1 (v);
INSERT INTO markers VALUES (1);
""",
    "2_link.up.sql": f"""-- expect: table t2, column t1.c2, marker 2
{GATE}
CREATE TABLE t2 (id int PRIMARY KEY, t1_id int REFERENCES t1 (id));
ALTER TABLE t1 ADD COLUMN c2 int;
UPDATE t1 SET c2 = id * 10;
INSERT INTO markers VALUES (2);
""",
    "3_data.up.sql": f"""-- expect: marker 3
{GATE}
INSERT INTO t2 VALUES (1, 1), (2, 2);
UPDATE t1 SET v = 'data' WHERE id = 2;
INSERT INTO markers VALUES (3);
""",
    "4_indexes.up.sql": f"""-- patcher:no-transaction
-- expect: index i4a, index i4b, marker 4
{GATE}
CREATE INDEX CONCURRENTLY IF NOT EXISTS i4a ON t1 (c2);
CREATE INDEX CONCURRENTLY IF NOT EXISTS i4b ON t2 (t1_id);
INSERT INTO markers VALUES (4) ON CONFLICT DO NOTHING;
""",
    "5_view.up.sql": f"""-- expect: table t5, function f5, view v5, marker 5
{GATE}
CREATE TABLE t5 (id int);
CREATE FUNCTION f5() RETURNS int LANGUAGE sql AS $$ SELECT 5 $$;
CREATE VIEW v5 AS SELECT id, f5() AS five FROM t1;
INSERT INTO markers VALUES (5);
""",
    "6_fragile.up.sql": f"""-- expect: table t6, marker 6
{GATE}
CREATE TABLE t6 (id int);
INSERT INTO t6 VALUES (1);
INSERT INTO t6 SELECT 1 / (SELECT count(*) FROM t5)::int;
INSERT INTO markers VALUES (6);
""",
    "7_notes.up.sql": f"""-- expect: table t7, index i7, marker 7
{GATE}
CREATE TABLE t7 (id int, note text);
CREATE INDEX i7 ON t7 (note);
INSERT INTO t7 SELECT g, 'n' || g FROM generate_series(1, 100) g;
INSERT INTO markers VALUES (7);
""",
    "7_notes.down.sql": f"""{GATE}
DELETE FROM markers WHERE version = 7;
DROP TABLE t7;
""",
    "8_flags.up.sql": f"""-- expect: table t8, column t1.c8, marker 8
{GATE}
CREATE TABLE t8 (id int);
ALTER TABLE t1 ADD COLUMN c8 text DEFAULT 'x';
INSERT INTO markers VALUES (8);
""",
    "8_flags.down.sql": f"""{GATE}
DELETE FROM markers WHERE version = 8;
ALTER TABLE t1 DROP COLUMN c8;
DROP TABLE t8;
""",
}
# Version 6 fixed: t5 gets a row first, so the division no longer fails.
FIXED_6 = CORPUS["6_fragile.up.sql"].replace(
    "INSERT INTO t6 VALUES (1);\n", "INSERT INTO t6 VALUES (1);\nINSERT INTO t5 VALUES (1);\n"
)


@dataclass(frozen=True)
class Phase:
    """One invocation of the whole run and how it ends when nothing cuts it."""

    name: str
    action: str
    fields: dict[str, Any]
    fixed: bool  # version 6 in its fixed form
    status: str  # the uncut run's status
    history: tuple[int, ...]  # the history after it


PHASES = (
    Phase("migrate", "migrate", {}, False, "failed", (1, 2, 3, 4, 5)),
    Phase("migrate-fixed", "migrate", {}, True, "applied", (1, 2, 3, 4, 5, 6, 7, 8)),
    Phase("rollback", "rollback", {"target": 6}, True, "reverted", (1, 2, 3, 4, 5, 6)),
)


def write_corpus(path: Path, *, fixed: bool) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (path / name).write_text(FIXED_6 if fixed and name.startswith("6_") else text)


def history(dsn: str) -> tuple[int, ...]:
    """The applied versions; empty before the run created its tables."""
    try:
        rows = query(dsn, "SELECT version FROM schema_migrations ORDER BY 1")
    except psycopg.errors.UndefinedTable:
        return ()
    return tuple(r[0] for r in rows)


# --------------------------------------------------------------------------- plumbing


@dataclass
class World:
    """The test's database and migrations directory, reset to where a phase starts."""

    dsn: str
    mdir: Path
    ports: dict[int, str] = field(default_factory=dict)  # the last proxy's server-side ports

    def saw(self, proxy: CrashProxy) -> list[Connection]:
        """Note the proxy's connections (which session came through which, and how it was
        cut), once the proxy is done with each of them."""
        connections = proxy.wait_all()
        self.ports = {
            c.server_port: f"proxy connection {c.index}, {c.cut or 'not cut'}"
            for c in connections
            if c.server_port
        }
        return connections

    def run(self, phase: Phase, dsn: str | None = None) -> dict[str, Any]:
        write_corpus(self.mdir, fixed=phase.fixed)
        run = make_runner(dsn or self.dsn, self.mdir, lock_wait_seconds=1)
        return run(phase.action, request_id=f"crash-{phase.name}", tuning=TUNING, **phase.fields)

    def reset(self, phase_index: int) -> list[str]:
        """An empty database again (its only schema dropped and made anew; every session of
        the last cut gone), then the phases before ``phase_index`` run once, uncut. Returns
        what the last cut left behind that the checks after it did not see (a session that
        outlived it), after ending that session."""
        problems = [f"before the next reset: {p}" for p in settle(self.dsn, world=self)]
        query(self.dsn, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        for earlier in PHASES[:phase_index]:
            result = self.run(earlier)
            if result["status"] == "locked":  # a late session of the last cut took the lock
                problems.append(f"replaying {earlier.name}: locked: {result['error']}")
                problems += settle(self.dsn, timeout=0.5, world=self)
                result = self.run(earlier)
            assert result["status"] == earlier.status, result
        return problems


@pytest.fixture
def world(pg_dsn: str, tmp_path: Path) -> World:
    return World(pg_dsn, tmp_path / "migrations")


SURVIVORS = (
    "SELECT a.pid, a.application_name, a.state, a.xact_start IS NOT NULL, a.client_port, "
    "left(a.query, 80), (SELECT string_agg(l.locktype || ' ' || l.mode, ', ' ORDER BY 1) "
    "FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.locktype <> 'virtualxid') "
)


def settle(dsn: str, timeout: float = 30.0, *, world: World | None = None) -> list[str]:
    """Wait until no session but ours is left in the database (a cut backend exits once the
    proxy's reset reaches it; a killed client's within client_connection_check_interval).

    A session still there after ``timeout`` is a failure, whoever it belongs to: it is named
    with what it holds (its transaction, its locks: an advisory lock is the run's) and whose
    it is (the proxy's connection it came through, cut or not), and only then ended, so the
    checks after this one start from a clean database."""
    others = (
        "FROM pg_stat_activity a WHERE a.datname = current_database() "
        "AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'"
    )
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if query(dsn, f"SELECT count(*) {others}")[0][0] == 0:
            return []
        time.sleep(0.02)
    left = query(dsn, SURVIVORS + others)
    query(dsn, f"SELECT pg_terminate_backend(a.pid) {others}")
    ports = world.ports if world else {}
    return [
        f"a session outlived the cut by {timeout:.0f}s: pid {pid} ({app or 'no name'}, "
        f"{ports.get(port, 'not through the proxy')}) {state}, "
        f"{'in a transaction' if in_xact else 'no transaction'}, holding "
        f"{locks or 'no lock'}; last query {last!r}"
        for pid, app, state, in_xact, port, last, locks in left
    ]


def complete(world: World, phase: Phase, cut: dict[str, Any] | None) -> list[str]:
    """The next run(s) without the proxy; what went wrong (empty when it ended as uncut)."""
    problems: list[str] = []
    done = history(world.dsn) == phase.history and not dirty_versions(world.dsn)
    result = world.run(phase)
    dirty = dirty_versions(world.dsn)
    if dirty:
        error = result.get("error") or {}
        if result["status"] != "invalid" or error.get("type") != "DirtyDatabase":
            problems.append(f"dirty {dirty} but the next run said {result['status']}: {error}")
        if cut is not None and "repair" not in json.dumps(cut):
            problems.append(f"dirty {dirty} but the cut run's result does not say repair")
        repair = make_runner(world.dsn, world.mdir, lock_wait_seconds=1)
        repaired = repair("repair", request_id="crash-repair", tuning=TUNING)
        if repaired["status"] != "applied":
            problems.append(f"repair said {repaired['status']}: {repaired.get('error')}")
        result = world.run(phase)
    error = result.get("error") or {}
    if done and result["status"] == "up_to_date":
        pass  # the cut run had done everything (its last COMMIT's reply was lost)
    elif result["status"] != phase.status:
        problems.append(f"next run ended {result['status']} (want {phase.status}): {error}")
    elif phase.status == "failed" and error.get("version") != 6:
        problems.append(f"next run failed elsewhere than at version 6: {error}")
    got = history(world.dsn)
    if got != phase.history:
        problems.append(f"history after the next run is {got}, want {phase.history}")
    problems += [f"after the next run: {p}" for p in settle(world.dsn, world=world)]
    problems += [f"after the next run: {p}" for p in invariant_violations(world.dsn, world.mdir)]
    return problems


def after_cut(world: World, phase: Phase, cut: dict[str, Any] | None) -> list[str]:
    """Invariants right after a cut or kill, then the next run and the invariants again."""
    problems = [f"after the cut: {p}" for p in settle(world.dsn, world=world)]
    problems += [f"after the cut: {p}" for p in invariant_violations(world.dsn, world.mdir)]
    if cut is not None:
        if "Traceback" in json.dumps(cut):
            problems.append("the cut run's result holds a traceback")
        problems += result_lies(world.dsn, cut)
    return problems + complete(world, phase, cut)


def result_lies(dsn: str, result: dict[str, Any]) -> list[str]:
    """Where the cut run's result disagrees with the database (SPEC 7.5: after a lost COMMIT
    the run reconnects, reads the history and reports what it finds)."""
    rows = dict(
        query(dsn, "SELECT version, dirty FROM schema_migrations")
        if history(dsn) or dirty_versions(dsn)
        else []
    )
    lies = []
    message = (result.get("error") or {}).get("message", "")
    for entry in result.get("migrations", []):
        version, state, up = entry["version"], entry["state"], entry["direction"] == "up"
        if version in in_doubt(message):
            continue  # the error says its outcome is unknown: the entry cannot be judged
        recorded = "absent" if version not in rows else "dirty" if rows[version] else "applied"
        truth = {
            ("applied", True): recorded == "applied",
            ("failed", True): recorded != "applied",
            ("not_run", True): recorded == "absent",
            ("reverted", False): recorded == "absent",
            ("failed", False): recorded != "absent",
            ("not_run", False): recorded == "applied",
        }.get((state, up), True)
        if not truth:
            lies.append(
                f"the cut run's result says version {version} ({entry['direction']}) is "
                f"{state} but the history has it {recorded}"
            )
    version = (result.get("error") or {}).get("version")
    committed = (
        rows.get(version) is False
        if result.get("action") == "migrate"
        else (version is not None and version not in rows)
    )
    if "nothing of it remains" in message and committed:
        lies.append(f"the cut run's error says nothing of {version} remains but it committed")
    return lies


def in_doubt(message: str) -> set[int]:
    """The versions an error declares in doubt: when no new session could read the history
    (SPEC 7 item 6), it says their outcome is unknown and to run status, and names them."""
    if "unknown" not in message or "status" not in message:
        return set()
    named = re.findall(r"versions? (\d+(?:, \d+)*)", message)
    return {int(v) for group in named for v in group.split(", ")}


# --------------------------------------------------------------------------- round trips


def uncut(world: World, index: int) -> Connection:
    """Phase ``index`` run through the proxy uncut: what its first connection sent."""
    phase = PHASES[index]
    world.reset(index)
    with CrashProxy.for_dsn(world.dsn) as proxy:
        result = world.run(phase, proxy.dsn(world.dsn))
        first = proxy.wait_first()
    assert result["status"] == phase.status, result
    assert history(world.dsn) == phase.history
    assert first is not None and first.cut is None and first.count > 0
    return first


def round_trips(world: World) -> list[list[tuple[int, int]]]:
    """Round trips (first and last message) of each phase's first connection, uncut."""
    return [uncut(world, index).round_trips() for index in range(len(PHASES))]


def cut_once(
    world: World, phase: Phase, k: int, variant: Variant
) -> tuple[str | None, str | None, list[str]]:
    """Run ``phase`` cut at message ``k``; how it was cut, the query cut, what broke."""
    with CrashProxy.for_dsn(world.dsn, cut_at=k, variant=variant) as proxy:
        try:
            cut: dict[str, Any] | None = world.run(phase, proxy.dsn(world.dsn))
            problems: list[str] = []
        except Exception as exc:  # an escaped exception is a finding too
            cut, problems = None, [f"the cut run raised {type(exc).__name__}: {exc}"]
        world.saw(proxy)
    first = proxy.first
    if first is None or first.cut is None:
        return None, None, [f"the proxy never reached message {k}: nothing was cut"]
    return first.cut, first.cut_query, problems + after_cut(world, phase, cut)


def test_crash_at_every_round_trip(world: World) -> None:
    """Every round trip of the run: not sent at all ("before" its first message), or sent
    whole with its reply lost ("after" its last: a COMMIT committed, unbeknown to the run).
    A cut inside a batch of extended-protocol messages (Parse, Bind, Describe, Execute
    before their Sync) leaves the server where "before" does: it runs nothing of it."""
    started = time.monotonic()
    plan = round_trips(world)
    failures: list[str] = []
    tried, in_doubt, label = 0, 0, "the uncut runs"
    for index, phase in enumerate(PHASES):
        for first, last in plan[index]:
            for k, variant in ((first, "before"), (last, "after")):
                failures += [f"{label}: {p}" for p in world.reset(index)]
                tried += 1
                how, sql, problems = cut_once(world, phase, k, variant)
                # a history write (with its COMMIT) that reached the server, reply lost
                in_doubt += variant == "after" and "change AS (" in (sql or "")  # alone or batched
                label = f"{phase.name} k={k} {variant} [{how}]"
                failures += [f"{label}: {p}" for p in problems]
    failures += [f"{label}: {p}" for p in settle(world.dsn, world=world)]
    took = time.monotonic() - started
    sizes = [len(p) for p in plan]
    print(
        f"crash suite: {tried} cut points tried (round trips per phase {sizes}, "
        f"{in_doubt} of them a COMMIT whose reply was lost, {took:.1f}s)"
    )
    assert tried == 2 * sum(sizes) and tried > 100, f"only {tried} cut points"
    # Batched runs carry several migrations' COMMITs in one round trip (issue 12): fewer round
    # trips hold a COMMIT, each cut "after" puts every COMMIT of its batch in doubt at once.
    assert in_doubt >= 3, f"only {in_doubt} of {tried} cut points lost a COMMIT's reply"
    summary = f"{len(failures)} failures over {tried} cut points ({in_doubt} COMMITs in doubt)"
    assert not failures, summary + ":\n" + "\n".join(failures)


# --------------------------------------------------------------------------- a second fault


def later_connections(
    world: World, index: int, k: int, variant: Variant
) -> list[tuple[int, list[tuple[int, int]]]]:
    """The connections the run opens after its first is cut at ``k`` (the reconnect that reads
    whether a COMMIT in doubt committed, the one that writes the audit row the lost session
    could not): each one's index and round trips."""
    world.reset(index)
    with CrashProxy.for_dsn(world.dsn, cut_at=k, variant=variant) as proxy:
        world.run(PHASES[index], proxy.dsn(world.dsn))
        connections = world.saw(proxy)
    return [(c.index, c.round_trips()) for c in connections[1:] if c.count]


def cut_twice(
    world: World, phase: Phase, first: tuple[int, Variant], index: int, k: int, variant: Variant
) -> tuple[str | None, list[str]]:
    """Run ``phase`` with its first connection cut at ``first`` and connection ``index`` at
    ``k``; how the second was cut, and what broke."""
    also = {index: (k, variant)}
    with CrashProxy.for_dsn(world.dsn, cut_at=first[0], variant=first[1], also=also) as proxy:
        try:
            cut: dict[str, Any] | None = world.run(phase, proxy.dsn(world.dsn))
            problems: list[str] = []
        except Exception as exc:  # an escaped exception is a finding too
            cut, problems = None, [f"the cut run raised {type(exc).__name__}: {exc}"]
        connections = world.saw(proxy)
    second = connections[index] if len(connections) > index else None
    if second is None or second.cut is None:
        return None, [f"the run never reached message {k} of connection {index}: no second cut"]
    return second.cut, problems + after_cut(world, phase, cut)


def test_second_fault_on_the_reconnect_and_the_audit_connection(world: World) -> None:
    """Each round trip of a phase that carries a COMMIT is cut on the first connection
    (before: the run's audit row is left to a new session; after: the COMMIT is in doubt and
    a new session reads the history), and then each round trip of every connection the run
    opens after it is cut too (before its first message, after its last), on the real server:
    SPEC 7 items 6 and 7 hold (the audit log never says failed for what committed, no lock is
    left, the next run completes)."""
    started = time.monotonic()
    failures: list[str] = []
    tried, label = 0, "the uncut runs"
    for index, phase in enumerate(PHASES):
        first_connection = uncut(world, index)
        for trip in first_connection.round_trips():
            if "COMMIT" not in first_connection.trip_text(trip):
                continue
            for first in ((trip[0], "before"), (trip[1], "after")):
                failures += [f"{label}: {p}" for p in settle(world.dsn, world=world)]
                for conn, trips in later_connections(world, index, *first):
                    for k, variant in [(a, "before") for a, _ in trips] + [
                        (b, "after") for _, b in trips
                    ]:
                        failures += [f"{label}: {p}" for p in world.reset(index)]
                        tried += 1
                        how, problems = cut_twice(world, phase, first, conn, k, variant)
                        label = f"{phase.name} first {first}, connection {conn} [{how}]"
                        failures += [f"{label}: {p}" for p in problems]
    failures += [f"{label}: {p}" for p in settle(world.dsn, world=world)]
    print(f"crash suite: {tried} second cuts tried ({time.monotonic() - started:.1f}s)")
    assert tried >= 10, f"only {tried} second cuts"
    assert not failures, f"{len(failures)} failures over {tried} second cuts:\n" + (
        "\n".join(failures)
    )


# --------------------------------------------------------------------------- SIGKILL


def _done(dsn: str) -> int:
    rows = query(
        dsn,
        "SELECT count(*) FROM schema_migrations_log WHERE outcome IN ('applied', 'reverted')",
    )
    return int(rows[0][0])


def _backend_gone(on: str | psycopg.Connection[Any], pid: int) -> bool:
    sql = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
    if isinstance(on, str):
        return not query(on, sql, (pid,))
    return on.execute(sql, (pid,)).fetchone() is None


def _at_gate(gate: psycopg.Connection[Any], key: int) -> int | None:
    """The pid of the session waiting at the gate ``key`` (see GATE), if one is."""
    row = gate.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
        "AND objid = %s AND objsubid = 2 AND NOT granted",
        (GATE_CLASS, key),
    ).fetchone()
    return int(row[0]) if row else None


def _state(proc: subprocess.Popen[bytes], gate: psycopg.Connection[Any], key: int) -> Any:
    """What ``kill_at`` waits for: the run's end, or its session waiting at the gate."""
    return ("ended", proc.returncode) if proc.poll() is not None else _at_gate(gate, key)


def kill_at(world: World, phase: Phase, done: int) -> str | None:
    """Start the CLI on ``phase``; SIGKILL it while the migration after the ``done``-th of
    this run waits at its start (its GATE, closed by this test until the kill): a state the
    run holds until the kill, so the kill cannot miss it however slow the machine is. On 14+
    the gate opens only once the killed run's backend has ended (the client check ends it
    within 1 s: the migration is rolled back); on 13 nothing checks the client while a
    statement waits, so it opens at once and that backend carries on alone (see the README's
    matrix section). None when the kill landed there, else what went wrong."""
    write_corpus(world.mdir, fixed=phase.fixed)
    key = (_done(world.dsn) if PHASES.index(phase) else 0) + done
    env = {
        **env_without_patcher(),
        "PATCHER_DATABASE_URL": world.dsn,
        "PATCHER_SOURCE": str(world.mdir),
        "PATCHER_LOCK_WAIT_SECONDS": "1",
    }
    args = [phase.action, "--json"] + [f"--{k}={v}" for k, v in phase.fields.items()]
    with psycopg.connect(world.dsn, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s, %s)", (GATE_CLASS, key))
        proc = subprocess.Popen(
            [sys.executable, "-m", "patcher.cli", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            state = wait_for("the run to reach the gate", lambda: _state(proc, gate, key), 60)
            if isinstance(state, tuple):
                out, err = proc.communicate()
                return f"the run ended before the kill: {out[-300:]!r} {err[-300:]!r}"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if gate.info.server_version >= 140000:
                wait_for("the killed run's backend to end", lambda: _backend_gone(gate, state))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    if proc.returncode != -signal.SIGKILL:
        return f"the runner was not killed (exit {proc.returncode})"
    return None


def test_sigkill_at_every_migration_boundary(world: World) -> None:
    """SIGKILL the CLI after each migration of each phase (while the next one has started)."""
    boundaries = [(0, j) for j in range(6)] + [(1, j) for j in range(3)] + [(2, j) for j in (0, 1)]
    failures: list[str] = []
    started = time.monotonic()
    label = "the start"
    for index, done in boundaries:
        phase = PHASES[index]
        failures += [f"{label}: {p}" for p in world.reset(index)]
        label = f"{phase.name} killed after {done} done"
        missed = kill_at(world, phase, done)
        if missed is not None:
            failures.append(f"{label}: {missed}")
            continue
        failures += [f"{label}: {p}" for p in after_cut(world, phase, None)]
    took = time.monotonic() - started
    print(f"crash suite: {len(boundaries)} SIGKILL points tried ({took:.1f}s)")
    assert not failures, f"{len(failures)} failures over {len(boundaries)} SIGKILL points:\n" + (
        "\n".join(failures)
    )


# --------------------------------------------------------------------------- the checker


def test_checker_sees_each_kind_of_breach(world: World) -> None:
    """The checker is not vacuous: after a clean run it is silent, and each breach of SPEC
    7.6 made by hand is named."""
    world.reset(1)  # phase "migrate" done: 1-5 applied, 6 failed
    assert invariant_violations(world.dsn, world.mdir) == []
    breaches = {
        "DROP INDEX i1": "version 1 is recorded applied but lacks (or has INVALID) index i1",
        "CREATE TABLE t6 (id int)": "version 6 is not recorded but is half-applied: table t6",
        "UPDATE schema_migrations SET dirty = true, dirty_direction = 'up' WHERE version = 5":
            "version 5 is dirty but is transactional",
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'i4a'::regclass":
            "version 4 is recorded applied but lacks (or has INVALID) index i4a",
        "INSERT INTO schema_migrations_log (version, direction, outcome) VALUES (3, 'up', "
        "'failed')": "says version 3 failed (up) but it committed",
        "DELETE FROM markers WHERE version = 3":
            "version 3 is recorded applied but lacks (or has INVALID) marker 3",
    }  # fmt: skip
    for sql, expected in breaches.items():
        with psycopg.connect(world.dsn) as conn:  # undone: each breach alone
            conn.execute("SET LOCAL lock_timeout = '1s'")
            conn.execute(sql)
            found = violations_on(conn, world.mdir)
            conn.rollback()
        assert any(expected in p for p in found), (sql, found)
    with psycopg.connect(world.dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(42)")
        found = invariant_violations(world.dsn, world.mdir)
    assert any("advisory lock still held" in p for p in found), found
    assert invariant_violations(world.dsn, world.mdir) == []


# --------------------------------------------------------------------------- the proxy and settle


@pytest.mark.parametrize("variant", ["before", "after"])
def test_a_cut_reaches_the_backend_whatever_else_holds_its_socket(
    pg_dsn: str, variant: Variant
) -> None:
    """The cut session's backend, idle in a transaction holding an advisory lock, ends at once
    even while another descriptor still refers to the proxy's socket toward it (as a thread's
    read in flight or a forked child's inherited copy does): closing a socket resets it only
    with its last reference, so the proxy must end it with a shutdown, which does not wait."""
    with CrashProxy.for_dsn(pg_dsn, cut_at=3, variant=variant) as proxy:
        conn = psycopg.connect(proxy.dsn(pg_dsn), autocommit=True)
        (server,) = proxy.server_sockets()
        held = os.dup(server.fileno())
        try:
            pid = conn.info.backend_pid
            assert conn.pgconn.exec_(b"BEGIN").status == psycopg.pq.ExecStatus.COMMAND_OK
            assert conn.pgconn.exec_(b"SELECT pg_advisory_xact_lock(7)").status == (
                psycopg.pq.ExecStatus.TUPLES_OK
            )
            cut = conn.pgconn.exec_(b"SELECT 1")  # message 3: cut (its reply dropped if after)
            assert cut.status != psycopg.pq.ExecStatus.TUPLES_OK
            wait_for("the cut backend to end", lambda: _backend_gone(pg_dsn, pid), timeout=10)
        finally:
            os.close(held)
            conn.close()
    assert proxy.cut == f"{variant} message 3 (Q)"
    assert lock_free(pg_dsn, 7)


def lock_free(dsn: str, key: int) -> bool:
    q = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
    return query(dsn, q, (key,)) == [(0,)]


def test_a_session_that_outlives_the_cut_fails_naming_what_it_holds(world: World) -> None:
    """settle() never ends a survivor silently: what it holds (its transaction, its advisory
    lock) and which proxy connection it came through are in the failure."""
    with CrashProxy.for_dsn(world.dsn) as proxy:
        holder = psycopg.connect(proxy.dsn(world.dsn))  # not autocommit: a transaction
        holder.execute("SELECT pg_advisory_xact_lock(11)")
        world.ports = {c: "proxy connection 0, not cut" for c in [_port(proxy)]}
        problems = settle(world.dsn, timeout=0.3, world=world)
        holder.close()
    assert len(problems) == 1, problems
    (problem,) = problems
    assert "a session outlived the cut" in problem and "proxy connection 0, not cut" in problem
    assert "idle in transaction" in problem and "in a transaction" in problem
    assert "advisory ExclusiveLock" in problem
    assert settle(world.dsn, world=world) == []  # it was ended


def _port(proxy: CrashProxy) -> int:
    (server,) = proxy.server_sockets()
    port: int = server.getsockname()[1]
    return port

"""A writer failover at 20 random points of an 8-migration run (issue 33, SPEC 7 items 6-7).

The crash suite's eight-migration corpus (``test_faults_crash.CORPUS``, version 6 fixed: one
no-transaction script, expectations on ``-- expect:`` lines) is applied through
``AuroraProxy``, which cuts the run's session at one of its client messages (chosen by a seeded
draw among those a clean run sends; the message withheld or its reply lost) and then refuses
every connection for 5 s, as a writer failing over does. Whatever the point: the history
equals the catalog, no lock is left, and a next run completes (after ``repair`` where the cut
left a no-transaction script dirty). A run cut before any migration started carries on by
itself on a new session once the writer is back."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.faults.aurorakit import AuroraProxy
from tests.faults.crashkit import dirty_versions, invariant_violations
from tests.faults.faultkit import OwnCluster
from tests.faults.test_faults_crash import settle, write_corpus
from tests.fixtures.engine import make_runner, query

pytestmark = pytest.mark.slow

SEED, POINTS, REFUSE_S = 33, 20, 5.0
ALL = list(range(1, 9))


def applied(dsn: str) -> list[int]:
    rows = query(dsn, "SELECT version FROM schema_migrations WHERE NOT dirty ORDER BY 1")
    return [r[0] for r in rows]


def proxy_for(dsn: str, **kwargs: Any) -> AuroraProxy:
    parts = urlsplit(dsn)
    return AuroraProxy((parts.hostname or "127.0.0.1", parts.port or 5432), lifetime=300,
                       **kwargs)  # fmt: skip


@pytest.fixture
def fresh_db(own_cluster: OwnCluster) -> Iterator[Any]:
    made: list[str] = []

    def make() -> str:
        name = own_cluster.server.create_database()
        made.append(name)
        return own_cluster.app_dsn(name)

    yield make
    own_cluster.reset_admin()
    for name in made:
        own_cluster.server.drop_database(name)


def test_a_failover_at_twenty_random_points(fresh_db: Any, tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    write_corpus(mdir, fixed=True)
    clean = fresh_db()
    with proxy_for(clean) as counting:
        result = make_runner(counting.dsn(clean), mdir)("migrate", request_id="failover-count")
        first = counting.wait_first()
    assert result["status"] == "applied" and applied(clean) == ALL
    assert first is not None
    draw = random.Random(SEED)
    points = sorted(draw.sample(range(3, first.count + 1), POINTS))  # 1-2: SCRAM
    problems: list[str] = []
    outcomes: dict[str, int] = {}
    for point in points:
        variant = draw.choice(("before", "after"))
        dsn = fresh_db()
        with proxy_for(dsn, cut_at=point, variant=variant) as proxy:
            proxy.refuse_after_cut(REFUSE_S)
            run = make_runner(proxy.dsn(dsn), mdir)
            cut = run("migrate", request_id=f"failover-{point}")
            cut_query = (proxy.wait_first() or first).cut_query
        where = f"cut {variant} message {point} ({(cut_query or '')[:60]!r})"
        outcomes[cut["status"]] = outcomes.get(cut["status"], 0) + 1
        # The cut backend exits once the reset reaches it (a busy one within the server's
        # client_connection_check_interval): wait for it, as the crash suite does, then check;
        # one still there after 30 s is itself a failure.
        problems += [f"{where}: {p}" for p in settle(dsn)]
        problems += [f"{where}: {p}" for p in invariant_violations(dsn, mdir)]
        if cut["status"] == "applied" and applied(dsn) != ALL:
            problems.append(f"{where}: applied but the history is {applied(dsn)}")
        again = make_runner(dsn, mdir)
        if dirty_versions(dsn):
            repaired = again("repair", request_id=f"failover-repair-{point}")
            if repaired["status"] != "applied":
                problems.append(f"{where}: repair said {repaired['status']}")
        after = again("migrate", request_id=f"failover-after-{point}")
        if after["status"] not in ("applied", "up_to_date") or applied(dsn) != ALL:
            problems.append(f"{where}: the next run said {after['status']}, {after['error']}")
        problems += [f"{where}, after: {p}" for p in invariant_violations(dsn, mdir)]
    print(f"failover points {points}: outcomes of the cut runs {outcomes}")
    assert not problems, "\n".join(problems)

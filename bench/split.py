"""The cost of splitting scripts into statements (issue 26 item 2), measured in this process.

``patcher.sql.lexer.split_statements`` is the one statement list of every path; PostgreSQL's own
splitters (pglast: the parser, and libpg_query's scanner-only split, which does not follow
``BEGIN ATOMIC`` bodies) are timed beside it for comparison. Reported by the big-script bench (one
50 MB script) and the apply bench (per script, over its N migrations).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from statistics import median


def _timed(work: Callable[[], object], reps: int) -> float:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return median(samples)


def split_seconds(texts: Sequence[str], reps: int) -> dict[str, float]:
    """Median seconds to split all of ``texts``: ours, pglast's parser, pglast's scanner."""
    from pglast.parser import split

    from patcher.sql.lexer import split_statements

    return {
        "split_statements": _timed(lambda: [split_statements(t) for t in texts], reps),
        "pglast parser split": _timed(lambda: [split(t, with_parser=True) for t in texts], reps),
        "pglast scanner split": _timed(lambda: [split(t, with_parser=False) for t in texts], reps),
    }

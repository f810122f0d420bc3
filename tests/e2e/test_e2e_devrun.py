"""``make run`` (python -m patcher.dev.devrun) from nothing: own PostgreSQL and S3, 3 results,
as the CLI prints them (a table per step, the dry run's SQL as SQL) or, with ``--json``, as JSON."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from patcher.dev.devrun import REPO
from patcher.dev.localpg import free_port


@pytest.fixture
def dev_env() -> Iterator[dict[str, str]]:
    """A clean environment (no PATCHER_/AWS_ settings) and a dev dir the postgres user can reach;
    the cluster started in it is stopped afterwards."""
    dev_dir = Path(tempfile.mkdtemp(prefix="patcher-devrun-"))
    dev_dir.chmod(0o755)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PATCHER_", "AWS_", "POWERTOOLS_"))
    }
    env.update(PATCHER_DEV_DIR=str(dev_dir), PATCHER_DEV_PG_PORT=str(free_port()))
    yield env
    subprocess.run([sys.executable, "-m", "patcher.dev.devrun", "--stop"], env=env, check=False)
    shutil.rmtree(dev_dir, ignore_errors=True)


def _devrun(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "patcher.dev.devrun", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _statuses(out: str) -> list[str]:
    """The JSON results' statuses (``--json``)."""
    return re.findall(r'^  "status": "(\w+)"', out, flags=re.MULTILINE)


def _headlines(out: str) -> list[str]:
    """The text results' headlines: ``migrate (dry run): planned - current version none``."""
    found = re.findall(r"^(\w+(?: \(dry run\))?: \w+ - current version \w+) - ", out, re.M)
    return list(found)


@pytest.mark.slow
def test_make_run_from_nothing_then_again(dev_env: dict[str, str]) -> None:
    port = dev_env["PATCHER_DEV_PG_PORT"]
    first = _devrun(dev_env).stdout
    assert f"started the local cluster on port {port}" in first
    files = [p for p in (REPO / "migrations").rglob("*") if p.is_file()]
    ups = sorted(p for p in files if p.name.endswith(".up.sql"))
    newest = max(int(p.name.split("_")[0]) for p in ups)
    assert f"uploaded {len(files)} files to s3://stackflow-migrations/migrations/" in first
    assert [h for h in re.findall(r"^=== (\d/3 [^:]+)", first, flags=re.MULTILINE)] == [
        "1/3 dry run",
        "2/3 migrate",
        "3/3 status",
    ]
    # What a person reads (issue 28 item 7): the CLI's report, a table per step ...
    assert _headlines(first) == [
        "migrate (dry run): planned - current version none",
        f"migrate: applied - current version {newest}",
        f"status: up_to_date - current version {newest}",
    ]
    assert first.count("VERSION  DESCRIPTION") == 3
    assert re.search(rf"^{newest} +\w+ +up +applied ", first, flags=re.MULTILINE)
    # ... and the dry run's SQL as SQL: each script's lines, indented, not a JSON string
    script = ups[0].read_text().strip().splitlines()
    shown = "\n".join(f"    {line}" for line in script)
    assert f"sql:\n{shown}\n" in first
    assert '"sql":' not in first and "\\n" not in first
    assert f"psql postgresql://postgres@127.0.0.1:{port}/stackflow" in first

    second = _devrun(dev_env, "--json").stdout  # make run ARGS=--json: the exact results
    assert f"reusing the local cluster on port {port}" in second
    assert _statuses(second) == ["up_to_date", "up_to_date", "up_to_date"]
    assert f'"current_version": {newest}' in second
    assert "VERSION  DESCRIPTION" not in second

    assert "stopped the local PostgreSQL" in _devrun(dev_env, "--stop").stdout

"""A plain ``pip install`` of the project (no extras) gives dry runs real risks (issue 17).

pglast used to be the ``risks`` extra: a new user's dry run then reported one
ANALYZER_UNAVAILABLE entry per migration. This installs the project into a fresh virtualenv
exactly as a user would, and runs ``patcher migrate --dry-run`` from it against PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.engine import REPO

pytestmark = pytest.mark.slow


def test_plain_install_dry_run_reports_real_risks(tmp_path: Path, pg_dsn: str) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # A copy of the tree, so the build never writes into the worktree (build/, egg-info).
    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "patcher", "pyproject.toml", "README.md"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((REPO / name).read_bytes())
    done = subprocess.run([*pip, str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, email text)")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "1_index.up.sql").write_text("CREATE INDEX accounts_email ON accounts (email);")
    (migrations / "2_drop.up.sql").write_text("DROP TABLE accounts;")
    where = [str(migrations), "--database-url", pg_dsn]
    proc = subprocess.run(
        [str(env_dir / "bin" / "patcher"), "migrate", "--dry-run", "--json", "--source", *where],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: the installed package, not the worktree's
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    codes = [[risk["code"] for risk in entry["risks"]] for entry in result["migrations"]]
    assert codes[0] == ["INDEX_NOT_CONCURRENT"]
    assert "DROP_TABLE" in codes[1]
    assert all("ANALYZER_UNAVAILABLE" not in c for c in codes)

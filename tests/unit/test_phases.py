"""Expand / contract / neutral from the parse alone: the change set and waivers."""

from __future__ import annotations

from patcher.sql.lexer import split_statements
from patcher.sql.phases.classify import ChangeSet, classify_script, classify_statement, is_mixed


def _phases(sql: str, change_set: ChangeSet | None = None) -> list[str]:
    found = classify_script(sql, split_statements(sql), change_set or ChangeSet())
    return [c.phase for c in found]


def test_what_the_change_set_creates_is_never_contract() -> None:
    sql = (
        "CREATE TABLE t (id int PRIMARY KEY, a text);"
        "ALTER TABLE t ADD CONSTRAINT c CHECK (id > 0);"
        "ALTER TABLE t RENAME COLUMN a TO b;"
        "ALTER TABLE u ADD COLUMN n int;"
        "ALTER TABLE u ALTER COLUMN n SET NOT NULL;"
        "DROP TABLE t;"
    )
    assert _phases(sql) == ["expand"] * 6


def test_a_unique_index_on_columns_the_change_set_adds_is_expand() -> None:
    # the add-unique recipe's lock-friendly form (the two-release harness found it held)
    assert _phases(
        "ALTER TABLE u ADD COLUMN k text;"
        "CREATE UNIQUE INDEX u_k ON u (k);"
        "CREATE UNIQUE INDEX u_ka ON u (k, a);"
        "CREATE UNIQUE INDEX u_kl ON u (lower(k));"
        "CREATE UNIQUE INDEX u_kw ON u (k) WHERE a IS NOT NULL;"
        "CREATE UNIQUE INDEX u_a ON u (a);"
    ) == ["expand", "expand", "contract", "contract", "contract", "contract"]


def test_the_change_set_spans_files() -> None:
    change_set = ChangeSet()
    assert _phases("CREATE VIEW v AS SELECT 1;", change_set) == ["expand"]
    assert _phases("DROP VIEW v;", change_set) == ["expand"]
    assert _phases("DROP VIEW v;") == ["contract"]


def test_recipes_name_the_way_around() -> None:
    cases = {
        "ALTER TABLE u RENAME COLUMN a TO b": "rename-column",
        "ALTER TABLE u ALTER COLUMN a TYPE bigint": "change-type",
        "ALTER TABLE u ALTER COLUMN a SET NOT NULL": "set-not-null",
        "ALTER TABLE u ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES v (id)": "add-foreign-key",
        "ALTER TABLE u ADD CONSTRAINT k UNIQUE (a)": "add-unique",
        "ALTER TABLE u ADD CONSTRAINT k CHECK (a > 0) NOT VALID": "add-check",
    }
    for statement, recipe in cases.items():
        verdict = classify_statement(statement, ChangeSet())[0]
        assert (verdict.phase, verdict.recipe) == ("contract", recipe), statement


def test_data_and_settings_are_neutral_without_a_parse() -> None:
    assert (
        _phases("INSERT INTO t VALUES (1); SET lock_timeout = '1s'; COMMENT ON TABLE t IS 'x';")
        == ["neutral"] * 3
    )


def test_unparsable_and_opaque_statements_wait_for_contract() -> None:
    assert _phases("ALTER TABLE t FROBNICATE;") == ["contract"]
    assert _phases("DO $$ BEGIN PERFORM 1; END $$;") == ["contract"]


def test_a_waiver_keeps_the_verdict_but_releases_the_hold() -> None:
    sql = "-- patcher:ignore BREAKS_PREVIOUS_RELEASE the old release never read it\nDROP VIEW v;"
    (found,) = classify_script(sql, split_statements(sql), ChangeSet())
    assert found.phase == "contract"
    assert found.waived == "the old release never read it"
    assert not found.holds


def test_mixed_versions_are_detected() -> None:
    sql = "ALTER TABLE u ADD COLUMN n int; ALTER TABLE u DROP COLUMN o;"
    assert is_mixed(classify_script(sql, split_statements(sql), ChangeSet()))
    sql = "ALTER TABLE u ADD COLUMN n int; UPDATE u SET n = 1;"
    assert not is_mixed(classify_script(sql, split_statements(sql), ChangeSet()))

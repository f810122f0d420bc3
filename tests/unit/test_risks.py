"""patcher.sql.risks: each risk code with a case that has it and one that does not."""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from patcher.sql.risks import MAX_STATEMENT_CHARS, Risk, analyze

REPO = Path(__file__).resolve().parents[2]
USERS = {"public.users": 1_200_000, "orders": -1}


def codes(
    sql: str, *, transactional: bool = True, existing: Mapping[str, int] | None = None
) -> list[str]:
    return [r.code for r in analyze(sql, transactional=transactional, existing_tables=existing)]


def only(sql: str, code: str, existing: Mapping[str, int] | None = None) -> Risk:
    """The one risk of ``code`` that a transactional ``sql`` has."""
    found = [
        r for r in analyze(sql, transactional=True, existing_tables=existing) if r.code == code
    ]
    assert len(found) == 1, found
    return found[0]


# --- data loss -------------------------------------------------------------------------------


def test_drop_table() -> None:
    risk = only("DROP TABLE users;", "DROP_TABLE", existing=USERS)
    assert risk.table == "users"
    assert risk.statement == "DROP TABLE users"
    assert "~1,200,000 rows" in risk.explanation
    assert "ACCESS_EXCLUSIVE_LOCK" in codes("DROP TABLE users;")


def test_drop_table_made_by_the_script_or_absent_is_no_risk() -> None:
    assert codes("CREATE TABLE scratch (id int); DROP TABLE scratch;") == []
    assert codes("DROP TABLE IF EXISTS ghost;", existing=USERS) == []


def test_drop_column() -> None:
    assert "DROP_COLUMN" in codes("ALTER TABLE users DROP COLUMN legacy;")
    assert "DROP_COLUMN" not in codes("ALTER TABLE users ADD COLUMN fresh int;")


def test_truncate() -> None:
    risk = only("TRUNCATE users, orders;", "TRUNCATE", existing={"users": 10})
    assert risk.table == "users"
    assert codes("CREATE TABLE t (id int); TRUNCATE t;") == []


def test_delete_without_where() -> None:
    assert "DELETE_WITHOUT_WHERE" in codes("DELETE FROM users;")
    assert codes("DELETE FROM users WHERE id = 1;") == []


def test_update_without_where() -> None:
    assert "UPDATE_WITHOUT_WHERE" in codes("UPDATE users SET active = true;")
    assert codes("UPDATE users SET active = true WHERE id < 100;") == []


# --- locks -----------------------------------------------------------------------------------


def test_access_exclusive_lock_names_the_table_and_its_size() -> None:
    risk = only("ALTER TABLE users ADD COLUMN bio text;", "ACCESS_EXCLUSIVE_LOCK", existing=USERS)
    assert risk.table == "users"
    assert "~1,200,000 rows" in risk.explanation
    unknown = only(
        "ALTER TABLE orders ADD COLUMN note text;", "ACCESS_EXCLUSIVE_LOCK", existing=USERS
    )
    assert "rows" not in unknown.explanation


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE users VALIDATE CONSTRAINT users_email_check;",
        "ALTER TABLE users ALTER COLUMN email SET STATISTICS 500;",
        "ALTER TABLE users SET (fillfactor = 90);",
        "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id) NOT VALID;",
        "LOCK TABLE users IN SHARE MODE;",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY users;",
    ],
)
def test_weaker_locks_are_no_access_exclusive_risk(sql: str) -> None:
    assert codes(sql) == []


def test_lock_table_and_refresh() -> None:
    assert codes("LOCK TABLE users;") == ["ACCESS_EXCLUSIVE_LOCK"]
    assert codes("REFRESH MATERIALIZED VIEW users;") == ["TABLE_REWRITE", "ACCESS_EXCLUSIVE_LOCK"]


def test_tables_made_by_the_script_take_no_lock_risk() -> None:
    sql = "CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN x int NOT NULL, ALTER id TYPE bigint;"
    assert codes(sql) == []


@pytest.mark.parametrize(
    ("name", "existing", "found"),
    [
        ("users", {"users": 5}, True),
        ("users", {"public.users": 5}, True),
        ("public.users", {"users": 5}, True),
        ("app.users", {"users": 5}, False),
        ("app.users", {"app.users": 5}, True),
        ("users", {"app.users": 5}, False),
    ],
)
def test_existing_table_names(name: str, existing: dict[str, int], found: bool) -> None:
    assert ("ACCESS_EXCLUSIVE_LOCK" in codes(f"LOCK TABLE {name};", existing=existing)) is found


def test_a_renamed_table_keeps_its_size() -> None:
    sql = "ALTER TABLE users RENAME TO members; ALTER TABLE members ADD COLUMN x int;"
    risks = analyze(sql, transactional=True, existing_tables=USERS)
    locks = [r for r in risks if r.code == "ACCESS_EXCLUSIVE_LOCK"]
    assert [r.table for r in locks] == ["users", "users"]  # the relation, as it was before
    assert "members (~1,200,000 rows)" in locks[1].explanation
    assert all("~1,200,000 rows" in r.explanation for r in locks)


# --- rewrites --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
        "ALTER TABLE users ALTER COLUMN price TYPE numeric(12, 2) USING price::numeric;",
        "ALTER TABLE users ALTER COLUMN name TYPE text USING lower(name);",
        "ALTER TABLE users ADD COLUMN r float8 DEFAULT random();",
        "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
        "ALTER TABLE users ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();",
        "ALTER TABLE users ADD COLUMN n bigserial;",
        "ALTER TABLE users ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
        "ALTER TABLE users ADD COLUMN d int GENERATED ALWAYS AS (id * 2) STORED;",
        "ALTER TABLE users SET LOGGED;",
        "ALTER TABLE users SET UNLOGGED;",
        "CLUSTER users USING users_pkey;",
    ],
)
def test_table_rewrite(sql: str) -> None:
    assert "TABLE_REWRITE" in codes(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE users ALTER COLUMN name TYPE text;",  # varchar(50) -> text
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);",  # widening
        "ALTER TABLE users ADD COLUMN score int NOT NULL DEFAULT 0;",  # constant: PG11+
        "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();",  # stable
        "ALTER TABLE users ADD COLUMN tags jsonb DEFAULT '{}'::jsonb;",
        "ALTER TABLE users ALTER COLUMN score SET DEFAULT random();",  # future rows only
    ],
)
def test_no_table_rewrite(sql: str) -> None:
    assert "TABLE_REWRITE" not in codes(sql, existing=USERS)


def test_offline_a_type_change_may_rewrite() -> None:
    risk = only("ALTER TABLE users ALTER COLUMN name TYPE text;", "TABLE_REWRITE")
    assert "may rewrite" in risk.explanation
    assert "dry run" in risk.explanation


def test_vacuum_full() -> None:
    assert codes("VACUUM FULL users;", transactional=False) == [
        "TABLE_REWRITE",
        "ACCESS_EXCLUSIVE_LOCK",
    ]
    assert codes("VACUUM ANALYZE users;", transactional=False) == []
    [rewrite, _lock] = analyze("VACUUM FULL;", transactional=False)
    assert rewrite.table is None
    assert "every table of the database" in rewrite.explanation
    assert codes("VACUUM users;") == ["CANNOT_RUN_IN_TRANSACTION"]


# --- indexes ---------------------------------------------------------------------------------


def test_index_not_concurrent() -> None:
    risk = only(
        "CREATE INDEX users_email ON users (email);", "INDEX_NOT_CONCURRENT", existing=USERS
    )
    assert "CONCURRENTLY" in risk.explanation
    assert "~1,200,000 rows" in risk.explanation


def test_index_concurrently_or_on_a_new_table_is_fine() -> None:
    assert (
        codes("CREATE INDEX CONCURRENTLY users_email ON users (email);", transactional=False) == []
    )
    assert codes("CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);") == []


def test_constraint_index_builds() -> None:
    assert "INDEX_NOT_CONCURRENT" in codes("ALTER TABLE users ADD PRIMARY KEY (id);")
    using = "ALTER TABLE users ADD CONSTRAINT users_pk PRIMARY KEY USING INDEX users_id;"
    assert "INDEX_NOT_CONCURRENT" not in codes(using)


def test_drop_index_not_concurrent() -> None:
    assert codes("DROP INDEX users_email;") == ["DROP_INDEX_NOT_CONCURRENT"]
    assert codes("DROP INDEX CONCURRENTLY users_email;", transactional=False) == []


def test_concurrently_inside_a_transaction_cannot_run() -> None:
    sql = "CREATE INDEX CONCURRENTLY users_email ON users (email);"
    risk = only(sql, "CANNOT_RUN_IN_TRANSACTION")
    assert "patcher:no-transaction" in risk.explanation
    assert codes(sql, transactional=False) == []


# --- constraints -----------------------------------------------------------------------------


def test_not_null_without_default_on_add_column() -> None:
    risk = only("ALTER TABLE users ADD COLUMN org int NOT NULL;", "NOT_NULL_WITHOUT_DEFAULT")
    assert "DEFAULT" in risk.explanation
    assert "NOT_NULL_WITHOUT_DEFAULT" not in codes(
        "ALTER TABLE users ADD COLUMN org int NOT NULL DEFAULT 1;"
    )
    assert "NOT_NULL_WITHOUT_DEFAULT" not in codes("ALTER TABLE users ADD COLUMN org int;")


def test_set_not_null_scans_the_table() -> None:
    risk = only("ALTER TABLE users ALTER COLUMN org SET NOT NULL;", "SET_NOT_NULL_SCANS")
    assert "NOT VALID" in risk.explanation
    assert "SET_NOT_NULL_SCANS" not in codes("ALTER TABLE users ALTER org DROP NOT NULL;")


def test_add_foreign_key_validating() -> None:
    sql = "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id)"
    # SHARE ROW EXCLUSIVE on both tables, not ACCESS EXCLUSIVE
    assert codes(sql) == ["FOREIGN_KEY_LOCKS_REFERENCED", "ADD_FOREIGN_KEY_VALIDATING"]
    assert codes(sql + " NOT VALID") == []
    assert (
        codes(
            "CREATE TABLE orgs (id int PRIMARY KEY); CREATE TABLE m (o int);"
            + sql.replace("users", "m")
        )
        == []
    )


def test_add_check_validating() -> None:
    sql = "ALTER TABLE users ADD CONSTRAINT positive CHECK (age > 0)"
    assert "ADD_CHECK_VALIDATING" in codes(sql)
    assert "ADD_CHECK_VALIDATING" not in codes(sql + " NOT VALID")


# --- script level ----------------------------------------------------------------------------


def test_multi_statement_no_transaction() -> None:
    sql = "CREATE INDEX CONCURRENTLY a ON users (a);\nCREATE INDEX CONCURRENTLY b ON users (b);"
    assert codes(sql, transactional=False) == ["MULTI_STATEMENT_NO_TRANSACTION"]
    assert codes(sql.splitlines()[0], transactional=False) == []
    assert "MULTI_STATEMENT_NO_TRANSACTION" not in codes("SELECT 1; SELECT 2;")


def test_rename() -> None:
    assert codes("ALTER TABLE users RENAME TO members;") == ["RENAME", "ACCESS_EXCLUSIVE_LOCK"]
    risk = only("ALTER TABLE users RENAME COLUMN name TO full_name;", "RENAME")
    assert "column name of users" in risk.explanation
    assert codes("ALTER INDEX users_email RENAME TO users_mail;") == ["RENAME"]
    assert codes("CREATE INDEX i ON users (a); ALTER INDEX i RENAME TO j;") == [
        "INDEX_NOT_CONCURRENT"
    ]
    assert (
        codes("CREATE TABLE t (a int); ALTER TABLE t RENAME a TO b; ALTER TABLE t RENAME TO u;")
        == []
    )


def test_safe_script_of_new_tables_has_no_risk() -> None:
    sql = """
    -- patcher: a typical first migration, ünïcode in comments included
    CREATE TABLE orgs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        created timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE members (
        id bigserial PRIMARY KEY,
        org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
        email varchar(320) NOT NULL CHECK (email <> '')
    );
    CREATE UNIQUE INDEX members_email ON members (lower(email));
    CREATE INDEX members_org ON members (org_id);
    ALTER TABLE members ADD CONSTRAINT members_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id);
    ALTER TABLE members ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();
    INSERT INTO orgs (name) VALUES ('Zoë & co');
    COMMENT ON TABLE members IS 'people';
    """
    assert analyze(sql, transactional=True) == []
    assert analyze(sql, transactional=True, existing_tables=USERS) == []


# --- statement text, parse errors, to_dict ---------------------------------------------------


def test_statement_is_sliced_by_characters_after_multibyte_text() -> None:
    # libpg_query counts UTF-8 bytes; pglast hands back str indexes. Slicing must agree.
    sql = (
        "-- déjà vu 🚀\nINSERT INTO log VALUES ('ñandú €');\n"
        "UPDATE users SET nick = 'Zoë 🚀';\nDELETE FROM users;"
    )
    risks = analyze(sql, transactional=True)
    assert [(r.code, r.statement) for r in risks] == [
        ("UPDATE_WITHOUT_WHERE", "UPDATE users SET nick = 'Zoë 🚀'"),
        ("DELETE_WITHOUT_WHERE", "DELETE FROM users"),
    ]


def test_long_statement_is_truncated() -> None:
    sql = "UPDATE users SET bio = '" + "é" * 500 + "';"
    statement = only(sql, "UPDATE_WITHOUT_WHERE").statement
    assert len(statement) == MAX_STATEMENT_CHARS
    assert statement.endswith("…")
    assert statement.startswith("UPDATE users SET bio = 'ééé")


def test_unparsable_statement_is_a_risk_and_the_walk_goes_on() -> None:
    sql = (
        "-- ünïcødé 🚀\nCREATE TABLE ok (id int);\nALTER TABLE users ADD COLUMN x intt NOT NUL;"
        "\nDROP TABLE users;"
    )
    [risk, *rest] = analyze(sql, transactional=True)
    assert risk.code == "PARSE_UNSUPPORTED"
    assert 'syntax error at or near "NUL"' in risk.explanation
    assert "at line 3, column 41:" in risk.explanation  # the token PostgreSQL names too
    assert risk.statement == "ALTER TABLE users ADD COLUMN x intt NOT NUL;"
    assert "DROP_TABLE" in [r.code for r in rest]


def test_empty_or_comment_only_script() -> None:
    assert analyze("", transactional=False) == []
    assert analyze("-- nothing to do\n/* really */", transactional=True) == []


def test_to_dict() -> None:
    with_table = Risk("TRUNCATE", "TRUNCATE users", "why", "users")
    assert with_table.to_dict() == {
        "code": "TRUNCATE",
        "statement": "TRUNCATE users",
        "explanation": "why",
        "table": "users",
    }
    assert "table" not in Risk("PARSE_UNSUPPORTED", "", "why").to_dict()


# --- pglast, a core dependency --------------------------------------------------------------


def test_pglast_is_a_core_dependency_with_no_extra() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("pglast") for dep in project["dependencies"])
    assert "risks" not in project.get("optional-dependencies", {})


def test_a_broken_install_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pglast", None)
    monkeypatch.setitem(sys.modules, "pglast.parser", None)
    [risk] = analyze("DROP TABLE users;", transactional=True)
    assert risk.code == "ANALYZER_UNAVAILABLE"
    assert "reinstall" in risk.explanation


def test_importing_the_module_does_not_import_pglast() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import patcher.sql.risks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "patcher.sql.risks" in result.stderr
    assert "pglast" not in result.stderr


# --- calls that break the run's guarantees (SPEC 7 item 3) -----------------------------------


@pytest.mark.parametrize(
    ("sql", "transactional"),
    [
        ("SELECT pg_advisory_unlock_all();", True),
        ("SELECT pg_advisory_unlock(42), now();", True),
        ("DISCARD ALL;", False),
    ],
)
def test_releasing_the_run_lock_is_a_risk(sql: str, transactional: bool) -> None:
    risks = analyze(sql, transactional=transactional)
    assert [r.code for r in risks] == ["RELEASES_RUN_LOCK"]
    assert "LockLost" in risks[0].explanation


@pytest.mark.parametrize("sql", ["DISCARD PLANS;", "SELECT pg_advisory_lock(42);", "SELECT 1;"])
def test_near_misses_do_not_release_the_run_lock(sql: str) -> None:
    assert analyze(sql, transactional=False) == []

"""A test per rule: a statement that fires it, a near miss that does not, and its suppression.

Lint's view (no database, design rules on): every object the script does not create exists.
Each case's SQL has one statement per line, so a suppression goes on the line before the one
that fired.
"""

from __future__ import annotations

import pytest

from patcher.lint import LintReport, lint_script
from patcher.sql.risks.codes import RULE_INFO

NOTX = "-- patcher:no-transaction\n"
LONG = "a" * 64

# (code, fires, near miss)
CASES: list[tuple[str, str, str]] = [
    ("DROP_TABLE", "DROP TABLE users;", "CREATE TABLE t (a bigint);\nDROP TABLE t;"),
    (
        "DROP_COLUMN",
        "ALTER TABLE users DROP COLUMN a;",
        "CREATE TABLE t (a bigint, b bigint);\nALTER TABLE t DROP COLUMN b;",
    ),
    ("TRUNCATE", "TRUNCATE users;", "CREATE TABLE t (a bigint);\nTRUNCATE t;"),
    ("DELETE_WITHOUT_WHERE", "DELETE FROM users;", "DELETE FROM users WHERE id = 1;"),
    ("UPDATE_WITHOUT_WHERE", "UPDATE users SET a = 1;", "UPDATE users SET a = 1 WHERE id = 2;"),
    ("DROP_OBJECT", "DROP VIEW report;", "CREATE VIEW report AS SELECT 1;\nDROP VIEW report;"),
    (
        "DROP_OBJECT",
        "DROP MATERIALIZED VIEW m;",
        "CREATE MATERIALIZED VIEW m AS SELECT 1;\nDROP MATERIALIZED VIEW m;",
    ),
    (
        "DROP_OBJECT",
        "DROP FUNCTION f(int);",
        "CREATE FUNCTION f(int) RETURNS int LANGUAGE sql AS 'SELECT 1';\nDROP FUNCTION f(int);",
    ),
    ("DROP_OBJECT", "DROP TYPE mood;", "CREATE TYPE mood AS ENUM ('ok');\nDROP TYPE mood;"),
    ("DROP_OBJECT", "DROP SEQUENCE s;", "CREATE SEQUENCE s;\nDROP SEQUENCE s;"),
    ("DROP_OBJECT", "DROP SCHEMA archive;", "CREATE SCHEMA archive;\nDROP SCHEMA archive;"),
    ("DROP_OBJECT", "DROP EXTENSION hstore;", "CREATE EXTENSION hstore;\nDROP EXTENSION hstore;"),
    ("DROP_OBJECT", "DROP DOMAIN email;", "CREATE DOMAIN email text;\nDROP DOMAIN email;"),
    (
        "DROP_OBJECT",
        "DROP TRIGGER audit ON users;",
        "CREATE TRIGGER audit AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();\n"
        "DROP TRIGGER audit ON users;",
    ),
    (
        "DROP_OBJECT",
        "DROP POLICY own ON users;",
        "CREATE POLICY own ON users USING (true);\nDROP POLICY own ON users;",
    ),
    ("DROP_CASCADE", "DROP VIEW report CASCADE;", "DROP VIEW report;"),
    ("DROP_CASCADE", "TRUNCATE users CASCADE;", "TRUNCATE users;"),
    ("DROP_DATABASE", NOTX + "DROP DATABASE old;", NOTX + "DROP SCHEMA old;"),
    (
        "DROP_CONSTRAINT",
        "ALTER TABLE users DROP CONSTRAINT users_age;",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE users DROP CONSTRAINT c;",
    ),
    (
        "DROP_NOT_NULL",
        "ALTER TABLE users ALTER a DROP NOT NULL;",
        "CREATE TABLE t (a bigint NOT NULL);\nALTER TABLE t ALTER a DROP NOT NULL;",
    ),
    (
        "DROP_DEFAULT",
        "ALTER TABLE users ALTER a DROP DEFAULT;",
        "ALTER TABLE users ADD COLUMN b bigint NOT NULL DEFAULT 0;\n"
        "ALTER TABLE users ALTER b DROP DEFAULT;",
    ),
    (
        "ACCESS_EXCLUSIVE_LOCK",
        "ALTER TABLE users ADD COLUMN a text;",
        "CREATE TABLE t (a bigint);\nALTER TABLE t ADD COLUMN b text;",
    ),
    ("ACCESS_EXCLUSIVE_LOCK", "DROP TRIGGER audit ON users;", "DROP INDEX CONCURRENTLY i;"),
    ("ACCESS_EXCLUSIVE_LOCK", "DROP MATERIALIZED VIEW m;", "DROP VIEW v;"),
    ("ACCESS_EXCLUSIVE_LOCK", "ALTER VIEW v RENAME TO w;", "ALTER INDEX i RENAME TO j;"),
    (
        "TABLE_REWRITE",
        "ALTER TABLE users ADD COLUMN u uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE users ADD COLUMN u text DEFAULT 'x';",
    ),
    (
        "TABLE_REWRITE",
        "ALTER TABLE users ALTER a TYPE bigint;",
        "ALTER TABLE users ALTER a SET DEFAULT 1;",
    ),
    ("TABLE_REWRITE", "VACUUM FULL users;", "VACUUM users;"),
    ("TABLE_REWRITE", "CLUSTER users USING users_pkey;", "ANALYZE users;"),
    (
        "INDEX_NOT_CONCURRENT",
        "CREATE INDEX i ON users (a);",
        "CREATE TABLE t (a bigint);\nCREATE INDEX i ON t (a);",
    ),
    (
        "INDEX_NOT_CONCURRENT",
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);",
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email;",
    ),
    (
        "DROP_INDEX_NOT_CONCURRENT",
        "DROP INDEX users_a;",
        "CREATE TABLE t (a bigint);\nCREATE INDEX i ON t (a);\nDROP INDEX i;",
    ),
    (
        "REINDEX_NOT_CONCURRENT",
        "REINDEX TABLE users;",
        NOTX + "REINDEX TABLE CONCURRENTLY users;",
    ),
    (
        "ADD_FOREIGN_KEY_VALIDATING",
        "ALTER TABLE users ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES orgs (id);",
        "ALTER TABLE users ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES orgs (id) NOT VALID;",
    ),
    (
        "FOREIGN_KEY_LOCKS_REFERENCED",
        "ALTER TABLE users ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES orgs (id);",
        "CREATE TABLE orgs (id bigint PRIMARY KEY);\n"
        "ALTER TABLE users ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES orgs (id);",
    ),
    (
        "FOREIGN_KEY_LOCKS_REFERENCED",
        "CREATE TABLE t (id bigint, o bigint REFERENCES orgs (id));",
        "CREATE TABLE orgs (id bigint PRIMARY KEY);\n"
        "CREATE TABLE t (id bigint, o bigint REFERENCES orgs (id));",
    ),
    (
        "CREATE_TRIGGER_LOCKS_TABLE",
        "CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();",
        "CREATE TABLE t (id bigint);\n"
        "CREATE TRIGGER t BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();",
    ),
    (
        "ADD_CHECK_VALIDATING",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0);",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
    ),
    (
        "DOMAIN_CONSTRAINT_VALIDATING",
        "ALTER DOMAIN email ADD CONSTRAINT c CHECK (VALUE <> '');",
        "ALTER DOMAIN email ADD CONSTRAINT c CHECK (VALUE <> '') NOT VALID;",
    ),
    (
        "NOT_NULL_WITHOUT_DEFAULT",
        "ALTER TABLE users ADD COLUMN a bigint NOT NULL;",
        "ALTER TABLE users ADD COLUMN a bigint NOT NULL DEFAULT 0;",
    ),
    (
        "SET_NOT_NULL_SCANS",
        "ALTER TABLE users ALTER a SET NOT NULL;",
        "CREATE TABLE t (a bigint);\nALTER TABLE t ALTER a SET NOT NULL;",
    ),
    (
        "DETACH_PARTITION_NOT_CONCURRENT",
        "ALTER TABLE events DETACH PARTITION events_2020;",
        NOTX + "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;",
    ),
    (
        "RENAME",
        "ALTER TABLE users RENAME TO members;",
        "CREATE TABLE t (a bigint);\nALTER TABLE t RENAME TO u;",
    ),
    ("RENAME", "ALTER TABLE users RENAME a TO b;", "ALTER TABLE users ADD COLUMN c text;"),
    (
        "RENAME",
        "ALTER INDEX users_a RENAME TO users_b;",
        "CREATE TABLE t (a bigint);\nCREATE INDEX t_a ON t (a);\nALTER INDEX t_a RENAME TO t_b;",
    ),
    (
        "RENAME",
        "ALTER TABLE users RENAME CONSTRAINT c TO d;",
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE users RENAME CONSTRAINT c TO d;",
    ),
    (
        "RENAME",
        "ALTER SEQUENCE s RENAME TO t;",
        "CREATE SEQUENCE s;\nALTER SEQUENCE s RENAME TO t;",
    ),
    (
        "RENAME",
        "ALTER TRIGGER audit ON users RENAME TO log;",
        "CREATE TRIGGER audit AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();\n"
        "ALTER TRIGGER audit ON users RENAME TO log;",
    ),
    (
        "RENAME",
        "ALTER TYPE mood RENAME TO feeling;",
        "CREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood RENAME TO feeling;",
    ),
    (
        "RENAME",
        "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';",
        "ALTER TYPE mood ADD VALUE 'x' AFTER 'ok';",
    ),
    (
        "RENAME",
        "ALTER VIEW v RENAME TO w;",
        "CREATE VIEW v AS SELECT 1;\nALTER VIEW v RENAME TO w;",
    ),
    (
        "RENAME",
        "ALTER SCHEMA app RENAME TO core;",
        "CREATE SCHEMA app;\nALTER SCHEMA app RENAME TO core;",
    ),
    (
        "RENAME",
        "ALTER FUNCTION f(int) RENAME TO g;",
        "CREATE FUNCTION f(int) RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
        "ALTER FUNCTION f(int) RENAME TO g;",
    ),
    (
        "SET_SCHEMA",
        "ALTER TABLE users SET SCHEMA archive;",
        "CREATE TABLE t (a bigint);\nALTER TABLE t SET SCHEMA archive;",
    ),
    (
        "SET_SCHEMA",
        "ALTER TYPE mood SET SCHEMA archive;",
        "CREATE TYPE mood AS ENUM ('a');\nALTER TYPE mood SET SCHEMA archive;",
    ),
    (
        "ACCESS_EXCLUSIVE_LOCK",
        "ALTER TABLE users SET SCHEMA archive;",
        "ALTER TYPE mood SET SCHEMA archive;",
    ),
    (
        "ENUM_VALUE_ORDER",
        "ALTER TYPE mood ADD VALUE 'meh';",
        "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';",
    ),
    (
        "ENUM_VALUE_USED_IN_TRANSACTION",
        "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';\nUPDATE users SET m = 'meh' WHERE m = 'bad';",
        "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';\nUPDATE users SET m = 'ok' WHERE m = 'bad';",
    ),
    (
        "ENUM_VALUE_USED_IN_TRANSACTION",
        "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';\nINSERT INTO users (m) VALUES ('meh');",
        "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';\nINSERT INTO users (m) VALUES ('ok');",
    ),
    ("RELEASES_RUN_LOCK", "SELECT pg_advisory_unlock_all();", "SELECT pg_advisory_lock(1);"),
    ("RELEASES_RUN_LOCK", NOTX + "DISCARD ALL;", NOTX + "DISCARD PLANS;"),
    (
        "SESSION_STATE",
        "SET ROLE admin;\nCREATE TABLE t (a bigint);",
        "SET ROLE admin;\nCREATE TABLE t (a bigint);\nRESET ROLE;",
    ),
    ("SESSION_STATE", "SET search_path = app;", "SET LOCAL search_path = app;"),
    (
        "SESSION_STATE",
        "SELECT set_config('search_path', 'app', false);",
        "SELECT set_config('search_path', 'app', true);",
    ),
    (
        "TRIGGER_DISABLED",
        "ALTER TABLE users DISABLE TRIGGER audit;\nUPDATE users SET a = 1 WHERE id = 2;",
        "ALTER TABLE users DISABLE TRIGGER audit;\nUPDATE users SET a = 1 WHERE id = 2;\n"
        "ALTER TABLE users ENABLE TRIGGER ALL;",
    ),
    (
        "TRIGGER_DISABLED",
        "ALTER TABLE users DISABLE TRIGGER ALL;\nALTER TABLE users ENABLE TRIGGER audit;",
        "CREATE TABLE t (a bigint);\nALTER TABLE t DISABLE TRIGGER ALL;",
    ),
    ("LOCK_TIMEOUT_DISABLED", "SET LOCAL lock_timeout = 0;", "SET LOCAL lock_timeout = '30s';"),
    ("LOCK_TIMEOUT_DISABLED", "SET statement_timeout TO '0';", "SET statement_timeout TO '5min';"),
    (
        "TRANSACTION_CONTROL",
        "BEGIN;\nCREATE TABLE t (a bigint);\nCOMMIT;",
        "CREATE TABLE t (a bigint);",
    ),
    (
        "CANNOT_RUN_IN_TRANSACTION",
        "CREATE INDEX CONCURRENTLY i ON users (a);",
        NOTX + "CREATE INDEX CONCURRENTLY i ON users (a);",
    ),
    (
        "MULTI_STATEMENT_NO_TRANSACTION",
        NOTX
        + "CREATE INDEX CONCURRENTLY a ON users (a);\nCREATE INDEX CONCURRENTLY b ON users (b);",
        NOTX + "CREATE INDEX CONCURRENTLY a ON users (a);",
    ),
    (
        "PREFER_BIGINT",
        "CREATE TABLE t (id int PRIMARY KEY);",
        "CREATE TABLE t (id bigint PRIMARY KEY);",
    ),
    (
        "PREFER_BIGINT",
        "ALTER TABLE users ADD COLUMN n smallint;",
        "ALTER TABLE users ADD COLUMN n bigint;",
    ),
    (
        "PREFER_IDENTITY",
        "CREATE TABLE t (id bigserial);",
        "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY);",
    ),
    ("PREFER_TEXT", "CREATE TABLE t (a varchar(20));", "CREATE TABLE t (a varchar);"),
    ("PREFER_TEXT", "CREATE TABLE t (a char(2));", "CREATE TABLE t (a text);"),
    ("PREFER_TIMESTAMPTZ", "CREATE TABLE t (at timestamp);", "CREATE TABLE t (at timestamptz);"),
    (
        "IDENTIFIER_TOO_LONG",
        f"CREATE TABLE {LONG} (id bigint);",
        f"CREATE TABLE {LONG[1:]} (id bigint);",
    ),
    (
        "PARSE_UNSUPPORTED",
        "CREATE TABLE t (a bigint) WITH SHINY NEW SYNTAX;",
        "CREATE TABLE t (a bigint);",
    ),
]
NOT_A_STATEMENT_RULE = {"UNUSED_SUPPRESSION", "ANALYZER_UNAVAILABLE"}  # test_lint_cli, test_risks


def lint(sql: str) -> LintReport:
    report = LintReport()
    lint_script("x.up.sql", sql.encode(), report, set())
    return report


def found(sql: str) -> list[str]:
    return [f.code for f in lint(sql).findings]


def test_every_rule_has_a_case() -> None:
    assert {code for code, _, _ in CASES} == set(RULE_INFO) - NOT_A_STATEMENT_RULE


@pytest.mark.parametrize(
    ("code", "fires", "near"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fires_and_the_near_miss_does_not(code: str, fires: str, near: str) -> None:
    assert code in found(fires)
    assert code not in found(near)


@pytest.mark.parametrize(
    ("code", "fires", "near"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_is_suppressed_on_the_line_before(code: str, fires: str, near: str) -> None:
    lines = fires.splitlines()
    hit = next(f for f in lint(fires).findings if f.code == code)
    lines.insert(hit.line - 1, f"-- patcher:ignore {code} reviewed: fine here")
    report = lint("\n".join(lines))
    assert code not in [f.code for f in report.findings]
    assert "UNUSED_SUPPRESSION" not in [f.code for f in report.findings]
    assert code in [f.code for f in report.suppressed]


def test_design_rules_see_a_type_change() -> None:
    report = lint("ALTER TABLE users ALTER COLUMN name TYPE varchar(200);")
    [prefer] = [f for f in report.findings if f.code == "PREFER_TEXT"]
    assert prefer.message == "column name of table users becomes varchar(n): use text"

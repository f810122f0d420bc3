"""Dry runs, status and verify: validated like a real run, but they change nothing."""

from __future__ import annotations

import pytest

from patcher.core.errors import InvalidRequest
from tests.unit.engine.kit import NO_TX, Env, error_type, pending, states

WRITES = ("try_lock", "ensure_tables", "run_transactional", "run_statements", "record")


def writes(env: Env) -> list[str]:
    return [m for m in env.db.methods_called() if m in WRITES]


def test_a_dry_run_plans_previews_and_creates_nothing(env: Env) -> None:
    env.tables(1, 2)
    out = env.run(dry_run=True)
    assert out.status == "planned"
    assert states(out) == [(1, "up", "planned"), (2, "up", "planned")]
    assert out.entries[1].sql == "CREATE TABLE t2 (id int);\n"
    assert env.db.table_names() == set() and writes(env) == []


def test_a_dry_run_reports_risks_against_existing_tables(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(2, "idx", "CREATE INDEX i ON t1 (id);\n")
    before = writes(env)
    out = env.run(dry_run=True)
    assert [r["code"] for r in out.entries[0].risks or []] == ["INDEX_NOT_CONCURRENT"]
    assert writes(env) == before and env.db.index_names() == {
        "schema_migrations_pkey",
        "schema_migrations_log_pkey",
    }


def test_a_rollback_dry_run_changes_nothing(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    before = env.called("run_transactional")
    out = env.run("rollback", dry_run=True)
    assert states(out) == [(2, "down", "planned")]
    assert out.entries[0].sql == "DROP TABLE t2;\n"
    assert env.versions() == [1, 2] and env.called("run_transactional") == before


def test_a_dry_run_is_validated_like_a_real_run(env: Env) -> None:
    env.tables(1, 3)
    env.run()
    env.tables(2)
    out = env.run(dry_run=True)
    assert error_type(out) == "OutOfOrder"


def test_status_lists_applied_rows_and_pending(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run(target=2)
    out = env.run("status")
    assert out.status == "planned"
    assert states(out) == [(1, "up", "applied"), (2, "up", "applied")]
    assert out.entries[0].applied_at is not None
    assert pending(out) == [3] and out.current_version == 2


def test_status_on_a_fresh_database_creates_nothing(env: Env) -> None:
    env.tables(1)
    out = env.run("status")
    assert (out.status, out.entries, pending(out)) == ("planned", [], [1])
    assert env.db.table_names() == set() and writes(env) == []


def test_status_up_to_date(env: Env) -> None:
    env.tables(1)
    env.run()
    assert env.run("status").status == "up_to_date"


def test_status_lists_the_history_even_when_it_refuses_the_state(env: Env) -> None:
    env.source.pair(1, "nt", NO_TX + "SELECT 1/0;\n")
    env.run()
    out = env.run("status")
    assert error_type(out) == "DirtyDatabase"
    assert [e.version for e in out.entries] == [1]


def test_verify_runs_transactional_scripts_and_annotates_them(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(
        2, "alter", "INSERT INTO t1 VALUES (1);\nALTER TABLE t1 ALTER COLUMN id TYPE bigint;"
    )
    out = env.run(dry_run=True, verify=True)
    assert out.status == "planned" and out.error is None
    entry = out.entries[0]
    assert entry.verified is True and entry.duration_ms is not None
    assert {"relation": "public.t1", "mode": "AccessExclusiveLock"} in (entry.locks or [])
    assert entry.rewrites == ["public.t1"]
    assert env.versions() == [1] and env.db.rows("t1") == []
    assert env.db.locks == {}


def test_verify_reports_a_failing_script_as_failed(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "bad", "SELECT 1;\nSELECT 1/0;\n")
    env.tables(3)
    out = env.run(dry_run=True, verify=True)
    assert (out.status, error_type(out)) == ("failed", "MigrationFailed")
    assert out.error is not None and out.error.message.startswith("verification (rolled back")
    assert out.error.details["line"] == 2
    assert states(out)[1] == (2, "up", "failed")
    assert out.entries[2].verified is False
    assert "earlier script stopped" in (out.entries[2].verify_note or "")
    assert env.user_tables() == set()


def test_verify_reports_a_lock_conflict_as_a_warning(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(2, "alter", "SELECT 1;\nALTER TABLE t1 ADD COLUMN c text;\n")
    env.db.fail_statement("ALTER TABLE")
    out = env.run(dry_run=True, verify=True)
    assert out.status == "planned"
    assert out.entries[0].lock_conflict == {"line": 2, "column": 1}
    assert any("could not get a lock" in w for w in out.warnings)


def test_verify_does_not_execute_no_transaction_scripts(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "nt", NO_TX + "CREATE INDEX CONCURRENTLY i ON t1 (id);\n")
    out = env.run(dry_run=True, verify=True)
    entry = out.entries[1]
    assert entry.verified is False and "not executed" in (entry.verify_note or "")
    assert entry.statements == ["CREATE INDEX CONCURRENTLY i ON t1 (id)"]
    assert out.entries[0].verified is True
    assert env.db.index_names() == set()


def test_verify_without_dry_run_is_refused(env: Env) -> None:
    env.tables(1)
    with pytest.raises(InvalidRequest, match="verify needs dry_run"):
        env.run(verify=True)  # refused where the Request is built
    assert env.db.sessions == []

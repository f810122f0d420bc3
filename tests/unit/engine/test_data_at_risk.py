"""Rollback previews annotate each down step with data_at_risk (engine policy, on the fake)."""

from __future__ import annotations

from tests.unit.engine.kit import NO_TX, Env


def _fill(env: Env, table: str, n: int) -> None:
    env.db.state.tables[table].rows.extend({"id": i} for i in range(n))


def test_a_rollback_preview_counts_what_each_down_script_drops(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    _fill(env, "t1", 3)
    _fill(env, "t2", 5)
    out = env.run("rollback", dry_run=True, steps=2)
    assert [(e.version, e.data_at_risk) for e in out.entries] == [
        (2, [{"relation": "public.t2", "column": None, "rows": 5,
              "written_since_applied": True, "change": "drop", "estimated": False}]),
        (1, [{"relation": "public.t1", "column": None, "rows": 3,
              "written_since_applied": True, "change": "drop", "estimated": False}]),
    ]  # fmt: skip
    assert all(e.applied_at for e in out.entries)
    assert env.called("estimate_at_risk") == 2 and env.called("measure_at_risk") == 0
    assert env.versions() == [1, 2] and env.db.rows("t2") == [{"id": i} for i in range(5)]


def test_a_table_the_version_did_not_create_is_not_written_since(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "purge", "SELECT 1;\n", "DELETE FROM t1;\n")
    env.run()
    _fill(env, "t1", 4)
    [entry] = env.run("rollback", dry_run=True).entries
    assert entry.data_at_risk == [{"relation": "public.t1", "column": None, "rows": 4,
                                   "written_since_applied": False, "change": "delete",
                                   "estimated": False}]  # fmt: skip


def test_verify_measures_the_transactional_scripts_and_estimates_from_a_no_transaction_one(
    env: Env,
) -> None:
    env.tables(1, 2)
    env.source.pair(3, "idx", "SELECT 1;\n", NO_TX + "DROP TABLE t1;\n")
    env.run()
    _fill(env, "t2", 2)
    out = env.run("rollback", dry_run=True, verify=True, steps=2)
    three, two = out.entries
    assert env.called("measure_at_risk") == 0  # the first down script has no transaction
    assert [i["relation"] for i in three.data_at_risk or []] == ["public.t1"]
    assert [i["rows"] for i in two.data_at_risk or []] == [2]
    out = env.run("rollback", dry_run=True, verify=True, target=1)
    assert env.called("measure_at_risk") == 0 and out.status == "planned"


def test_verify_of_transactional_down_scripts_measures_them_in_order(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    _fill(env, "t2", 7)
    out = env.run("rollback", dry_run=True, verify=True)
    assert env.called("measure_at_risk") == 1
    assert out.entries[0].data_at_risk == [{"relation": "public.t2", "column": None, "rows": 7,
                                            "written_since_applied": True, "change": "drop",
                                            "estimated": False}]  # fmt: skip
    assert env.db.rows("t2") == [{"id": i} for i in range(7)]


def test_migrate_previews_carry_no_data_at_risk(env: Env) -> None:
    env.tables(1)
    out = env.run(dry_run=True)
    assert out.entries[0].data_at_risk is None
    assert env.called("estimate_at_risk") == 0

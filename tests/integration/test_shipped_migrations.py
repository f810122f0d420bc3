"""StackFlow's own migrations: they round-trip, and what they build works."""

from __future__ import annotations

from tests.fixtures.engine import REPO, make_runner, query, schema_snapshot


def test_all_up_all_down_all_up_gives_the_same_schema(pg_dsn: str) -> None:
    run = make_runner(pg_dsn, REPO / "migrations")
    first = run("migrate")
    assert first["status"] == "applied", first["error"]
    versions = [m["version"] for m in first["migrations"]]
    assert len(versions) >= 8 and versions == sorted(versions)
    schema = schema_snapshot(pg_dsn)
    assert {"users", "questions", "answers", "comments", "votes", "tags", "question_tags"} <= {
        row[0] for row in schema["columns"]
    }

    down = run("rollback", target=0)
    assert down["status"] == "reverted", down["error"]
    assert [m["version"] for m in down["migrations"]] == versions[::-1]
    empty = schema_snapshot(pg_dsn)
    leftovers = {k: [r for r in v if "schema_migrations" not in repr(r)] for k, v in empty.items()}
    assert all(not rows for rows in leftovers.values()), leftovers

    again = run("migrate")
    assert again["status"] == "applied", again["error"]
    assert schema_snapshot(pg_dsn) == schema


def test_the_counters_are_maintained_by_triggers_and_backfilled(pg_dsn: str) -> None:
    run = make_runner(pg_dsn, REPO / "migrations")
    assert run("migrate", target=6)["ok"]
    query(pg_dsn, """
        INSERT INTO users (username, email, display_name) VALUES ('ada', 'ada@x.io', 'Ada'),
                                                                 ('bob', 'bob@x.io', 'Bob');
        INSERT INTO questions (author_id, title, body)
             VALUES (1, 'How do I migrate safely?', repeat('Explain me please. ', 3));
        INSERT INTO answers (question_id, author_id, body)
             VALUES (1, 2, repeat('Use a transaction. ', 3)), (1, 1, repeat('Take a lock! ', 3));
        INSERT INTO votes (user_id, question_id, value) VALUES (1, 1, 1), (2, 1, 1);
    """)  # fmt: skip
    assert run("migrate")["ok"]  # 0007 and 0008 backfill from the rows above
    assert query(pg_dsn, "SELECT answer_count, score FROM questions") == [(2, 2)]
    query(pg_dsn, "DELETE FROM answers WHERE author_id = 1; "
                  "UPDATE votes SET value = -1 WHERE user_id = 2")  # fmt: skip
    assert query(pg_dsn, "SELECT answer_count, score FROM questions") == [(1, 0)]

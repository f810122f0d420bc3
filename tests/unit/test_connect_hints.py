"""A connection error's hint is about the connection only, picked by what failed (issue 28
item 5), in the words of the adapter that runs (core/terms.py)."""

from __future__ import annotations

import re

import pytest

from patcher.core.terms import CLI, speaking
from patcher.db.connect_hints import connect_hint

NOT_CONNECTION = re.compile(r"lock|migration|repair|dirty", re.IGNORECASE)

REASONS = {
    'connection to server at "db", port 5432 failed: Connection refused': "no server answered",
    "failed to resolve host 'db.invalid': [Errno -2] Name or service not known": (
        "no server answered"
    ),
    'connection to server at "db" failed: timeout expired': "no server answered",
    'FATAL:  password authentication failed for user "app"': "refused the login",
    'FATAL:  database "nope" does not exist': "refused the login",
    "FATAL:  sorry, too many clients already": "takes no connection now",
    "FATAL:  the database system is starting up": "takes no connection now",
    'FATAL:  invalid value for parameter "lock_timeout": "10 parsecs"': (
        "refused a session setting: check PATCHER_LOCK_TIMEOUT"
    ),
    "server closed the connection unexpectedly": "check the host, port, user, password",
}


@pytest.mark.parametrize("reason", REASONS)
def test_each_failure_gets_its_connection_hint(reason: str) -> None:
    hint = connect_hint(reason)
    assert REASONS[reason] in hint
    if "invalid value for parameter" not in reason:
        assert not NOT_CONNECTION.search(hint) and "TIMEOUT" not in hint, hint
    if "takes no connection" in hint:  # busy: nothing in the URL to change
        return
    assert "PATCHER_DB_SECRET_ARN" in hint  # the Lambda's: where its database comes from
    with speaking(CLI):
        assert "(--database-url, or PATCHER_DATABASE_URL)" in connect_hint(reason)

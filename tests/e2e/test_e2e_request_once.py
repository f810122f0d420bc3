"""A request is validated once, where it is built, and the engine trusts it (issue 27, item 2).

The count wraps ``validate_request`` wherever a patcher module holds it (so it counts on the
code before the change too, when the payload parser, the runner and the planner each imported
and called it), then runs the real handler on a migrate payload against real PostgreSQL and
moto S3. An invalid request is refused with the same ``InvalidRequest`` whichever way it is
built: a Request, the Lambda payload, the CLI, the app's plain functions.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import patcher.core.models
from patcher.app.commands import Invocation, migrate
from patcher.app.config import Config
from patcher.cli.main import main
from patcher.core.errors import InvalidRequest
from patcher.core.models import Request
from tests.e2e.e2ekit import LambdaEnv
from tests.fixtures.engine import history

VERIFY_ALONE = "verify needs dry_run: true and the action migrate or rollback"


def count_validations(monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """Every call of ``validate_request`` from now on, by whichever module holds it."""
    real = patcher.core.models.validate_request
    calls: list[Request] = []

    def counting(request: Request) -> None:
        calls.append(request)
        real(request)

    for module in [m for name, m in sys.modules.items() if name.startswith("patcher")]:
        if getattr(module, "validate_request", None) is real:
            monkeypatch.setattr(module, "validate_request", counting)
    return calls


def test_a_lambda_migrate_validates_its_request_once(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    lambda_env.put("0002_b.up.sql", "CREATE TABLE b (id int);\n")
    importlib.import_module("patcher.aws.handler")  # loaded first: every holder is patched
    calls = count_validations(monkeypatch)
    result = lambda_env.invoke({"action": "migrate"})
    assert (result["status"], result["error"]) == ("applied", None)
    assert history(lambda_env.dsn) == [(1, False), (2, False)]
    assert [c.action for c in calls] == ["migrate"], f"validated {len(calls)} times"


def test_an_invalid_request_is_refused_alike_however_it_is_built(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as built:
        Request("migrate", verify=True)
    assert str(built.value) == VERIFY_ALONE

    from patcher.aws.handler import lambda_handler
    from patcher.dev.devrun import LambdaContext

    payload = lambda_handler({"action": "migrate", "verify": True}, LambdaContext())
    assert (payload["status"], payload["error"]["type"]) == ("invalid", "InvalidRequest")
    assert payload["error"]["message"] == VERIFY_ALONE

    def never() -> str:
        raise AssertionError("an invalid request opened a connection")

    invocation = Invocation(request_id="t", conninfo=never)
    plain = migrate(Config(source=str(tmp_path)), verify=True, invocation=invocation)
    assert (plain.ok, plain.status, plain.action) == (False, "invalid", "migrate")
    assert isinstance(plain.error, InvalidRequest) and str(plain.error) == VERIFY_ALONE
    assert plain.to_dict()["error"] == payload["error"]

    out = io.StringIO()
    nowhere = "postgresql://nobody@nowhere.invalid/db"
    with redirect_stdout(out):
        code = main(
            ["migrate", "--verify", "--json", f"--source={tmp_path}", f"--database-url={nowhere}"]
        )
    assert code == 2
    cli = json.loads(out.getvalue())["error"]  # the same refusal, in the CLI's words (issue 28)
    assert cli == {
        "type": "InvalidRequest",
        "message": "--verify needs --dry-run and the command migrate or rollback",
    }

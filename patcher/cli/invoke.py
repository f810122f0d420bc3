"""``patcher invoke``: call the deployed function, print its result, fail the shell on failure.

Made for pipelines and on-call: exit 0 only when the function ran without a FunctionError and
returned ``ok: true``; with ``--until-done`` it re-invokes while the status is ``partial``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from patcher.app.environment import invoked_by_default
from patcher.cli.output import output_format, write_result


def build_payload(args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {"action": args.action}
    if args.dry_run:
        payload["dry_run"] = True
    if args.verify:
        payload["verify"] = True
    if args.target is not None:
        payload["target"] = args.target
    if args.steps is not None:
        payload["steps"] = args.steps
    return payload


def invoke_once(client: Any, args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    """One synchronous invocation; returns the decoded payload plus the FunctionError, if any."""
    context = {"custom": {"invoked_by": f"patcher invoke by {invoked_by_default()}"}}
    kwargs: dict[str, Any] = {
        "FunctionName": args.function_name,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(payload).encode(),
        "ClientContext": base64.b64encode(json.dumps(context).encode()).decode(),
    }
    if args.qualifier:
        kwargs["Qualifier"] = args.qualifier
    response = client.invoke(**kwargs)
    body = response["Payload"].read().decode("utf-8", "replace")
    try:
        result: Any = json.loads(body)
    except ValueError:
        result = {"ok": False, "raw": body}
    if not isinstance(result, dict):
        result = {"ok": False, "raw": result}
    if response.get("FunctionError"):
        return {"ok": False, "function_error": response["FunctionError"], "payload": result}
    return dict(result)


def invoke_command(args: argparse.Namespace, client: Any = None) -> int:
    """Invoke (again while partial with ``--until-done``); 0 only for a clean ``ok: true``."""
    if client is None:
        import boto3
        from botocore.config import Config

        # One attempt, and a read timeout beyond Lambda's 15 minutes: a retried or timed-out
        # synchronous invoke would run the function a second time.
        client = boto3.client(
            "lambda", config=Config(read_timeout=910, retries={"total_max_attempts": 1})
        )
    payload = build_payload(args)
    result: dict[str, Any] = {}
    for _ in range(max(1, args.max_invocations)):
        result = invoke_once(client, args, payload)
        _print(result, args)
        if not (args.until_done and result.get("status") == "partial"):
            break
    ok = bool(result.get("ok")) and "function_error" not in result
    if not ok:
        print("patcher invoke: the function reported a failure (see above)", file=sys.stderr)
    elif result.get("status") == "partial":
        print(
            f"patcher invoke: stopped before the Lambda deadline with "
            f"{len(result.get('pending') or [])} pending; invoke again (or use --until-done)",
            file=sys.stderr,
        )
        if args.until_done:  # gave up after --max-invocations: the job is not done
            return 1
    return 0 if ok else 1


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    fmt = output_format(args)
    if fmt == "json" or "status" not in result:
        print(json.dumps(result, indent=2))
        return
    write_result(result, fmt)

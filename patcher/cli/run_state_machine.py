"""``patcher run-state-machine``: start the orchestrator (SPEC section 8), follow it, report.

For pipelines and on-call: builds the execution input from the flags, starts an execution
(named, so that retries of this command never start two), and with ``--wait`` polls it to the
end, prints the last result (one database) or the fleet summary, and exits 0 only when the
execution SUCCEEDED. A failed execution prints its Error and Cause (for fleets: the summary).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

ACTIONS = ("migrate", "rollback", "status", "baseline", "repair")
POLL_SECONDS = 2.0


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "run-state-machine", help="start the orchestrator state machine (fleets, long runs)"
    )
    cmd.add_argument("action", choices=ACTIONS)
    cmd.add_argument("--state-machine-arn", required=True, help="the stack's StateMachineArn")
    cmd.add_argument("--databases", help="a fleet: a,b,c or '*' for every configured target")
    cmd.add_argument("--database", help="one target of PATCHER_TARGETS")
    cmd.add_argument("--canary", help="the fleet's first database (default: the first named)")
    cmd.add_argument("--max-concurrency", type=int)
    cmd.add_argument("--tolerated-failure-percentage", type=int)
    cmd.add_argument("--dry-run", action="store_true")
    cmd.add_argument("--verify", action="store_true")
    cmd.add_argument("--target", type=int)
    cmd.add_argument("--steps", type=int)
    cmd.add_argument(
        "--phase", choices=("expand", "contract"), help="migrate only: SPEC 11's release phase"
    )
    cmd.add_argument("--wait", action="store_true", help="follow it to the end; exit 1 unless ok")
    cmd.add_argument("--json", action="store_true", help="print the output as JSON")


def build_input(args: argparse.Namespace) -> dict[str, Any]:
    """The execution input: the payload plus the fleet keys, only those given."""
    given: dict[str, Any] = {"action": args.action}
    for key in ("dry_run", "verify"):
        if getattr(args, key):
            given[key] = True
    for key in ("target", "steps", "phase", "database", "canary", "max_concurrency"):
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    if args.tolerated_failure_percentage is not None:
        given["tolerated_failure_percentage"] = args.tolerated_failure_percentage
    if args.databases is not None:
        names = [n.strip() for n in args.databases.split(",") if n.strip()]
        given["databases"] = "*" if args.databases.strip() == "*" else names
    return given


def run_state_machine(args: argparse.Namespace, client: Any = None) -> int:
    if client is None:
        import boto3

        client = boto3.client("stepfunctions")
    name = f"patcher-{args.action}-{uuid.uuid4().hex[:12]}"
    started = client.start_execution(
        stateMachineArn=args.state_machine_arn, name=name, input=json.dumps(build_input(args))
    )
    arn = started["executionArn"]
    print(f"patcher run-state-machine: started {arn}", file=sys.stderr)
    if not args.wait:
        print(arn)
        return 0
    while True:
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(POLL_SECONDS)
    return report(described, args.json)


def report(described: dict[str, Any], as_json: bool) -> int:
    """Print how the execution ended; 0 only for SUCCEEDED."""
    status = described["status"]
    if status == "SUCCEEDED":
        output = json.loads(described.get("output") or "null")
        if as_json or not isinstance(output, dict) or "migrations" not in output:
            print(json.dumps(output, indent=2))
        else:
            from patcher.cli.report import render

            print(render(output))
        return 0
    cause = described.get("cause") or ""
    try:
        shown: Any = json.loads(cause)
    except ValueError:
        shown = cause
    print(json.dumps({"status": status, "error": described.get("error"), "cause": shown}, indent=2))
    print(f"patcher run-state-machine: the execution ended {status}", file=sys.stderr)
    return 1

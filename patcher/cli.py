"""The ``patcher`` command: the same engine and JSON result as the Lambda, from a terminal.

Exit status: 0 when the result is ``ok``, 1 when it is not, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from patcher.config import load_config
from patcher.core.errors import InvalidRequest, PatcherError
from patcher.core.models import Request
from patcher.report import render

ENGINE_ACTIONS = ("migrate", "rollback", "status", "baseline", "repair")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patcher", description="Apply or reverse numbered SQL migrations on PostgreSQL."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for action in ENGINE_ACTIONS:
        cmd = sub.add_parser(action, help=f"{action} (see README: Actions)")
        cmd.add_argument("--dry-run", action="store_true", help="plan and report, change nothing")
        cmd.add_argument(
            "--verify", action="store_true", help="with --dry-run: execute and roll back"
        )
        cmd.add_argument("--target", type=_version, help="version bound (see README)")
        cmd.add_argument("--steps", type=int, help="rollback: revert the N most recent")
        cmd.add_argument("--source", help="migrations directory or s3://bucket/prefix/")
        cmd.add_argument("--database-url", help="libpq URL (default: PATCHER_DATABASE_URL)")
        cmd.add_argument("--json", action="store_true", help="print the exact Lambda JSON result")
    new = sub.add_parser("new", help="write the next numbered up/down pair")
    new.add_argument("description", help="what the migration does, e.g. 'add votes'")
    new.add_argument("--dir", default=None, help="migrations directory (default: PATCHER_SOURCE)")
    new.add_argument("--no-down", action="store_true", help="irreversible: write no .down.sql")
    invoke = sub.add_parser("invoke", help="call the deployed function and check its result")
    invoke.add_argument("action", choices=ENGINE_ACTIONS)
    invoke.add_argument("--function-name", default="StackFlowPatcher")
    invoke.add_argument("--qualifier", default=None, help="alias or version, e.g. live")
    invoke.add_argument("--dry-run", action="store_true")
    invoke.add_argument("--verify", action="store_true")
    invoke.add_argument("--target", type=_version)
    invoke.add_argument("--steps", type=int)
    invoke.add_argument("--until-done", action="store_true", help="re-invoke while partial")
    invoke.add_argument("--max-invocations", type=int, default=20)
    invoke.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "new":
        from patcher.scaffold import new_migration

        try:
            for path in new_migration(args.description, args.dir, down=not args.no_down):
                print(f"created {path}")
        except PatcherError as exc:
            print(f"patcher: {exc.message}", file=sys.stderr)
            return 2
        return 0
    if args.command == "invoke":
        from patcher.invoke import invoke_command

        return int(invoke_command(args))
    return run_engine(args)


def run_engine(args: argparse.Namespace) -> int:
    from patcher.commands import conninfo_provider, execute, refused
    from patcher.config import invoked_by_default

    started = time.perf_counter()
    request_id = f"cli-{uuid.uuid4()}"
    request = Request(
        action=args.command,
        dry_run=args.dry_run,
        target=args.target,
        steps=args.steps,
        verify=args.verify,
    )
    try:
        config = load_config(source=args.source, database_url=args.database_url)
    except PatcherError as exc:
        result = refused(args.command, args.dry_run, exc, request_id, started)
    else:
        result = execute(
            request,
            config,
            conninfo=conninfo_provider(config),
            request_id=request_id,
            invoked_by=invoked_by_default(),
        )
    try:
        print(json.dumps(result, indent=2, default=str) if args.json else render(result))
    except BrokenPipeError:  # piped into head: the reader left, the run itself is done
        sys.stderr.close()
    return exit_code(result)


def exit_code(result: dict[str, Any]) -> int:
    if result["ok"]:
        return 0
    error = result.get("error") or {}
    return 2 if error.get("type") == InvalidRequest.__name__ else 1


def _version(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version (0 to 18 digits)")
    return int(text)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The ``patcher`` command: the same engine and JSON result as the Lambda, from a terminal.

Exit status: 0 when the result is ``ok``, 1 when it is not, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from patcher.app.config import load_config, select_database
from patcher.cli.new import add_recipe_flags
from patcher.cli.output import output_format, write_result
from patcher.core.errors import InvalidRequest, PatcherError
from patcher.core.interrupt import Interrupt
from patcher.core.models import Request
from patcher.core.quiet_logs import pin_sdk_loggers

if TYPE_CHECKING:
    from patcher.app.commands import Invocation
    from patcher.app.result import RunResult

ENGINE_ACTIONS = ("migrate", "rollback", "status", "baseline", "repair", "drift")
FORMATS = ("text", "json", "markdown")  # SPEC section 6: --json is --format json


# Which flags each engine command takes (SPEC sections 4 and 6); any other is a usage error.
_FLAGS: dict[str, tuple[str, ...]] = {
    "migrate": ("dry_run", "verify", "target", "phase"),
    "rollback": ("dry_run", "verify", "target", "steps"),
    "status": (),
    "baseline": ("dry_run", "target"),
    "repair": ("dry_run",),
    "drift": (),
}
_HELP = {
    "migrate": "apply pending versions (up to --target)",
    "rollback": "revert the newest version (--steps N, or every one above --target)",
    "status": "show applied and pending versions (no lock, no change)",
    "baseline": "mark every version up to --target as applied without running it",
    "repair": "clear a crashed no-transaction script's dirty mark, re-record checksums",
    "drift": "compare the live schema with the snapshot the migrations left (exit 1: drifted)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patcher", description="Apply or reverse numbered SQL migrations on PostgreSQL."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for action in ENGINE_ACTIONS:
        _add_engine_command(sub, action)
    _add_adopt_command(sub)
    new = sub.add_parser("new", help="write the next numbered up/down pair")
    new.add_argument("description", nargs="?", help="what the migration does, e.g. 'add votes'")
    add_recipe_flags(new)
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
    _add_format(invoke)
    render_cmd = sub.add_parser(
        "render", help="print a saved JSON result (e.g. the Lambda's) as text or markdown"
    )
    render_cmd.add_argument("file", help="a result JSON file, or - for stdin")
    _add_format(render_cmd, default="markdown")
    from patcher.cli.lint import add_parser as add_lint

    add_lint(sub)
    from patcher.cli.run_state_machine import add_parser

    add_parser(sub)
    return parser


def _add_format(cmd: Any, default: str | None = None) -> None:
    cmd.add_argument(
        "--format",
        choices=FORMATS,
        default=default,
        help="text (default), json (the exact result) or markdown (job summaries, chat)",
    )


def _add_engine_command(sub: Any, action: str) -> None:
    """One engine command with exactly the flags it takes."""
    cmd = sub.add_parser(action, help=_HELP[action], description=_HELP[action])
    flags = _FLAGS[action]
    if "dry_run" in flags:
        cmd.add_argument("--dry-run", action="store_true", help="plan and report, change nothing")
    if "verify" in flags:
        cmd.add_argument(
            "--verify", action="store_true", help="with --dry-run: execute and roll back"
        )
    if "target" in flags:
        cmd.add_argument("--target", type=_version, help="version bound (see docs/actions.md)")
    if "steps" in flags:
        cmd.add_argument("--steps", type=int, help="revert the N most recent")
    if "phase" in flags:
        cmd.add_argument(
            "--phase",
            choices=("expand", "contract"),
            help="expand: stop before the first contract version; contract: the rest",
        )
    cmd.add_argument("--source", help="migrations directory or s3://bucket/prefix/")
    cmd.add_argument("--database-url", help="libpq URL (default: PATCHER_DATABASE_URL)")
    cmd.add_argument("--database", help="a PATCHER_TARGETS name (fleets)")
    cmd.add_argument("--json", action="store_true", help="print the exact Lambda JSON result")
    _add_format(cmd)


def _add_adopt_command(sub: Any) -> None:
    """``adopt --from TOOL [--table NAME] [--dry-run]`` (SPEC section 10)."""
    from patcher.core.models import ADOPT_TOOLS

    about = "take over another tool's history table for the versions it applied"
    cmd = sub.add_parser("adopt", help=about, description=about)
    cmd.add_argument("--from", dest="adopt_from", required=True, choices=ADOPT_TOOLS)
    cmd.add_argument("--table", dest="adopt_table", help="its table, NAME or SCHEMA.NAME")
    cmd.add_argument("--dry-run", action="store_true", help="show what it would write")
    cmd.add_argument("--source", help="migrations directory or s3://bucket/prefix/")
    cmd.add_argument("--database-url", help="libpq URL (default: PATCHER_DATABASE_URL)")
    cmd.add_argument("--json", action="store_true", help="print the exact Lambda JSON result")


def main(argv: Sequence[str] | None = None) -> int:
    pin_sdk_loggers()  # no AWS response body (a secret) in a DEBUG log
    args = build_parser().parse_args(argv)
    if args.command == "new":
        from patcher.cli.new import new_command

        try:
            for path in new_command(args):
                print(f"created {path}")
        except PatcherError as exc:
            print(f"patcher: {exc.message}", file=sys.stderr)
            return 2
        return 0
    if args.command == "render":
        return render_file(args.file, args.format)
    if args.command == "invoke":
        from patcher.cli.invoke import invoke_command

        return int(invoke_command(args))
    if args.command == "lint":
        from patcher.cli.lint import run as run_lint

        return run_lint(args)
    if args.command == "run-state-machine":
        from patcher.cli.run_state_machine import run_state_machine

        return run_state_machine(args)
    return run_engine(args)


def entry() -> NoReturn:
    """The ``patcher`` console command: ``main``, then ``exit_now``. Ctrl-C outside an engine
    run (which handles it: cli/interrupt.py) ends the command quietly with 130."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("\npatcher: interrupted (Ctrl-C)", file=sys.stderr)
        code = 130
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` without the interpreter's teardown, once the command is done.

    Freeing every module and object at exit (psycopg, pydantic, the run's records) costs
    ~40-50 ms here, a quarter of what a small ``patcher migrate`` spends outside the server.
    What exit must still do is done first: the ``atexit`` handlers run (logging's flush, a dev
    cluster's stop) and the standard streams are flushed. A thread still running (none is,
    after a command: the watchdog and the progress ticker are joined) takes the normal exit.
    """
    if threading.active_count() > 1:
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing is left to tell
            stream.flush()
    os._exit(code)


def run_engine(args: argparse.Namespace) -> int:
    from patcher.app.commands import Invocation
    from patcher.cli.interrupt import exit_status
    from patcher.cli.progress import for_stream
    from patcher.core.terms import CLI, speaking

    started = time.perf_counter()
    progress = None if _machine_output(args) else for_stream(sys.stderr)
    interrupt = Interrupt()
    invocation = Invocation(request_id=f"cli-{uuid.uuid4()}", events=progress, interrupt=interrupt)
    try:
        with speaking(CLI):  # messages name --dry-run, --database-url..., not payload keys
            result = _run(args, invocation, interrupt, started)
    finally:
        if progress is not None:
            progress.close()
    try:
        write_result(result.to_dict(), output_format(args))
    except BrokenPipeError:  # piped into head: the reader left, the run itself is done
        sys.stderr.close()
    return exit_status(interrupt, exit_code(result))


def _run(
    args: argparse.Namespace, invocation: Invocation, interrupt: Interrupt, started: float
) -> RunResult:
    """The request from the flags, run; a refused one is a result too."""
    from patcher.app.commands import execute, refused
    from patcher.cli.interrupt import stopping_on_signals

    dry_run = getattr(args, "dry_run", False)
    try:
        request = Request(  # validated here, once: the engine trusts it
            action=args.command,
            dry_run=dry_run,
            target=getattr(args, "target", None),
            steps=getattr(args, "steps", None),
            verify=getattr(args, "verify", False),
            adopt_from=getattr(args, "adopt_from", None),
            adopt_table=getattr(args, "adopt_table", None),
            database=getattr(args, "database", None),
            phase=getattr(args, "phase", None),
        )
        config = load_config(source=args.source, database_url=args.database_url)
        config = select_database(config, request.database)
    except PatcherError as exc:
        return refused(args.command, dry_run, exc, invocation.request_id, started)
    with stopping_on_signals(interrupt, quiet=invocation.events is None):
        return execute(request, config, invocation)


def _machine_output(args: argparse.Namespace) -> bool:
    """JSON on stdout (--json, --format json): stderr stays quiet, no progress lines."""
    return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"


def render_file(path: str, fmt: str) -> int:
    """``patcher render``: a saved result printed; 0 once printed, 2 when it is no result."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
        result = json.loads(text)
        if not isinstance(result, dict) or "status" not in result:
            raise ValueError("not a patcher result (no status)")
        if "payload" in result and "function_error" in result:
            raise ValueError(f"the function failed ({result['function_error']})")
        write_result(result, fmt)
    except (OSError, ValueError) as exc:
        print(f"patcher render: cannot render {path}: {exc}", file=sys.stderr)
        return 2
    return 0


def exit_code(result: RunResult) -> int:
    """0 when ok, 2 for a refused request (usage), 1 for anything else that went wrong."""
    if result.ok:
        return 0
    return 2 if isinstance(result.error, InvalidRequest) else 1


def _version(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version (0 to 18 digits)")
    return int(text)


if __name__ == "__main__":  # pragma: no cover
    entry()

"""The ``patcher lint`` CLI adapter: arguments in, a rendered report and an exit status out.

Exit status (SPEC section 9): 1 when a finding at or above ``--fail-on`` remains (default
``warning``), 0 otherwise, 2 for bad usage (also a path that names nothing, or a file that is
not UTF-8: nothing was linted).

It lives outside the ``patcher.lint`` package so that registering the subcommand, which every
``patcher`` command does, does not load the linter and its rules (~20 ms of a ``migrate``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

FORMATS = ("text", "json", "sarif", "github", "markdown")


def add_parser(sub: Any) -> None:
    """Register ``lint`` on the ``patcher`` subcommand parser."""
    lint = sub.add_parser(
        "lint",
        help="check migration scripts for risks, with no database",
        description="Check SQL migration scripts with the dry run's risk rules, offline.",
    )
    lint.add_argument("paths", nargs="*", metavar="PATH", help=".sql file, directory or s3://")
    lint.add_argument("--format", choices=FORMATS, default="text")
    lint.add_argument("--fail-on", choices=("error", "warning", "never"), default="warning")
    lint.add_argument("--list-rules", action="store_true", help="print every rule and exit")


def run(args: argparse.Namespace) -> int:
    from patcher.core.errors import PatcherError
    from patcher.lint import lint_files
    from patcher.lint.files import LintUsageError, collect
    from patcher.lint.formats import RENDERERS, rules_table

    if args.list_rules:
        print(rules_table())
        return 0
    if not args.paths:
        print("patcher lint: give at least one PATH (.sql file, directory, s3://)", file=sys.stderr)
        return 2
    try:
        report = lint_files(collect(args.paths))
    except (LintUsageError, PatcherError) as exc:
        message = exc.message if isinstance(exc, PatcherError) else str(exc)
        print(f"patcher lint: {message}", file=sys.stderr)
        return 2
    if args.format == "sarif":
        from patcher.lint.sarif import sarif

        output = sarif(report)
    else:
        output = RENDERERS[args.format](report)
    try:
        print(output)
    except BrokenPipeError:
        sys.stderr.close()
    return 1 if report.fails(args.fail_on) else 0

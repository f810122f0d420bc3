"""The ``patcher lint`` CLI adapter: arguments in, a rendered report and an exit status out.

Exit status (SPEC section 9): 1 when a finding at or above ``--fail-on`` remains (default
``warning``), 0 otherwise, 2 for bad usage (also a path that names nothing, a file that is
not UTF-8, a ``--base`` that is no commit or a directory outside git, a database that cannot be
read: nothing was linted).

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
        help="check migration scripts for risks (no database needed)",
        description="Check SQL migration scripts with the dry run's risk rules: offline, or "
        "with a database's catalog (--database-url). In a git work tree only the files added "
        "or changed since the base (--base) are the change set.",
    )
    lint.add_argument("paths", nargs="*", metavar="PATH", help=".sql file, directory or s3://")
    lint.add_argument("--format", choices=FORMATS, default="text")
    lint.add_argument("--fail-on", choices=("error", "warning", "never"), default="warning")
    lint.add_argument(
        "--base",
        metavar="REF",
        help="git ref whose files are deployed: only files added or changed since are linted "
        "(default for a directory in a git work tree: the merge base with origin/HEAD, main "
        "or master)",
    )
    lint.add_argument(
        "--database-url",
        metavar="URL",
        help="read what exists (tables, sizes, column types, foreign keys) from this "
        "database's catalog, read-only, instead of assuming it",
    )
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
        from patcher.lint.base import select

        files, base = select(args.paths, collect(args.paths), args.base)
        if args.database_url:
            from patcher.app.lint_database import database_facts

            with database_facts(args.database_url) as (sizes, catalog, said):
                report = lint_files(files, existing=sizes, catalog=catalog)
                report.database = said
        else:
            report = lint_files(files)
        report.base = base
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

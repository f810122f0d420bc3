"""``make lint-compare``: squawk (PyPI squawk-cli) and ``patcher lint`` over the same corpus.

    python -m bench.lint_compare [--count N] [--squawk PATH] [--table]

Writes the corpus (bench/lint_compare/corpus.py, 250 migrations by default) to a temporary
directory and lints every file as its own change set, as a pull request adding it would be:
objects an earlier migration made exist, objects the file itself makes are new. For each
finding of each tool it finds the statement (by line) and the object the statement works on
(pglast), and whether the file created that object before (or in) that statement. Prints:

- findings per tool, and per rule;
- findings on objects created in the same file (noise), hazard rules and design rules apart;
- every squawk finding on a pre-existing object whose rule has an equivalent here
  (bench/lint_compare/squawk_map.py) that patcher lint does not make on that statement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.lint_compare import corpus
from bench.lint_compare.squawk_map import SQUAWK, table
from patcher.lint import LintReport, lint_script
from patcher.sql.lexer import iter_statements
from patcher.sql.risks import analyze
from patcher.sql.risks.codes import DESIGN_CODES

REPO = Path(__file__).resolve().parents[2]
SQUAWK_BIN = REPO / ".local" / "tools" / "squawk" / "bin" / "squawk"


@dataclass(frozen=True)
class Stmt:
    first: int  # 1-based first line
    last: int
    target: str | None
    new: bool  # the file made the target before or in this statement
    text: str


def statements(text: str) -> list[Stmt]:
    """Each statement's lines, target object and whether the file made it."""
    from pglast.parser import ParseError, parse_sql

    created: set[str] = set()
    out = []
    for stmt in iter_statements(text):
        body = stmt.text
        last = stmt.line + body.count("\n")
        try:
            node = parse_sql(body)[0].stmt
        except ParseError:
            out.append(Stmt(stmt.line, last, None, False, body))
            continue
        target, makes = _target(node)
        before = target is not None and target in created
        analyze(body, transactional=True, created=created)
        out.append(Stmt(stmt.line, last, target, before or makes, body))
    return out


def _target(node: Any) -> tuple[str | None, bool]:
    """(the object key a statement works on, whether the statement creates it)."""
    from patcher.sql.risks.objects import key_of
    from patcher.sql.risks.walk import Table, enum_name

    kind = type(node).__name__
    if kind == "CreateTableAsStmt":
        return Table.of(node.into.rel).key, True  # type: ignore[union-attr]
    if kind == "ViewStmt":
        return Table.of(node.view).key, True  # type: ignore[union-attr]
    if kind == "CreateStmt":
        return Table.of(node.relation).key, True  # type: ignore[union-attr]
    if kind == "DropStmt" and node.objects:
        return key_of(enum_name(node.removeType), node.objects[0]), False
    if kind == "AlterEnumStmt":
        return key_of("OBJECT_TYPE", node.typeName), False
    relation = getattr(node, "relation", None)
    if relation is None and kind == "TruncateStmt":
        relation = node.relations[0]
    table = Table.of(relation) if relation is not None else None
    return (table.key if table is not None else None), False


def run_squawk(binary: Path, files: list[Path]) -> list[dict[str, Any]]:
    if not binary.exists():
        sys.exit(f"{binary} is missing: run 'make lint-compare' (it installs squawk-cli 2.70.0)")
    proc = subprocess.run(
        [str(binary), "--reporter", "json", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    found: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return found


def locate(stmts: list[Stmt], line: int) -> Stmt | None:
    return next((s for s in stmts if s.first <= line <= s.last), None)


def compare(files: list[Path], squawk_bin: Path) -> dict[str, Any]:
    per_file = {str(path): statements(path.read_text()) for path in files}
    ours: list[tuple[str, int, str]] = []
    for path in files:
        report = LintReport()
        lint_script(str(path), path.read_bytes(), report, set())
        ours += [(str(path), f.line, f.code) for f in report.findings]
    squawk = [
        (f["file"], int(f["line"]) + 1, f["rule_name"]) for f in run_squawk(squawk_bin, files)
    ]

    def noise(findings: list[tuple[str, int, str]], design: set[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for path, line, code in findings:
            stmt = locate(per_file[path], line)
            if stmt is not None and stmt.new:
                counts["design" if code in design else "hazard"] += 1
        return counts

    squawk_design = {n for n, m in SQUAWK.items() if m.ours and set(m.ours) <= DESIGN_CODES}
    ours_by_stmt: dict[tuple[str, int], set[str]] = {}
    for path, line, code in ours:
        stmt = locate(per_file[path], line)
        if stmt is not None:
            ours_by_stmt.setdefault((path, stmt.first), set()).add(code)
    missed, matched, no_equivalent = [], 0, Counter[str]()
    for path, line, rule in squawk:
        stmt = locate(per_file[path], line)
        if stmt is None or stmt.new:
            continue
        mapping = SQUAWK.get(rule)
        if mapping is None or not mapping.ours:
            no_equivalent[rule] += 1
            continue
        if set(mapping.ours) & ours_by_stmt.get((path, stmt.first), set()):
            matched += 1
        else:
            missed.append((Path(path).name, line, rule, stmt.text.splitlines()[0][:90]))
    return {
        "files": len(files),
        "ours": ours,
        "squawk": squawk,
        "noise_ours": noise(ours, set(DESIGN_CODES)),
        "noise_squawk": noise(squawk, squawk_design),
        "matched": matched,
        "missed": missed,
        "no_equivalent": no_equivalent,
    }


_SAME = "on objects made in the same file:"


def render(result: dict[str, Any]) -> str:
    ours, squawk = result["ours"], result["squawk"]
    n_ours, n_squawk = result["noise_ours"], result["noise_squawk"]
    with_equivalent = result["matched"] + len(result["missed"])
    lines = [
        f"corpus: {result['files']} files (bench/lint_compare/corpus.py), each linted alone",
        "",
        "| | squawk 2.70 | patcher lint |",
        "|---|---|---|",
        f"| findings | {len(squawk)} | {len(ours)} |",
        f"| {_SAME} hazard rules | {n_squawk['hazard']} | {n_ours['hazard']} |",
        f"| {_SAME} design rules | {n_squawk['design']} | {n_ours['design']} |",
        "",
        f"squawk findings on pre-existing objects with an equivalent rule here: {with_equivalent}; "
        f"patcher lint makes {result['matched']} of them, misses {len(result['missed'])}",
    ]
    for name, line, rule, text in result["missed"]:
        lines.append(f"  missed: {name}:{line} {rule}: {text}")
    lines.append("squawk findings on pre-existing objects with no equivalent (see docs/lint.md):")
    for rule, count in result["no_equivalent"].most_common():
        lines.append(f"  {rule}: {count} ({SQUAWK[rule].note[:80]})")
    for who, found in (("squawk", squawk), ("ours", ours)):
        per_rule = Counter(rule for *_, rule in found).most_common()
        lines.append(f"per rule, {who}: " + ", ".join(f"{r} {c}" for r, c in per_rule))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lint_compare", description=__doc__)
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--squawk", type=Path, default=SQUAWK_BIN)
    parser.add_argument("--table", action="store_true", help="print docs/lint.md's squawk table")
    args = parser.parse_args(argv)
    if args.table:
        print(table())
        return 0
    with tempfile.TemporaryDirectory(prefix="lint-compare-") as tmp:
        files = corpus.write(Path(tmp) / "migrations", args.count)
        print(render(compare(files, args.squawk)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

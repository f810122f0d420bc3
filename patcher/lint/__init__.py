"""``patcher lint``: the dry run's risk rules over SQL files, with no database (SPEC section 9).

``files`` finds the scripts (local or S3) in change-set order; ``lint_script`` runs the same
analyzer a dry run uses (``patcher.sql.risks.analyze``, plus the design rules) on one script,
statement by statement, and applies its ``-- patcher:ignore`` suppressions (``suppress``);
``formats`` and ``sarif`` render a ``LintReport``; ``patcher.cli.lint`` is the CLI adapter.

Offline, every object the change set does not create is taken to exist, size unknown: a
finding on it says a dry run against the database will tell how big it is. With the database's
facts (``patcher lint --database-url``), what exists is what its catalog has, with its size.
Which files are the change set, and which are deployed already, ``base`` decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from patcher.core.catalog_port import Catalog
from patcher.lint.files import LintFile
from patcher.lint.suppress import Suppressions
from patcher.sql.risks.codes import SEVERITY_RANK, info

if TYPE_CHECKING:
    from patcher.sql.phases.model import ChangeSet


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    code: str
    message: str
    statement: str
    table: str | None = None
    suppressed: str | None = None  # the reason, when a patcher:ignore silenced it

    @property
    def severity(self) -> str:
        return info(self.code).severity

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "statement": self.statement,
        }
        if self.table is not None:
            out["table"] = self.table
        return out


@dataclass
class LintReport:
    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # not suppressed
    suppressed: list[Finding] = field(default_factory=list)
    base: str | None = None  # which base decided the change set (patcher.lint.base), said
    database: str | None = None  # whose catalog said what exists (--database-url)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("error", "warning", "info"), 0)
        for finding in self.findings:
            out[finding.severity] += 1
        return out

    def fails(self, fail_on: str) -> bool:
        """Whether a finding at or above ``fail_on`` (error | warning | never) remains."""
        if fail_on == "never":
            return False
        bar = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK[f.severity] >= bar for f in self.findings)


def lint_files(
    files: Iterable[LintFile],
    *,
    existing: Mapping[str, int] | None = None,
    catalog: Catalog | None = None,
) -> LintReport:
    """Lint every file; up scripts share one change-set context, in the order given.

    ``existing`` (table -> row estimate) and ``catalog`` are the database's, when lint has one:
    then only what the database has exists, and rewrites and reach are decided as a dry run
    decides them."""
    from patcher.lint.downs import DownScripts
    from patcher.sql.phases.model import ChangeSet

    files = list(files)
    downs = DownScripts(files)
    report = LintReport()
    change_set: set[str] = set()
    phases = ChangeSet()  # what the change set made, for the release rules
    for lint_file in files:
        report.files.append(lint_file.shown)
        created = change_set if lint_file.in_change_set else set()
        text = _decoded(lint_file)
        phase_set = phases if lint_file.in_change_set else None  # downs roll back on purpose
        lint_text(
            lint_file.shown, text, report, created, phase_set, existing=existing, catalog=catalog,
            has_down=phase_set is None or downs.has_down(lint_file),
        )  # fmt: skip
    return report


def _decoded(lint_file: LintFile) -> str:
    """The file's text; its bytes are freed on return (the script is then held once)."""
    from patcher.sql.classify import decode_script

    return decode_script(lint_file.shown, lint_file.read())


def lint_script(
    shown: str, data: bytes, report: LintReport, created: set[str], phases: ChangeSet | None = None
) -> None:
    """``lint_text`` of a script's bytes (decoded as the runner does: UTF-8, BOM dropped)."""
    from patcher.sql.classify import decode_script

    lint_text(shown, decode_script(shown, data), report, created, phases)


def lint_text(
    shown: str,
    text: str,
    report: LintReport,
    created: set[str],
    phases: ChangeSet | None = None,
    *,
    existing: Mapping[str, int] | None = None,
    catalog: Catalog | None = None,
    has_down: bool = True,
) -> None:
    """Findings of one script into ``report``; ``created`` (and ``phases``, given for the up
    scripts of a change set, which also get the release rules) is updated with what it makes.

    Memory follows one statement: statements are split and parsed one at a time."""
    from patcher.lint.release import release_risks
    from patcher.sql.classify import has_no_transaction_directive
    from patcher.sql.lexer import iter_statements
    from patcher.sql.risks import analyze

    first = next(iter_statements(text), None)
    suppressions = Suppressions.scan(text, first.line if first is not None else None)
    earlier = set(created)  # what the files before this one in the change set made
    transactional = not has_no_transaction_directive(text)
    risks = analyze(
        text,
        transactional=transactional,
        statements=iter_statements(text),
        created=created,
        design=True,
        existing_tables=existing,
        catalog=catalog,
    )
    if earlier and suppressions.unused():
        # A suppression is unused only if it silences nothing once the earlier files are
        # deployed too: linted with the whole history as new, the lock it silences in its pull
        # request (the table existed then) does not fire, and that is no mistake of the comment.
        deployed = analyze(text, transactional=transactional, design=True, catalog=catalog)
        for risk in deployed:
            suppressions.match(risk.code, _line_of(text, risk.offset))
    if "patcher:backfill" in text[:4096].lower():  # SPEC 12: the batching answers it
        from patcher.sql.backfill import directive_line

        if directive_line(text) is not None:
            risks = [r for r in risks if r.code != "UPDATE_WITHOUT_WHERE"]
    if phases is not None:  # an up script of the change set: the release rules too
        risks += release_risks(text, iter_statements(text), phases)
    line, counted = 1, 0
    for risk in sorted(risks, key=lambda r: max(r.offset, 0)):
        offset = max(risk.offset, 0)
        line += text.count("\n", counted, offset)
        counted = offset
        column = offset - text.rfind("\n", 0, offset)
        shown_line, shown_column = line, column
        if risk.at > offset:  # one token at fault (a parse error): shown where the run shows it
            shown_line = line + text.count("\n", offset, risk.at)
            shown_column = risk.at - text.rfind("\n", 0, risk.at)
        finding = Finding(
            shown, shown_line, shown_column, risk.code, risk.explanation, risk.statement,
            risk.table,
        )  # fmt: skip
        matched = suppressions.match(risk.code, line if risk.offset >= 0 else 1)
        if matched is not None:
            report.suppressed.append(replace(finding, suppressed=matched.reason or "suppressed"))
        else:
            report.findings.append(finding)
    if not has_down:  # SPEC 11: a contract version an alias rollback cannot be matched past
        _without_down(shown, text, report, suppressions)
    for suppression, why in suppressions.unused():
        report.findings.append(Finding(shown, suppression.line, 1, "UNUSED_SUPPRESSION", why, ""))


def _without_down(shown: str, text: str, report: LintReport, suppressions: Suppressions) -> None:
    """``CONTRACT_WITHOUT_DOWN`` at the script's first unsuppressed contract statement."""
    from patcher.lint.downs import without_down_message
    from patcher.sources.catalog import parse_name
    from patcher.sql.phases.classify import BREAKS_CODE

    breaks = [f for f in report.findings if f.path == shown and f.code == BREAKS_CODE]
    if not breaks:
        return
    first = breaks[0]
    why = without_down_message(parse_name(shown.rsplit("/", 1)[-1]).version)
    finding = Finding(
        shown, first.line, first.column, "CONTRACT_WITHOUT_DOWN", why, first.statement
    )
    matched = suppressions.match(finding.code, first.line)
    if matched is not None:
        report.suppressed.append(replace(finding, suppressed=matched.reason or "suppressed"))
    else:
        report.findings.append(finding)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1 if offset >= 0 else 1

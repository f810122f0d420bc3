# ruff: noqa: E501  (a data table: one squawk rule a line reads best)
"""Every rule name of squawk 2.70 (PyPI squawk-cli) and what covers it here, or why nothing does.

The "squawk's rules, and ours" table of docs/lint.md is made from this
(``python -m bench.lint_compare --table``), ``make lint-compare`` uses it to match findings,
and tests/unit/lint/test_squawk_map.py checks it against the rule names the installed binary accepts. ``opt_in``: squawk runs it only when
``--include``d (measured: it fires on its statement only with ``--include``).
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Mapping(NamedTuple):
    ours: tuple[str, ...]
    note: str = ""
    opt_in: bool = False


def _m(*ours: str, note: str = "", opt_in: bool = False) -> Mapping:
    return Mapping(ours, note, opt_in)


_RUNNER_TIMEOUTS = (
    "not needed: the runner sets lock_timeout (PATCHER_LOCK_TIMEOUT) on every migration and "
    "cuts it at the Lambda deadline; LOCK_TIMEOUT_DISABLED reports a script that turns it off"
)
_POLICY = (
    "a team policy ban, not a migration hazard (no lock beyond the statement's own, no data "
    "loss); not covered"
)
# fmt: off
SQUAWK: Final[dict[str, Mapping]] = {
    "adding-field-with-default": _m("TABLE_REWRITE", note="only for a volatile default: a constant one is free since PostgreSQL 11"),
    "adding-foreign-key-constraint": _m("ADD_FOREIGN_KEY_VALIDATING", "FOREIGN_KEY_LOCKS_REFERENCED"),
    "adding-not-nullable-field": _m("SET_NOT_NULL_SCANS", "NOT_NULL_WITHOUT_DEFAULT"),
    "adding-required-field": _m("NOT_NULL_WITHOUT_DEFAULT"),
    "adding-serial-primary-key-field": _m("INDEX_NOT_CONCURRENT", "TABLE_REWRITE"),
    "ban-add-column": _m("ACCESS_EXCLUSIVE_LOCK", note="we report the lock, not every new column", opt_in=True),
    "ban-add-composite-attribute": _m(note=_POLICY, opt_in=True),
    "ban-add-enum-value": _m("ENUM_VALUE_ORDER", "ENUM_VALUE_USED_IN_TRANSACTION", note="what can go wrong with a new value", opt_in=True),
    "ban-alter-database-options": _m(note=_POLICY, opt_in=True),
    "ban-alter-domain-with-add-constraint": _m("DOMAIN_CONSTRAINT_VALIDATING"),
    "ban-alter-extension": _m(note=_POLICY, opt_in=True),
    "ban-alter-function-options": _m(note=_POLICY, opt_in=True),
    "ban-alter-generated-expression": _m("TABLE_REWRITE", note="SET EXPRESSION rewrites the table", opt_in=True),
    "ban-alter-identity": _m("ACCESS_EXCLUSIVE_LOCK", note="changes only the identity's sequence; we report the lock"),
    "ban-alter-policy-condition": _m(note=_POLICY, opt_in=True),
    "ban-alter-policy-roles": _m(note=_POLICY, opt_in=True),
    "ban-alter-role-options": _m(note=_POLICY, opt_in=True),
    "ban-alter-row-level-security": _m(note=_POLICY, opt_in=True),
    "ban-alter-sequence-values": _m(note=_POLICY, opt_in=True),
    "ban-alter-system-options": _m("CANNOT_RUN_IN_TRANSACTION", note="ALTER SYSTEM cannot run in a migration's transaction", opt_in=True),
    "ban-alter-view-options": _m(note=_POLICY, opt_in=True),
    "ban-char-field": _m("PREFER_TEXT"),
    "ban-concurrent-index-creation-in-transaction": _m("CANNOT_RUN_IN_TRANSACTION"),
    "ban-create-domain-with-constraint": _m(note="a new domain's CHECK costs nothing; adding one later is DOMAIN_CONSTRAINT_VALIDATING; not covered"),
    "ban-create-policy": _m(note=_POLICY, opt_in=True),
    "ban-detach-inheritance": _m("ACCESS_EXCLUSIVE_LOCK", note="NO INHERIT: we report the lock", opt_in=True),
    "ban-disable-trigger": _m("TRIGGER_DISABLED", note="when the script does not enable it again", opt_in=True),
    "ban-drop-column": _m("DROP_COLUMN"),
    "ban-drop-constraint": _m("DROP_CONSTRAINT"),
    "ban-drop-database": _m("DROP_DATABASE"),
    "ban-drop-domain": _m("DROP_OBJECT"),
    "ban-drop-extension": _m("DROP_OBJECT"),
    "ban-drop-function": _m("DROP_OBJECT"),
    "ban-drop-generated-expression": _m("ACCESS_EXCLUSIVE_LOCK", note="DROP EXPRESSION keeps the values (no rewrite); we report the lock"),
    "ban-drop-index": _m("DROP_INDEX_NOT_CONCURRENT", note="the non-concurrent drop; a concurrent one loses no data", opt_in=True),
    "ban-drop-not-null": _m("DROP_NOT_NULL"),
    "ban-drop-policy": _m("DROP_OBJECT", opt_in=True),
    "ban-drop-schema": _m("DROP_OBJECT"),
    "ban-drop-sequence": _m("DROP_OBJECT"),
    "ban-drop-table": _m("DROP_TABLE"),
    "ban-drop-type": _m("DROP_OBJECT"),
    "ban-drop-view": _m("DROP_OBJECT"),
    "ban-new-write-restriction": _m(note=_POLICY, opt_in=True),
    "ban-replace-view-function": _m(note="CREATE OR REPLACE is how views and functions are changed; not covered", opt_in=True),
    "ban-replica-identity": _m("ACCESS_EXCLUSIVE_LOCK", note="we report the lock", opt_in=True),
    "ban-revoke": _m(note=_POLICY, opt_in=True),
    "ban-set-default": _m(note="SET DEFAULT changes only rows written later (no rewrite); not covered", opt_in=True),
    "ban-set-schema": _m("SET_SCHEMA"),
    "ban-truncate-cascade": _m("DROP_CASCADE"),
    "ban-uncommitted-transaction": _m("TRANSACTION_CONTROL"),
    "changing-column-type": _m("TABLE_REWRITE", note="decided from the catalog in dry runs; 'may rewrite' offline"),
    "constraint-missing-not-valid": _m("ADD_FOREIGN_KEY_VALIDATING", "ADD_CHECK_VALIDATING", "INDEX_NOT_CONCURRENT", note="squawk also says it of UNIQUE, which cannot be NOT VALID: its cost is the index build"),
    "disallowed-unique-constraint": _m("INDEX_NOT_CONCURRENT"),
    "identifier-too-long": _m("IDENTIFIER_TOO_LONG"),
    "prefer-bigint-over-int": _m("PREFER_BIGINT"),
    "prefer-bigint-over-smallint": _m("PREFER_BIGINT"),
    "prefer-identity": _m("PREFER_IDENTITY"),
    "prefer-repack": _m("TABLE_REWRITE", note="VACUUM FULL and CLUSTER"),
    "prefer-robust-stmts": _m(note="by design: a transactional migration is atomic, IF NOT EXISTS buys nothing there; for a no-transaction script, MULTI_STATEMENT_NO_TRANSACTION says when a failure leaves half of it"),
    "prefer-text-field": _m("PREFER_TEXT"),
    "prefer-timestamp-tz": _m("PREFER_TIMESTAMPTZ"),
    "renaming-column": _m("RENAME"),
    "renaming-object": _m("RENAME"),
    "renaming-table": _m("RENAME"),
    "require-concurrent-index-creation": _m("INDEX_NOT_CONCURRENT"),
    "require-concurrent-index-deletion": _m("DROP_INDEX_NOT_CONCURRENT"),
    "require-concurrent-partition-detach": _m("DETACH_PARTITION_NOT_CONCURRENT"),
    "require-concurrent-reindex": _m("REINDEX_NOT_CONCURRENT"),
    "require-enum-value-ordering": _m("ENUM_VALUE_ORDER"),
    "require-lock-timeout": _m(note=_RUNNER_TIMEOUTS),
    "require-statement-timeout": _m(note=_RUNNER_TIMEOUTS),
    "require-table-schema": _m(note="the runner restores search_path after every migration (SPEC 7.2); SESSION_STATE reports a script that changes it", opt_in=True),
    "require-timeout-settings": _m(note=_RUNNER_TIMEOUTS),
    "transaction-nesting": _m("TRANSACTION_CONTROL"),
}
# fmt: on
# Squawk's report on an ignore comment that matched nothing: a diagnostic, not a rule name.
SQUAWK_DIAGNOSTICS: Final = {"unused-ignore": Mapping(("UNUSED_SUPPRESSION",))}


def table() -> str:
    """The docs/lint.md table: every squawk rule, ours, and why where we differ."""
    rows = ["| squawk rule | default | ours | note |", "|---|---|---|---|"]
    for name, mapping in sorted({**SQUAWK, **SQUAWK_DIAGNOSTICS}.items()):
        ours = ", ".join(f"`{code}`" for code in mapping.ours) or "—"
        default = "opt-in" if mapping.opt_in else "on"
        rows.append(f"| `{name}` | {default} | {ours} | {mapping.note} |")
    return "\n".join(rows)

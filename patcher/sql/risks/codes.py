"""Every risk code: its severity, a one-line summary and the longer "why, and what instead".

The same table serves a dry run's ``risks``, ``patcher lint`` (text, SARIF ``rules[].help``,
markdown) and the rule table of docs/lint.md. Severities: ``error`` (data loss, a script that fails
or breaks the runner's guarantees), ``warning`` (blocks other sessions or may surprise the
application), ``info`` (design advice, reported by lint only). ``database`` says what only a
dry run can tell (empty: lint sees all the rule needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: Final[dict[str, int]] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class RuleInfo:
    code: str
    severity: Severity
    summary: str
    help: str
    database: str = ""


_SIZE = "the table's size (row estimate)"
# fmt: off
_RULES: Final = (
    # --- data loss ---
    RuleInfo("DROP_TABLE", "error", "Drops a table that exists, with all its data.",
             "The rows are gone beyond undo without a backup, and code still reading the table "
             "fails. Stop using it in the application first; or rename it now and drop it in a "
             "later release, once nothing complained.", _SIZE),
    RuleInfo("DROP_COLUMN", "error", "Drops a column of an existing table, with its data.",
             "Code still selecting or inserting the column fails at once, and its values are "
             "lost. Deploy code that no longer uses it, then drop it in a later migration.", _SIZE),
    RuleInfo("TRUNCATE", "error", "Empties an existing table.",
             "Every row is gone beyond undo, under an ACCESS EXCLUSIVE lock. Use DELETE with a "
             "WHERE clause for data fixes; keep TRUNCATE for tables this change set creates.",
             _SIZE),
    RuleInfo("DELETE_WITHOUT_WHERE", "error", "DELETE without WHERE removes every row.",
             "All rows go in one transaction that locks them all. Add the WHERE clause you "
             "meant; if all rows are meant, delete in batches or drop the table.", _SIZE),
    RuleInfo("UPDATE_WITHOUT_WHERE", "warning", "UPDATE without WHERE rewrites every row.",
             "One transaction rewrites and locks every row (and doubles the table on disk until "
             "vacuum). Add the WHERE clause, or backfill in batches of a few thousand rows.",
             _SIZE),
    RuleInfo("DROP_OBJECT", "warning",
             "Drops a view, function, type, sequence, schema, extension, domain, trigger or "
             "policy that exists.",
             "Whatever depends on it (application queries, other views, column defaults, "
             "triggers) breaks. Stop using it first; drop it in a later release."),
    RuleInfo("DROP_CASCADE", "error", "DROP ... CASCADE or TRUNCATE ... CASCADE.",
             "CASCADE also removes (or empties) every dependent object, which the script does not "
             "name: views, foreign keys, referencing tables' rows. Drop the dependents "
             "explicitly, so the review sees them."),
    RuleInfo("DROP_DATABASE", "error", "Drops a whole database.",
             "Nothing in a migration should drop a database; do it by hand, after a backup."),
    RuleInfo("DROP_CONSTRAINT", "warning", "Drops a constraint of an existing table.",
             "The data it protected can now go wrong, and a unique or primary key constraint "
             "takes its index (and the speed of queries using it) along. Make sure the "
             "application no longer relies on it."),
    RuleInfo("DROP_NOT_NULL", "info", "Drops NOT NULL from an existing column.",
             "Readers that assume a value may get NULL. Deploy readers that handle NULL first."),
    RuleInfo("DROP_DEFAULT", "warning", "Drops the DEFAULT of an existing column.",
             "INSERTs that leave the column out now write NULL, or fail when it is NOT NULL, and "
             "the application code still deployed may do just that. Deploy code that writes the "
             "column first. The statement also takes an ACCESS EXCLUSIVE lock (briefly: "
             "nothing is scanned)."),
    # --- locks and rewrites ---
    RuleInfo("ACCESS_EXCLUSIVE_LOCK", "warning",
             "Takes an ACCESS EXCLUSIVE lock on an existing table.",
             "Every read and write of the table waits until the migration's transaction ends, "
             "and so does everything queued behind them. Keep the transaction short: one such "
             "statement per migration, nothing slow after it; the runner's lock_timeout makes it "
             "give up rather than stall the application.",
             _SIZE + "; the tables reached through foreign keys (DROP TABLE, DROP CONSTRAINT, "
             "TRUNCATE ... CASCADE), from pg_constraint"),
    RuleInfo("TABLE_REWRITE", "warning", "Rewrites an existing table and its indexes.",
             "The table is copied row by row under an ACCESS EXCLUSIVE lock: reads and writes "
             "wait for the whole copy. Add a new column, backfill it in batches and swap, or use "
             "a type change PostgreSQL does without a rewrite. Offline, lint says 'may rewrite' "
             "where only the catalog can tell.",
             "whether the type change rewrites (pg_cast, the column's current type and typmod, "
             "pg_proc volatility of defaults), and the table's size"),
    RuleInfo("INDEX_NOT_CONCURRENT", "warning",
             "Builds an index on an existing table without CONCURRENTLY.",
             "CREATE INDEX (and a PRIMARY KEY, UNIQUE or EXCLUDE constraint that builds one) "
             "blocks every write to the table for the whole build. Use CREATE [UNIQUE] INDEX "
             "CONCURRENTLY in a '-- patcher:no-transaction' migration, then ADD CONSTRAINT ... "
             "USING INDEX.", _SIZE),
    RuleInfo("DROP_INDEX_NOT_CONCURRENT", "warning", "DROP INDEX without CONCURRENTLY.",
             "Takes an ACCESS EXCLUSIVE lock on the index's table. Use DROP INDEX CONCURRENTLY in "
             "a '-- patcher:no-transaction' migration."),
    RuleInfo("REINDEX_NOT_CONCURRENT", "warning", "REINDEX without CONCURRENTLY.",
             "Blocks writes to the table (and reads using the index) for the whole rebuild. Use "
             "REINDEX ... CONCURRENTLY in a '-- patcher:no-transaction' migration."),
    RuleInfo("ADD_FOREIGN_KEY_VALIDATING", "warning",
             "Adds a FOREIGN KEY that checks every existing row at once.",
             "The check reads the whole table while writes to it and to the referenced table "
             "wait. Add it NOT VALID, then VALIDATE CONSTRAINT in a later migration (that takes "
             "a weaker lock).", _SIZE),
    RuleInfo("FOREIGN_KEY_LOCKS_REFERENCED", "warning",
             "A new foreign key also locks the existing table it references.",
             "ADD FOREIGN KEY, and CREATE TABLE ... REFERENCES, take SHARE ROW EXCLUSIVE on the "
             "referenced table: writes to it wait until the migration commits, even when the "
             "referencing table is new. Keep the transaction short.", _SIZE),
    RuleInfo("CREATE_TRIGGER_LOCKS_TABLE", "warning",
             "CREATE TRIGGER on an existing table blocks writes to it.",
             "CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the table: every write to it waits "
             "until the migration commits. Keep the transaction short; when the wait is the "
             "point (a trigger created before a backfill, so no write slips between the two), "
             "say so with a suppression.", _SIZE),
    RuleInfo("ADD_CHECK_VALIDATING", "warning",
             "Adds a CHECK constraint that checks every existing row at once.",
             "The table is read in full under an ACCESS EXCLUSIVE lock. Add it NOT VALID, then "
             "VALIDATE CONSTRAINT separately.", _SIZE),
    RuleInfo("DOMAIN_CONSTRAINT_VALIDATING", "warning",
             "ALTER DOMAIN ADD CONSTRAINT checks every column of that domain.",
             "Every table using the domain is read while it is locked. Add it NOT VALID, then "
             "ALTER DOMAIN ... VALIDATE CONSTRAINT."),
    RuleInfo("NOT_NULL_WITHOUT_DEFAULT", "error",
             "Adds a NOT NULL column without a DEFAULT to an existing table.",
             "It fails as soon as the table has a row. Give it a DEFAULT (a constant one costs "
             "no rewrite), or add it nullable, backfill, then set NOT NULL.", _SIZE),
    RuleInfo("SET_NOT_NULL_SCANS", "warning", "SET NOT NULL scans the whole table under lock.",
             "PostgreSQL reads every row under an ACCESS EXCLUSIVE lock to prove there is no "
             "NULL. First ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID and VALIDATE it; "
             "SET NOT NULL then skips the scan.", _SIZE),
    RuleInfo("DETACH_PARTITION_NOT_CONCURRENT", "warning",
             "DETACH PARTITION without CONCURRENTLY.",
             "Takes an ACCESS EXCLUSIVE lock on the parent table. Use DETACH PARTITION ... "
             "CONCURRENTLY in a '-- patcher:no-transaction' migration."),
    RuleInfo("RENAME", "warning", "Renames an existing object (table, column, index, "
             "constraint, sequence, trigger, type, view, schema, function...).",
             "Code and objects still using the old name fail at once. Add the new name alongside "
             "(a view, a copied column), deploy, then drop the old one."),
    RuleInfo("SET_SCHEMA", "warning", "Moves an existing object to another schema.",
             "Queries that name it by its old schema (or find it through search_path) fail; a "
             "table move takes an ACCESS EXCLUSIVE lock. Treat it like a rename."),
    # --- enums ---
    RuleInfo("ENUM_VALUE_ORDER", "info", "ALTER TYPE ... ADD VALUE without BEFORE or AFTER.",
             "The new value sorts after every existing one, which ORDER BY and comparisons on "
             "the column then follow. Say where it goes with BEFORE or AFTER."),
    RuleInfo("ENUM_VALUE_USED_IN_TRANSACTION", "error",
             "Uses an enum value added earlier in the same transaction.",
             "PostgreSQL refuses to use a value added by ALTER TYPE ... ADD VALUE before that "
             "transaction commits ('unsafe use of new value'). Add the value in a migration of "
             "its own."),
    # --- the runner's guarantees ---
    RuleInfo("RELEASES_RUN_LOCK", "error",
             "pg_advisory_unlock*() or DISCARD ALL releases the run's advisory lock.",
             "The run holds a session advisory lock so that only one runner migrates at a time; "
             "after this migration it must take the lock back, and stops with LockLost when "
             "another session took it. Never release locks a migration did not take."),
    RuleInfo("SESSION_STATE", "warning",
             "SET ROLE, SET SESSION AUTHORIZATION or SET search_path without a reset.",
             "The rest of the script runs as that role or with that search_path (the runner "
             "restores the session only after the migration). Use SET LOCAL, or RESET it in the "
             "same script, and schema-qualify names."),
    RuleInfo("TRIGGER_DISABLED", "warning",
             "ALTER TABLE ... DISABLE TRIGGER never enabled again in the script.",
             "The trigger stays off after the migration: whatever it keeps (audit rows, "
             "counters, search vectors) silently stops. ENABLE TRIGGER at the end of the same "
             "script; if it must stay off, drop it and say so."),
    RuleInfo("LOCK_TIMEOUT_DISABLED", "warning", "Sets lock_timeout (or statement_timeout) to 0.",
             "The runner sets a lock_timeout so that a statement waiting for a lock gives up "
             "instead of queueing the whole application behind it; 0 turns that off. Set a "
             "larger value with SET LOCAL if the migration needs one."),
    RuleInfo("TRANSACTION_CONTROL", "error", "BEGIN, COMMIT, ROLLBACK or SAVEPOINT in a script.",
             "The runner owns the transaction around each migration and its history row; a "
             "script that ends it breaks atomicity. The runner refuses such a script "
             "(InvalidSource). Remove it; use '-- patcher:no-transaction' for statements that "
             "cannot run in a transaction."),
    RuleInfo("CANNOT_RUN_IN_TRANSACTION", "error",
             "A statement PostgreSQL refuses inside a transaction block.",
             "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM, ALTER SYSTEM... Put "
             "it in a migration of its own with the '-- patcher:no-transaction' directive."),
    RuleInfo("MULTI_STATEMENT_NO_TRANSACTION", "warning",
             "A no-transaction script with more than one statement.",
             "A failure part-way leaves the earlier statements applied and the version dirty. "
             "Put one statement per migration, or make each safe to rerun (IF NOT EXISTS)."),
    # --- design (lint only) ---
    RuleInfo("PREFER_BIGINT", "info", "An int or smallint column (or key) where bigint belongs.",
             "32-bit keys and counters run out (2,147,483,647), and widening them later rewrites "
             "the table. Use bigint."),
    RuleInfo("PREFER_IDENTITY", "info", "A serial column where an identity column belongs.",
             "serial makes a sequence with odd ownership and permissions; use bigint GENERATED "
             "ALWAYS AS IDENTITY (or BY DEFAULT)."),
    RuleInfo("PREFER_TEXT", "info", "varchar(n) or char(n) where text belongs.",
             "A length limit is a business rule better kept in a CHECK constraint (changing it "
             "later can rewrite the table); char(n) pads with blanks. Use text, with a CHECK on "
             "length when it matters."),
    RuleInfo("PREFER_TIMESTAMPTZ", "info", "timestamp (without time zone) where timestamptz "
             "belongs.",
             "timestamp stores wall-clock time with no zone: values written from sessions in "
             "different zones cannot be compared. Use timestamptz."),
    RuleInfo("IDENTIFIER_TOO_LONG", "warning", "An identifier longer than 63 bytes.",
             "PostgreSQL silently cuts it to 63 bytes, so later statements naming it in full "
             "miss it, or two names collide. Shorten it."),
    # --- the analyzer ---
    RuleInfo("PARSE_UNSUPPORTED", "warning", "A statement the analyzer's parser cannot read.",
             "Either syntax newer than the PostgreSQL grammar pglast bundles, or a mistake "
             "PostgreSQL will refuse too; the statement's risks were not checked (the others "
             "were). Check it by hand, or with a dry run."),
    RuleInfo("ANALYZER_UNAVAILABLE", "error", "The SQL could not be checked at all.",
             "pglast, a dependency, does not import: the install is broken. Reinstall it."),
    # --- lint itself ---
    RuleInfo("UNUSED_SUPPRESSION", "warning",
             "A '-- patcher:ignore' comment that silenced nothing.",
             "The code it names did not fire where it applies (the next statement, or the file "
             "for a leading comment): remove it, or fix its code, so that it cannot hide a "
             "future finding by accident."),
)
# fmt: on

# The release rules (SPEC 11, lint only: patcher.sql.phases classifies, patcher.lint reports).
# fmt: off
_RELEASE_RULES: Final = (
    RuleInfo("BREAKS_PREVIOUS_RELEASE", "error",
             "A contract statement: a query or write of the previous release can fail after it.",
             "During the alias shift and after an alias rollback the previous release runs on "
             "the new schema. Do it in two releases (`patcher new --recipe NAME`: an expand "
             "version now, the contract version once the previous release is gone); "
             "`migrate --phase expand` holds this version until then.",
             "whether a dropped index is unique"),
    RuleInfo("MIXED_EXPAND_CONTRACT", "warning",
             "A version with both expand and contract statements.",
             "The expand phase holds the whole version, so its expand part waits for the "
             "release too. Split it: the expand statements in one version, the contract ones "
             "in a later one."),
    RuleInfo("CONTRACT_WITHOUT_DOWN", "warning",
             "A contract version with no down script.",
             "Once contract has run, an alias rollback to the previous release cannot be "
             "matched by a database rollback (`migrate --target` below it), so that release "
             "meets a schema it breaks on. Write the down script (restoring what contract "
             "removed), or plan to roll the application forward."),
)
# fmt: on

RULE_INFO: Final[dict[str, RuleInfo]] = {rule.code: rule for rule in _RULES}
RELEASE_RULE_INFO: Final[dict[str, RuleInfo]] = {rule.code: rule for rule in _RELEASE_RULES}
ALL_RULE_INFO: Final[dict[str, RuleInfo]] = {**RULE_INFO, **RELEASE_RULE_INFO}
DESIGN_CODES: Final = frozenset(rule.code for rule in _RULES if rule.severity == "info")


def info(code: str) -> RuleInfo:
    """The rule of a code (KeyError for an unknown one: every code the analyzer emits is here)."""
    return ALL_RULE_INFO[code]

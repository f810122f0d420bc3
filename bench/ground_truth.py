"""Ground truth for the dry run's claims: what it says a migration rewrites and locks, against
what PostgreSQL did when the migration ran.

Every migration of a corpus is applied one at a time to a real database. Before each, a dry
run with ``verify`` plans that one migration against the schema it really meets: its ``risks``
are the claims (``TABLE_REWRITE`` and ``ACCESS_EXCLUSIVE_LOCK`` on a table), its ``rewrites``
and ``locks`` the measurement (the relfilenodes that changed and the ``pg_locks`` its backend
held, in a rolled-back run). A no-transaction script cannot be verified: its rewrites are
measured around the real run (relfilenodes before and after), its locks are not measured. The
table gives precision (claims that happened) and recall (what happened that was claimed), and
every false and missed claim is listed. The goal is none of either.

    make ground-truth                                  # the generated corpus, a local cluster
    python -m bench.ground_truth [--corpus DIR] [--database-url URL] [--json OUT] [--strict]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from patcher.app.commands import migrate
from patcher.app.config import Config

REWRITE_CODES = frozenset({"TABLE_REWRITE"})
LOCK_CODES = frozenset({"ACCESS_EXCLUSIVE_LOCK"})
MEASURED_MODE = "AccessExclusiveLock"
HISTORY_TABLES = frozenset({"public.schema_migrations", "public.schema_migrations_log"})


@dataclass(frozen=True)
class Record:
    """One migration: what its dry run claimed, and what was measured (None: not measured)."""

    version: int
    file: str
    transactional: bool
    claimed_rewrites: frozenset[str]
    rewrites: frozenset[str] | None
    claimed_locks: frozenset[str]
    locks: frozenset[str] | None
    statements: dict[str, str] = field(default_factory=dict)  # table -> a claim's statement


@dataclass
class Score:
    """Claims against measurements for one kind (rewrites, or ACCESS EXCLUSIVE locks)."""

    true: int = 0
    false: list[tuple[Record, str]] = field(default_factory=list)
    missed: list[tuple[Record, str]] = field(default_factory=list)
    unmeasured: int = 0  # claims on migrations this kind could not be measured for

    @property
    def claimed(self) -> int:
        return self.true + len(self.false)

    @property
    def measured(self) -> int:
        return self.true + len(self.missed)

    @property
    def precision(self) -> float | None:
        return self.true / self.claimed if self.claimed else None

    @property
    def recall(self) -> float | None:
        return self.true / self.measured if self.measured else None


def score(records: Iterable[Record], kind: str) -> Score:
    """Precision and recall of ``kind`` ("rewrites" or "locks") over ``records``."""
    result = Score()
    for record in records:
        claimed: frozenset[str] = getattr(record, f"claimed_{kind}")
        measured: frozenset[str] | None = getattr(record, kind)
        if measured is None:
            result.unmeasured += len(claimed)
            continue
        result.true += len(claimed & measured)
        result.false += [(record, table) for table in sorted(claimed - measured)]
        result.missed += [(record, table) for table in sorted(measured - claimed)]
    return result


def collect(corpus: Path, dsn: str) -> list[Record]:
    """Apply every migration of ``corpus`` to ``dsn`` one by one; a dry run with verify first."""
    config = Config(source=str(corpus), database_url=dsn, lock_wait_seconds=5)
    records = []
    for version in _versions(corpus):
        preview = migrate(config, target=version, dry_run=True, verify=True).to_dict()
        entry = _only_entry(preview, version)
        before = None if entry["transactional"] else _relfilenodes(dsn)
        applied = migrate(config, target=version)
        if not applied.ok:
            raise SystemExit(f"ground truth: version {version} failed: {applied.error!r}")
        records.append(_record(entry, before, dsn))
    return records


def _versions(corpus: Path) -> list[int]:
    names = sorted(p.name for p in corpus.glob("*.up.sql"))
    if not names:
        raise SystemExit(f"ground truth: no *.up.sql in {corpus}")
    return sorted({int(name.split("_", 1)[0]) for name in names})


def _only_entry(result: dict[str, Any], version: int) -> dict[str, Any]:
    """The one planned migration of a dry run; refuses a failed preview (the corpus is wrong)."""
    entries = result["migrations"]
    if not result["ok"] or len(entries) != 1 or entries[0]["version"] != version:
        raise SystemExit(f"ground truth: the dry run of version {version} failed: {result}")
    entry: dict[str, Any] = entries[0]
    if entry["transactional"] and not entry.get("verified"):
        raise SystemExit(f"ground truth: version {version} was not verified: {entry}")
    return entry


def _record(entry: dict[str, Any], before: dict[int, int] | None, dsn: str) -> Record:
    risks = entry.get("risks") or []
    rewrites = _claims(risks, REWRITE_CODES)
    locks = _claims(risks, LOCK_CODES)
    statements = {_table(r["table"]): r["statement"] for r in risks if r.get("table")}
    if before is None:  # verified: the rolled-back run's own record
        measured_rewrites = frozenset(entry.get("rewrites") or ()) - HISTORY_TABLES
        measured_locks: frozenset[str] | None = (
            frozenset(
                lock["relation"]
                for lock in entry.get("locks") or ()
                if lock["mode"] == MEASURED_MODE
            )
            - HISTORY_TABLES
        )
    else:  # no-transaction: the storage that changed during the real run
        after = _relfilenodes(dsn)
        names = _names(dsn, before)
        changed = {oid for oid, node in before.items() if after.get(oid, node) != node}
        measured_rewrites = frozenset(names[oid] for oid in changed) - HISTORY_TABLES
        measured_locks = None
    return Record(
        version=entry["version"],
        file=f"{entry['version']:04d}_{entry['description']}",
        transactional=bool(entry["transactional"]),
        claimed_rewrites=rewrites,
        rewrites=measured_rewrites,
        claimed_locks=locks,
        locks=measured_locks,
        statements=statements,
    )


def _claims(risks: list[dict[str, Any]], codes: frozenset[str]) -> frozenset[str]:
    return frozenset(_table(r["table"]) for r in risks if r["code"] in codes and r.get("table"))


def _table(name: str) -> str:
    """``schema.table`` as verify names it (an unqualified name is in ``public``)."""
    return name if "." in name else f"public.{name}"


_RELATIONS = (
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
)


def _relfilenodes(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.oid::bigint, coalesce(pg_relation_filenode(c.oid), 0)::bigint " + _RELATIONS
        ).fetchall()
    return {int(oid): int(node) for oid, node in rows}


def _names(dsn: str, oids: Iterable[int]) -> dict[int, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.oid::bigint, n.nspname || '.' || c.relname " + _RELATIONS
        ).fetchall()
    wanted = set(oids)
    return {int(oid): str(name) for oid, name in rows if int(oid) in wanted}


# -- the report -----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def report(records: list[Record], server: str = "") -> str:
    """The table and the lists, as printed."""
    notx = [r for r in records if not r.transactional]
    lines = [
        f"ground truth: {len(records)} migrations applied one by one"
        + (f" on {server}" if server else ""),
        f"  {len(records) - len(notx)} verified in a rolled-back run; {len(notx)} "
        "no-transaction (rewrites measured around the real run, locks not measured)",
        "",
        f"{'':24}{'measured':>9}{'claimed':>9}{'true':>6}{'false':>7}{'missed':>8}"
        f"{'precision':>11}{'recall':>9}",
    ]
    scores = {"rewrites": score(records, "rewrites"), "locks": score(records, "locks")}
    for label, s in (("rewrites", scores["rewrites"]), ("ACCESS EXCLUSIVE locks", scores["locks"])):
        lines.append(
            f"{label:24}{s.measured:>9}{s.claimed:>9}{s.true:>6}{len(s.false):>7}"
            f"{len(s.missed):>8}{_pct(s.precision):>11}{_pct(s.recall):>9}"
        )
    if scores["locks"].unmeasured:
        lines.append(
            f"  not scored: {scores['locks'].unmeasured} ACCESS EXCLUSIVE claim(s) on "
            "no-transaction scripts, whose locks are not measured"
        )
    for title, pairs in (
        ("false rewrite claims (claimed, did not happen)", scores["rewrites"].false),
        ("missed rewrites (happened, not claimed)", scores["rewrites"].missed),
        ("false ACCESS EXCLUSIVE claims", scores["locks"].false),
        ("missed ACCESS EXCLUSIVE locks", scores["locks"].missed),
    ):
        lines += ["", f"{title}: {len(pairs)}"]
        lines += [f"  {record.file:44} {table}" for record, table in pairs]
    return "\n".join(lines)


def summary(records: list[Record]) -> dict[str, Any]:
    """The figures and lists as JSON, for whoever fixes the rules."""
    out: dict[str, Any] = {"migrations": len(records)}
    for kind in ("rewrites", "locks"):
        s = score(records, kind)
        out[kind] = {
            "measured": s.measured, "claimed": s.claimed, "true": s.true,
            "precision": s.precision, "recall": s.recall,
            "false": [{"file": r.file, "table": t} for r, t in s.false],
            "missed": [{"file": r.file, "table": t} for r, t in s.missed],
        }  # fmt: skip
    out["records"] = [
        {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(r).items()}
        for r in records
    ]
    return out


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """The given (empty) database, or a fresh one on a throwaway local cluster."""
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        if row and row[0]:
            raise SystemExit("ground truth: --database-url must name an empty database")
        yield url
        return
    from bench.common import Settings, cluster, database

    with cluster(Settings()) as server, database(server) as dsn:
        yield dsn


def _server(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('server_version'), current_setting('TimeZone')")
        version, zone = row.fetchone() or ("?", "?")
    return f"PostgreSQL {version} (TimeZone {zone})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ground_truth", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="a migrations directory (default: generated)")
    parser.add_argument("--database-url", help="an empty database (default: a local cluster)")
    parser.add_argument("--json", type=Path, help="also write the figures and lists here")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any false or missed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch, _database(args.database_url) as dsn:
        corpus = args.corpus
        if corpus is None:
            from bench.ground_truth_corpus import write

            corpus = Path(scratch)
            write(corpus)
        records = collect(corpus, dsn)
        server = _server(dsn)
    if args.json:  # before printing: a reader that leaves early (| head) must not lose it
        args.json.write_text(json.dumps(summary(records), indent=2))
    print(report(records, server))
    wrong = [s for k in ("rewrites", "locks") for s in (score(records, k),) if s.false or s.missed]
    return 1 if args.strict and wrong else 0


if __name__ == "__main__":
    sys.exit(main())

"""``patcher lint DIR`` against its deployed base (issue 28 item 6): files present at the base
commit are deployed (their objects exist), the files added or changed since are the change set;
``--database-url`` reads what exists from the catalog. Real git repositories, real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from patcher.cli.main import main

REPO = Path(__file__).resolve().parents[2]

DEPLOYED = {
    "0001_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, name text, age integer);\n",
    "0001_users.down.sql": "-- patcher:ignore DROP_TABLE,ACCESS_EXCLUSIVE_LOCK a rollback\n"
    "DROP TABLE users;\n",
    "0002_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);\n",
}
CHANGE = {  # each statement fires on a deployed table, and only because it is deployed
    "0003_profile.up.sql": "ALTER TABLE users ADD COLUMN bio text;\n"
    "CREATE INDEX users_name ON users (name);\n"
    "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);\n",
    "0003_profile.down.sql": "ALTER TABLE users DROP COLUMN bio;\n",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def repository(root: Path, deployed: dict[str, str]) -> Path:
    """A git work tree whose main branch has ``deployed`` in migrations/; HEAD on a branch."""
    directory = root / "migrations"
    directory.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    for name, text in deployed.items():
        (directory / name).write_text(text)
    git(root, "add", ".")
    git(root, "commit", "-q", "--allow-empty", "-m", "deployed")
    git(root, "checkout", "-q", "-b", "feature")
    return directory


def add(directory: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (directory / name).write_text(text)
    return [str(directory / name) for name in files]


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code, out, err = lint(capsys, "--format", "json", "--fail-on", "never", *args)
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def found(report: dict[str, object]) -> list[tuple[object, ...]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [(f["file"], f["line"], f["code"], f.get("table")) for f in findings]


def test_a_deployed_base_flags_what_the_changed_files_alone_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = repository(tmp_path / "repo", DEPLOYED)
    changed = add(directory, CHANGE)
    git(directory, "add", ".")
    git(directory, "commit", "-q", "-m", "change")
    alone = found(as_json(capsys, *changed))
    assert {code for _, _, code, _ in alone} >= {
        "ACCESS_EXCLUSIVE_LOCK", "INDEX_NOT_CONCURRENT", "TABLE_REWRITE", "DROP_COLUMN",
    }  # fmt: skip
    with_base = as_json(capsys, "--base", "main", str(directory))
    assert found(with_base) == alone
    assert with_base["files"] == sorted(changed, key=lambda p: p.endswith("down.sql"))
    assert str(with_base["base"]).startswith("base: main (")
    assert "3 files deployed there (not linted), 2 added or changed since" in str(with_base["base"])

    # The whole directory with no base: users and orders are new, so nearly nothing is seen.
    plain = tmp_path / "plain"
    shutil.copytree(directory, plain)
    everything = as_json(capsys, str(plain))
    assert not [f for f in found(everything) if str(f[0]).endswith("0003_profile.up.sql")]
    assert "not in a git work tree" in str(everything["base"])


def test_the_default_base_is_the_merge_base_with_the_default_branch_and_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = repository(tmp_path / "repo", DEPLOYED)
    merge_base = git(directory, "rev-parse", "main")
    git(directory, "checkout", "-q", "main")  # main moves on after the branch was made
    (directory / "0002_orders.up.sql").write_text(
        "-- edited on main\n" + DEPLOYED["0002_orders.up.sql"]
    )
    git(directory, "commit", "-q", "-am", "main moves")
    git(directory, "checkout", "-q", "feature")
    changed = add(directory, CHANGE)  # not even committed: the work tree is what is linted
    code, out, _ = lint(capsys, str(directory))
    assert code == 1  # the change's warnings and errors
    first = out.splitlines()[0]
    assert first == (
        f"base: merge base of HEAD and main ({merge_base[:8]}): 3 files deployed there "
        "(not linted), 2 added or changed since (the change set)"
    )
    assert found(as_json(capsys, str(directory))) == found(as_json(capsys, *changed))

    # A clone: origin/HEAD names the default branch, and a file edited since counts as changed.
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "-b", "main", str(tmp_path / "repo"), str(clone)], check=True
    )
    git(clone, "remote", "set-head", "origin", "main")  # the remote's HEAD is feature here
    (clone / "migrations" / "0001_users.up.sql").write_text("CREATE TABLE users (id int);\n")
    report = as_json(capsys, str(clone / "migrations"))
    assert str(report["base"]).startswith("base: merge base of HEAD and origin/main (")
    assert report["files"] == [str(clone / "migrations" / "0001_users.up.sql")]

    # A CI checkout: detached HEAD, no origin/HEAD, no local main: origin/main is the base.
    git(clone, "checkout", "-q", "--detach")
    git(clone, "branch", "-q", "-D", "main")
    git(clone, "remote", "set-head", "origin", "-d")
    report = as_json(capsys, str(clone / "migrations"))
    assert str(report["base"]).startswith("base: merge base of HEAD and origin/main (")
    assert report["files"] == [str(clone / "migrations" / "0001_users.up.sql")]
    git(clone, "update-ref", "-d", "refs/remotes/origin/main")
    git(clone, "update-ref", "-d", "refs/remotes/origin/feature")
    report = as_json(capsys, str(clone / "migrations"))
    assert str(report["base"]).startswith("no base: the repository at ")
    assert len(report["files"]) == 3  # type: ignore[arg-type]


def test_bad_base_and_no_git_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = repository(tmp_path / "repo", DEPLOYED)
    code, out, err = lint(capsys, "--base", "no-such-branch", str(directory))
    assert (code, out) == (2, "")
    assert "--base no-such-branch: no such commit in the repository at" in err
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "1_x.up.sql").write_text("SELECT 1;\n")
    code, out, err = lint(capsys, "--base", "main", str(plain))
    assert (code, out) == (2, "")
    assert "is not inside a git work tree" in err and "drop --base" in err


def test_the_shipped_migrations_lint_clean_in_every_pull_request_and_as_a_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each version as its pull request saw it (the versions before it deployed), and the whole
    directory as new: exit 0, every intended finding suppressed with its reason."""
    shipped = sorted((REPO / "migrations").glob("*.sql"))
    versions = sorted({p.name[:4] for p in shipped})
    directory = repository(tmp_path / "repo", {})
    for version in versions:
        mine = [p for p in shipped if p.name.startswith(version)]
        add(directory, {p.name: p.read_text() for p in mine})
        code, out, _ = lint(capsys, "--base", "HEAD", str(directory))
        assert code == 0, out
        assert f"{len(mine)} added or changed since" in out.splitlines()[0]
        git(directory, "add", ".")
        git(directory, "commit", "-q", "-m", version)
    code, out, _ = lint(capsys, str(REPO / "migrations"))
    assert code == 0, out
    plain = tmp_path / "plain"
    shutil.copytree(REPO / "migrations", plain)
    code, out, _ = lint(capsys, str(plain))
    assert code == 0, out
    assert "not in a git work tree" in out


def test_database_url_reads_what_exists_from_the_catalog(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS lint_users")
        conn.execute("CREATE TABLE lint_users (id bigint, name varchar(20), avatar bytea)")
        conn.execute("INSERT INTO lint_users SELECT g, 'n', '' FROM generate_series(1, 500) g")
        conn.execute("ANALYZE lint_users")
    directory = tmp_path / "m"
    directory.mkdir()
    add(directory, {
        "0001_x.up.sql": "ALTER TABLE lint_users ALTER COLUMN name TYPE text;\n"
        "ALTER TABLE lint_users RENAME COLUMN avatar TO picture;\n"
        "ALTER TABLE lint_users ALTER COLUMN picture TYPE text;\n"
        "CREATE INDEX ghosts_a ON ghosts (a);\n",
    })  # fmt: skip
    offline = as_json(capsys, str(directory))
    assert [code for _, _, code, _ in found(offline)].count("TABLE_REWRITE") == 2  # "may"
    assert "INDEX_NOT_CONCURRENT" in [code for _, _, code, _ in found(offline)]

    online = as_json(capsys, "--database-url", pg_dsn, str(directory))
    rewrites = [f for f in online["findings"] if f["code"] == "TABLE_REWRITE"]  # type: ignore[union-attr]
    assert [f["line"] for f in rewrites] == [3]  # bytea -> text rewrites; varchar -> text not
    assert "(~500 rows)" in rewrites[0]["message"]
    assert "ghosts" not in json.dumps(online["findings"])  # the database has no such table
    assert str(online["database"]).startswith("database: what exists is what ")

    code, out, err = lint(
        capsys, "--database-url", "postgresql://nobody@127.0.0.1:1/x", str(directory)
    )
    assert (code, out) == (2, "")
    assert "cannot connect to PostgreSQL" in err

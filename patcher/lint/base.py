"""The deployed base of ``patcher lint``: which files of a directory are already deployed.

A migration file present, unchanged, at the base git commit is deployed: what it created exists
before the change set, and it is not linted. The files added or changed since (in the work tree,
committed or not) are the change set. The base is ``--base REF`` (any commit git resolves: a
branch, tag, sha, ``origin/main``); by default, for a directory inside a git work tree, the merge
base of ``HEAD`` with the default branch (``origin/HEAD``, else ``main``, else ``master``, else
``origin/main`` or ``origin/master``).
Outside a work tree, or with no default branch, there is no base and every file is the change:
the report says which it was.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from patcher.lint.files import LintFile, LintUsageError

# origin/main and origin/master last: a CI checkout (detached HEAD, no local branch) has those.
_DEFAULT_BRANCHES: Final = ("origin/HEAD", "main", "master", "origin/main", "origin/master")


@dataclass(frozen=True)
class Base:
    """A resolved base: the commit, and how the report names it."""

    root: Path  # the work tree's top level
    commit: str
    said: str  # e.g. "merge base of HEAD and origin/main (1a2b3c4d)"


def _git(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def _root(directory: Path) -> Path | None:
    try:
        done = _git(directory, "rev-parse", "--show-toplevel")
    except OSError:  # no git installed
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def _commit(root: Path, ref: str) -> str | None:
    done = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}")
    return done.stdout.strip() if done.returncode == 0 else None


def explicit(directory: Path, ref: str) -> Base:
    """``--base REF`` for a directory: LintUsageError when it is no work tree or no commit."""
    root = _root(directory)
    if root is None:
        raise LintUsageError(
            f"--base {ref}: {directory} is not inside a git work tree (or git is not "
            "installed), so no file can be told deployed; run lint from a checkout, or drop "
            "--base to lint every file as new"
        )
    commit = _commit(root, ref)
    if commit is None:
        raise LintUsageError(
            f"--base {ref}: no such commit in the repository at {root}; give a branch, tag or "
            "commit that exists there (git fetch it first, e.g. origin/main)"
        )
    return Base(root, commit, f"{ref} ({commit[:8]})")


def default(directory: Path) -> tuple[Base | None, str]:
    """The default base of a directory, or None with the reason there is none."""
    root = _root(directory)
    if root is None:
        return None, f"no base: {directory} is not in a git work tree, every file is linted as new"
    head = _commit(root, "HEAD")
    for branch in _DEFAULT_BRANCHES:
        if head is None or _commit(root, branch) is None:
            continue
        shown = branch
        if branch == "origin/HEAD":
            named = _git(root, "rev-parse", "--abbrev-ref", "origin/HEAD").stdout.strip()
            shown = named or branch
        merge = _git(root, "merge-base", "HEAD", branch)
        if merge.returncode == 0:
            commit = merge.stdout.strip()
            return Base(root, commit, f"merge base of HEAD and {shown} ({commit[:8]})"), ""
    return None, (
        f"no base: the repository at {root} has no commit, or no origin/HEAD, main or master "
        "(local or origin/) to compare with; every file is linted as new (give --base REF)"
    )


def select(
    paths: list[str], files: list[LintFile], ref: str | None
) -> tuple[list[LintFile], str | None]:
    """The files to lint and the line that says which base decided it (None: no directory).

    ``--base`` applies to every local path; without it, the first directory inside a git work
    tree gives the default base. S3 paths have no base: all their files are linted."""
    local = [Path(p.removeprefix("file://")) for p in paths if not p.startswith("s3://")]
    directories = [p for p in local if p.is_dir()]
    if ref is not None:
        if not local:
            raise LintUsageError(
                f"--base {ref}: only local paths in a git work tree have a base; S3 files are "
                "all linted (drop --base)"
            )
        base = explicit(directories[0] if directories else local[0].parent, ref)
    elif directories:
        found, why = default(directories[0])
        if found is None:
            return files, why
        base = found
    else:
        return files, None
    kept, deployed = changed(base, files)
    note = (
        f"base: {base.said}: {deployed} file{'s' if deployed != 1 else ''} deployed there "
        f"(not linted), {len(kept)} added or changed since (the change set)"
    )
    return kept, note


def changed(base: Base, files: list[LintFile]) -> tuple[list[LintFile], int]:
    """The files of ``files`` not deployed at ``base`` (added or changed since), and how many
    were deployed. A file is deployed when the base commit has it with the same content."""
    local = {f: Path(f.obj.key).resolve() for f in files if not f.shown.startswith("s3://")}
    at_base = _blobs(base, {p.parent for p in local.values()})
    candidates = [f for f, path in local.items() if path in at_base]
    deployed: set[LintFile] = set()
    if candidates:
        paths = "\n".join(str(local[f]) for f in candidates) + "\n"
        done = _git(base.root, "hash-object", "--stdin-paths", stdin=paths)
        if done.returncode != 0:
            raise LintUsageError(f"git hash-object failed: {done.stderr.strip()}")
        for lint_file, blob in zip(candidates, done.stdout.split(), strict=True):
            if at_base[local[lint_file]] == blob:
                deployed.add(lint_file)
    return [f for f in files if f not in deployed], len(deployed)


def _blobs(base: Base, directories: set[Path]) -> dict[Path, str]:
    """Every file the base commit has in those directories: absolute path -> blob sha."""
    out: dict[Path, str] = {}
    for directory in directories:
        try:
            relative = directory.relative_to(base.root.resolve())
        except ValueError:
            continue  # another repository's directory: nothing there is deployed at this base
        done = _git(base.root, "ls-tree", "-z", base.commit, "--", f"{relative.as_posix()}/")
        if done.returncode != 0:
            raise LintUsageError(f"git ls-tree {base.commit[:8]} failed: {done.stderr.strip()}")
        for entry in filter(None, done.stdout.split("\0")):
            meta, _, path = entry.partition("\t")
            _mode, kind, sha = meta.split()
            if kind == "blob":
                out[(base.root.resolve() / path).resolve()] = sha
    return out

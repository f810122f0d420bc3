"""The README is the front door, the docs site (mkdocs.yml, docs/) the reference.

The README stays short, shows the two commands on its first screen, and its links into docs/
land on a page and heading that exist. The site builds with ``mkdocs build --strict`` (what
``make docs`` and CI run), and that build refuses a link to a missing anchor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 250
FIRST_SCREEN = 25  # lines of a terminal, or of GitHub's page above the fold
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def headings(page: Path) -> list[str]:
    """The page's headings, outside fenced code blocks."""
    found, fenced = [], False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            found.append(m.group(1))
    return found


def slug(heading: str) -> str:
    """The anchor GitHub (and mkdocs' toc, for these headings) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move reference text "
        "into a page of docs/ and link it"
    )


def test_first_screen_has_the_two_commands() -> None:
    first = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    assert re.search(r"^make run\b", first, re.M), first
    assert re.search(r"^make test\b", first, re.M), first


def test_readme_links_into_docs_resolve() -> None:
    targets = [t for t in LINK.findall(README.read_text()) if t.startswith("docs/")]
    assert len(targets) >= 15  # the table of pages, at least
    for target in targets:
        path, _, anchor = target.partition("#")
        page = REPO / path
        assert page.is_file(), f"README links to {target}: no file {path}"
        if anchor:
            slugs = [slug(h) for h in headings(page)]
            assert anchor in slugs, f"README links to {target}: {path} has no heading {anchor!r}"


def test_every_page_is_in_the_nav() -> None:
    config = (REPO / "mkdocs.yml").read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert re.search(rf":\s+{re.escape(page.name)}$", config, re.M), page.name


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )


def test_the_site_builds_strict(tmp_path: Path) -> None:
    proc = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "lint" / "index.html").is_file()


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    with (tmp_path / "docs" / "decisions.md").open("a") as page:
        page.write("\nSee [the rules](lint.md#no-such-heading).\n")
    proc = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "does not contain an anchor '#no-such-heading'" in proc.stderr, proc.stderr

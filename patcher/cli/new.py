"""``patcher new``: write the next numbered up/down pair."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from patcher.app.environment import load_source_dir
from patcher.app.recipes import write_recipe
from patcher.app.scaffold import next_version
from patcher.core.errors import InvalidRequest


def new_migration(description: str, directory: str | None, *, down: bool = True) -> list[Path]:
    """Create ``<next>_<description>.up.sql`` (and ``.down.sql``); return the paths written."""
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    if not slug:
        raise InvalidRequest(f"description {description!r} has no letters or digits")
    folder = Path(directory or load_source_dir())
    folder.mkdir(parents=True, exist_ok=True)
    version = next_version(folder)
    paths = [folder / f"{version}_{slug}.up.sql"]
    if down:
        paths.append(folder / f"{version}_{slug}.down.sql")
    for path in paths:
        direction = "up" if path.name.endswith(".up.sql") else "down"
        path.write_text(
            f"-- {direction}: {description}\n"
            "-- Runs in one transaction with its history row. For CREATE INDEX CONCURRENTLY\n"
            "-- and friends, make the first line: -- patcher:no-transaction\n\n"
        )
    return paths


def add_recipe_flags(parser: Any) -> None:
    """``patcher new --recipe NAME --table T ...`` (SPEC 12): the recipe's arguments."""
    parser.add_argument(
        "--recipe",
        help="rename-column, change-type, set-not-null, add-check, add-foreign-key, add-unique",
    )
    parser.add_argument("--table", help="recipe: the table (a plain identifier)")
    parser.add_argument(
        "--column",
        help="recipe: the column it changes (add-unique: one or several, a,b; a duplicate gets "
        "--fix in the last)",
    )
    parser.add_argument("--to", help="rename-column / change-type: the new column's name")
    parser.add_argument("--type", help="rename-column / change-type: the new column's type")
    parser.add_argument("--from-type", help="change-type: the old column's type (for the down)")
    parser.add_argument(
        "--default",
        help="set-not-null: the value written where NULL was; rename-column / change-type: "
        "the old column's default (the new column gets it at contract)",
    )
    parser.add_argument(
        "--not-null",
        action="store_true",
        default=None,
        help="rename-column / change-type: the old column is NOT NULL (so is the new one, "
        "from contract)",
    )
    parser.add_argument("--references", help="add-foreign-key: TABLE(COLUMN) it references")
    parser.add_argument("--check", help="add-check: the CHECK expression")
    parser.add_argument(
        "--fix", help="add-check / add-unique: the value written instead of a refused one"
    )


def new_command(args: Any) -> list[Path]:
    """``patcher new``: a recipe's versions with ``--recipe``, else one described pair."""
    folder = args.dir
    if args.recipe is None:
        stray = [f"--{f}" for f in RECIPE_FLAGS if getattr(args, f) is not None]
        if stray:
            raise InvalidRequest(f"{', '.join(stray)} only go with --recipe NAME")
        if not args.description:
            raise InvalidRequest("give a description (patcher new 'add votes') or --recipe NAME")
        return new_migration(args.description, folder, down=not args.no_down)
    if args.description:
        raise InvalidRequest(
            f"--recipe {args.recipe} takes no description ({args.description!r}): "
            "the recipe names its files"
        )
    if args.no_down:
        raise InvalidRequest("--no-down does not go with --recipe: every recipe version has a down")
    values = {f: getattr(args, f) for f in RECIPE_FLAGS}
    return write_recipe(args.recipe, values, Path(folder or load_source_dir()))


RECIPE_FLAGS = (
    "table",
    "column",
    "to",
    "type",
    "from_type",
    "default",
    "not_null",
    "check",
    "fix",
    "references",
)

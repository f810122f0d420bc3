"""The up or down part of a one-file layout's file (dbmate, goose), with its transaction mode.

A section keeps the file's line numbers: every line outside it (and each marker line) becomes
an empty line, so errors and risks name the line of the file itself. The checksum stays that of
the whole file (``sql/scripts.py`` takes it from the bytes). Markers follow the tools' own
parsers: dbmate's ``-- migrate:up [transaction:false]`` / ``-- migrate:down``; goose's
``-- +goose Up`` / ``Down`` / ``StatementBegin`` / ``StatementEnd`` / ``NO TRANSACTION``,
annotations starting in the first column. What they refuse is refused here too, naming the line;
StackFlowPatcher also refuses what it cannot run faithfully (a second up or down section,
goose's ``ENVSUB``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from patcher.core.errors import InvalidSource, Irreversible
from patcher.core.models import Direction, SourceObject

_DBMATE = re.compile(r"^--\s*migrate:(up|down)(\s*$|\s+\S.*$)")
_COMMENT_OR_BLANK = re.compile(r"^\s*(?:--.*)?$")
_GOOSE_ANNOTATIONS = {
    "up": "Up", "down": "Down", "statementbegin": "StatementBegin",
    "statementend": "StatementEnd", "no transaction": "NO TRANSACTION",
    "envsub on": "ENVSUB ON", "envsub off": "ENVSUB OFF",
}  # fmt: skip


@dataclass
class Sections:
    """Where each section's lines are (0-based, end exclusive) and the modes the file sets."""

    lines: list[str]
    spans: dict[Direction, tuple[int, int]] = field(default_factory=dict)
    no_transaction: set[Direction] = field(default_factory=set)
    skip: set[int] = field(default_factory=set)  # marker lines inside a section


def section(obj: SourceObject, text: str) -> tuple[str, bool]:
    """The text of ``obj``'s section (other lines blanked) and whether the layout asks for it
    to run outside a transaction. Raises InvalidSource for a malformed file, Irreversible for
    a down section the file does not have."""
    form = obj.form
    assert form is not None and form.section is not None
    parsed = _dbmate(obj.name, text) if form.layout == "dbmate" else _goose(obj.name, text)
    span = parsed.spans.get(form.section)
    if span is None:
        raise no_down(obj)
    start, end = span
    kept = [
        line if start <= i < end and i not in parsed.skip else ""
        for i, line in enumerate(parsed.lines[:end])
    ]
    return "\n".join(kept) + "\n", form.section in parsed.no_transaction


def no_down(obj: SourceObject) -> Irreversible:
    marker = "-- migrate:down" if obj.form and obj.form.layout == "dbmate" else "-- +goose Down"
    return Irreversible(
        f"{obj.name} has no statements under '{marker}': the version is irreversible, so a "
        "rollback that would cross it is refused before anything is changed. Write the down "
        "statements in that section, or roll back to a target above this version",
        file=obj.name,
    )


def _refuse(name: str, line: int, why: str) -> InvalidSource:
    return InvalidSource(f"{name} line {line}: {why}", file=name, line=line)


def _dbmate(name: str, text: str) -> Sections:
    parsed = Sections(text.split("\n"))
    seen: dict[str, int] = {}
    for i, line in enumerate(parsed.lines):
        match = _DBMATE.match(line)
        if match is None:
            if not seen and not _COMMENT_OR_BLANK.match(line):
                raise _refuse(
                    name, i + 1, "a statement before '-- migrate:up'; dbmate files start with "
                    "'-- migrate:up' (comments may precede it): move it into a section"
                )  # fmt: skip
            continue
        which = match[1]
        if which in seen:
            raise _refuse(
                name, i + 1, f"a second '-- migrate:{which}' section (the first is on line "
                f"{seen[which]}); StackFlowPatcher takes one up and one down section per file: "
                "split it into two versions"
            )  # fmt: skip
        if which == "down" and "up" not in seen:
            raise _refuse(name, i + 1, "'-- migrate:down' before '-- migrate:up'; put up first")
        seen[which] = i + 1
        if "transaction:false" in match[2].split():
            parsed.no_transaction.add("up" if which == "up" else "down")
    if "up" not in seen:
        raise _refuse(
            name, 1, "no '-- migrate:up' line; a dbmate file has '-- migrate:up' then "
            "'-- migrate:down', each on a line of its own"
        )  # fmt: skip
    if "down" not in seen:
        raise _refuse(
            name, len(parsed.lines), "no '-- migrate:down' line (dbmate requires one); add "
            "it, with nothing under it if the version cannot be reverted"
        )  # fmt: skip
    up, down = seen["up"], seen["down"]  # 1-based marker lines: sections start after them
    parsed.spans = {"up": (up, down - 1), "down": (down, len(parsed.lines))}
    return parsed


def _goose(name: str, text: str) -> Sections:
    parsed = Sections(text.split("\n"))
    current: Direction | None = None
    begun: int | None = None  # line of an open StatementBegin
    starts: dict[Direction, int] = {}
    for i, line in enumerate(parsed.lines):
        stripped = line.strip()
        if not (stripped.startswith("--") and "+goose" in line):
            if current is None and not _COMMENT_OR_BLANK.match(line):
                raise _refuse(
                    name, i + 1, "a statement before '-- +goose Up'; goose files start with "
                    "'-- +goose Up' (comments may precede it): move it into a section"
                )  # fmt: skip
            continue
        command = _annotation(name, i + 1, line)
        if command in ("Up", "Down"):
            current = _goose_section(name, i + 1, command, current, begun, starts)
        elif command == "StatementBegin":
            if current is None or begun is not None:
                raise _refuse(
                    name,
                    i + 1,
                    "'-- +goose StatementBegin' must follow "
                    "'-- +goose Up' or '-- +goose Down' and close before the next",
                )
            begun = i + 1
        elif command == "StatementEnd":
            if begun is None:
                raise _refuse(
                    name,
                    i + 1,
                    "'-- +goose StatementEnd' without a '-- +goose StatementBegin' before it",
                )
            begun = None
        elif command == "NO TRANSACTION":
            parsed.no_transaction.update(("up", "down"))
        else:
            raise _refuse(
                name,
                i + 1,
                f"'-- +goose {command}' (environment substitution) is "
                "not supported: write the values into the script",
            )
        parsed.skip.add(i)
    if begun is not None:
        raise _refuse(
            name,
            begun,
            "'-- +goose StatementBegin' is never closed: add "
            "'-- +goose StatementEnd' after the statement",
        )
    if "up" not in starts:
        raise _refuse(
            name,
            1,
            "no '-- +goose Up' line; a goose file has '-- +goose Up' "
            "then, optionally, '-- +goose Down'",
        )
    down = starts.get("down")
    parsed.spans["up"] = (starts["up"], len(parsed.lines) if down is None else down - 1)
    if down is not None:
        parsed.spans["down"] = (down, len(parsed.lines))
    return parsed


def _annotation(name: str, line_no: int, line: str) -> str:
    if line[:1] in (" ", "\t"):
        raise _refuse(name, line_no, "a goose annotation must start in the first column")
    command = line.replace("--", "").replace("+goose", "", 1).strip()
    known = _GOOSE_ANNOTATIONS.get(" ".join(command.lower().split()))
    if known is None:
        raise _refuse(
            name, line_no, f"unknown goose annotation {command!r}; known: "
            + ", ".join(_GOOSE_ANNOTATIONS.values())
        )  # fmt: skip
    return known


def _goose_section(
    name: str,
    line_no: int,
    command: str,
    current: Direction | None,
    begun: int | None,
    starts: dict[Direction, int],
) -> Direction:
    which: Direction = "up" if command == "Up" else "down"
    if which in starts:
        raise _refuse(
            name, line_no, f"a second '-- +goose {command}' (the first is on line "
            f"{starts[which]}); keep one up and one down section per file"
        )  # fmt: skip
    if begun is not None:
        raise _refuse(
            name,
            begun,
            "'-- +goose StatementBegin' is never closed before "
            f"'-- +goose {command}' on line {line_no}: add '-- +goose StatementEnd'",
        )
    if which == "down" and current is None:
        raise _refuse(name, line_no, "'-- +goose Down' before '-- +goose Up'; put up first")
    starts[which] = line_no
    return which

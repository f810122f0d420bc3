"""Writing a result to a stream without building it whole (SPEC section 7 item 7).

A dry run's result holds each script's SQL. ``json.dumps`` of it, then the encoded bytes, would
be two more copies of a 50 MB preview beside the one the result holds; here a long string is
escaped and written slice by slice, so printing costs a few slices on top of the result. The
JSON is byte for byte what ``json.dumps(value, indent=2, default=str)`` writes.

``output_format`` and ``write_result`` choose and write a command's format (text, json,
markdown) for every command that prints a result (``main``, ``invoke``, ``render``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _escaped
from typing import Any, TextIO

from patcher.cli.report import render_lines

SLICE = 1 << 16  # characters escaped or written at a time; a flush threshold for small pieces


class _Buffered:
    """Collects small pieces and writes them to the stream in one call per ~SLICE characters."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.parts, self.size = stream, list[str](), 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= SLICE:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.stream.write("".join(self.parts))
            self.parts, self.size = [], 0


def write_json(value: Any, stream: TextIO) -> None:
    """``print(json.dumps(value, indent=2, default=str), file=stream)``, in slices."""
    out = _Buffered(stream)
    _value(value, out, 0)
    out.add("\n")
    out.flush()


def write_lines(lines: Iterable[str], stream: TextIO) -> None:
    """``print("\\n".join(lines), file=stream)``, one line (or slice of a long one) at a time."""
    out = _Buffered(stream)
    for number, line in enumerate(lines):
        if number:
            out.add("\n")
        for start in range(0, len(line), SLICE):
            out.add(line[start : start + SLICE])
    out.add("\n")
    out.flush()


def _value(value: Any, out: _Buffered, level: int) -> None:
    if isinstance(value, str):
        _string(value, out)
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        _container(value.items(), out, level, "{", "}")
    elif isinstance(value, list | tuple):
        _container(((None, v) for v in value), out, level, "[", "]")
    else:  # numbers, booleans, None, a dict with non-string keys; anything else as str()
        text = json.dumps(value, indent=2, default=str)
        out.add(text.replace("\n", "\n" + "  " * level) if "\n" in text else text)


def _container(
    items: Iterable[tuple[str | None, Any]], out: _Buffered, level: int, opening: str, closing: str
) -> None:
    inner = "\n" + "  " * (level + 1)
    first = True
    for key, item in items:
        out.add(opening + inner if first else "," + inner)
        first = False
        if key is not None:
            out.add(_escaped(key) + ": ")
        _value(item, out, level + 1)
    out.add(opening + closing if first else "\n" + "  " * level + closing)


def _string(text: str, out: _Buffered) -> None:
    if len(text) <= SLICE:
        out.add(_escaped(text))
        return
    out.add('"')
    for start in range(0, len(text), SLICE):  # escaping is per character: slices join exactly
        out.add(_escaped(text[start : start + SLICE])[1:-1])
    out.add('"')


def output_format(args: argparse.Namespace) -> str:
    """The --format asked for; --json means json (both together must agree)."""
    chosen = getattr(args, "format", None)
    if getattr(args, "json", False):
        if chosen not in (None, "json"):
            print(f"patcher: --json and --format {chosen} contradict each other", file=sys.stderr)
            raise SystemExit(2)
        return "json"
    return chosen or "text"


def write_result(result: dict[str, Any], fmt: str) -> None:
    """The result on stdout, written as it is made (a 50 MB SQL preview is never copied whole)."""
    from patcher.app.result import holds_sql

    if fmt == "json" and not holds_sql(result):  # small: json.dumps, 4x the sliced writer's speed
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    elif fmt == "json":
        write_json(result, sys.stdout)
    elif fmt == "markdown":
        from patcher.cli.markdown import render_markdown

        print(render_markdown(result))  # cut to fit a job summary: small by construction
    else:
        write_lines(render_lines(result), sys.stdout)

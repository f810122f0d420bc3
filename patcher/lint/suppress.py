"""``-- patcher:ignore CODE[,CODE] reason``: suppressions, and the ones that silenced nothing.

On the line just before a statement (a block of such lines stacks) it silences those codes for
that statement; in the file's leading comments (before its first statement) it silences them
for the whole file. Every suppression that matched no finding is itself reported
(UNUSED_SUPPRESSION), as is one naming a code that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from patcher.sql.risks.codes import ALL_RULE_INFO as RULE_INFO

_IGNORE: Final = re.compile(
    r"^[ \t]*--[ \t]*patcher:ignore[ \t]+([A-Za-z0-9_]+(?:[ \t]*,[ \t]*[A-Za-z0-9_]+)*)"
    r"[ \t]*([^\r\n]*)",
    re.MULTILINE,
)


@dataclass
class Suppression:
    line: int  # 1-based
    codes: tuple[str, ...]
    reason: str
    whole_file: bool = False
    used: set[str] = field(default_factory=set)


@dataclass
class Suppressions:
    by_line: dict[int, Suppression]
    file_wide: list[Suppression]

    @classmethod
    def scan(cls, text: str, first_statement_line: int | None) -> Suppressions:
        """Every suppression comment of a script (one regex pass over the text)."""
        by_line: dict[int, Suppression] = {}
        file_wide: list[Suppression] = []
        line, counted = 1, 0
        for match in _IGNORE.finditer(text):
            line += text.count("\n", counted, match.start())
            counted = match.start()
            codes = tuple(code.strip().upper() for code in match[1].split(","))
            leading = first_statement_line is None or line < first_statement_line
            found = Suppression(line, codes, match[2].strip(), whole_file=leading)
            (file_wide.append(found) if leading else by_line.__setitem__(line, found))
        return cls(by_line, file_wide)

    def match(self, code: str, statement_line: int) -> Suppression | None:
        """The suppression that silences ``code`` on a statement starting at that line (it
        remembers the match), or None."""
        line = statement_line - 1
        while line in self.by_line:
            if code in self.by_line[line].codes:
                self.by_line[line].used.add(code)
                return self.by_line[line]
            line -= 1
        for suppression in self.file_wide:
            if code in suppression.codes:
                suppression.used.add(code)
                return suppression
        return None

    def unused(self) -> list[tuple[Suppression, str]]:
        """(suppression, why) for every code of a suppression that silenced nothing."""
        out = []
        for suppression in sorted([*self.file_wide, *self.by_line.values()], key=_line):
            for code in suppression.codes:
                if code in suppression.used:
                    continue
                where = "in this file" if suppression.whole_file else "on the next statement"
                why = (
                    f"'patcher:ignore {code}' names no rule: see 'patcher lint --list-rules'"
                    if code not in RULE_INFO
                    else f"'patcher:ignore {code}' silenced nothing: {code} does not fire {where}"
                )
                out.append((suppression, why + "; remove it so it cannot hide a future finding"))
        return out


def _line(suppression: Suppression) -> int:
    return suppression.line

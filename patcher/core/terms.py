"""How a message names what its reader can act on: the Lambda's payload keys, or the CLI's
flags (issue 28 item 5).

Messages are written once, for both adapters; where one names an option, an action or where the
database comes from, it asks ``terms()``. The Lambda speaks ``PAYLOAD`` (the default); the CLI
runs its command inside ``speaking(CLI)``, so the same refusal says ``--dry-run`` there and
``dry_run: true`` in a payload's result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from patcher.core.record import record


@record
class Terms:
    """One adapter's words for the options, the actions and where a database is given."""

    style: Literal["payload", "cli"]

    def word(self, key: str) -> str:
        """A payload key as the reader writes it: ``dry_run`` or ``--dry-run``."""
        return f"--{key.replace('_', '-')}" if self.style == "cli" else key

    def option(self, key: str, value: object = True) -> str:
        """An option set to ``value``: ``dry_run: true`` or ``--dry-run``, ``--target 3``."""
        if self.style == "payload":
            return f"{key}: {json.dumps(value)}"
        return self.word(key) if value is True else f"{self.word(key)} {value}"

    def action(self, name: str, **options: object) -> str:
        """How to ask for an action: ``{"action": "repair", "dry_run": true}`` or
        ``patcher repair --dry-run``."""
        if self.style == "payload":
            return json.dumps({"action": name, **options})
        flags = "".join(f" {self.option(k, v)}" for k, v in options.items())
        return f"`patcher {name}{flags}`"

    @property
    def action_word(self) -> str:
        return "the command" if self.style == "cli" else "the action"

    @property
    def give_database(self) -> str:
        """What comes before the environment settings when a database is missing."""
        return "pass --database-url URL, or " if self.style == "cli" else ""

    @property
    def database_source(self) -> str:
        """Where the host, port, user and password of a failed connection came from."""
        if self.style == "cli":
            return "the URL given (--database-url, or PATCHER_DATABASE_URL)"
        return (
            "the URL or secret given (PATCHER_DATABASE_URL, PATCHER_DB_SECRET_ARN, PATCHER_TARGETS)"
        )


PAYLOAD = Terms("payload")
CLI = Terms("cli")

_SPOKEN: ContextVar[Terms] = ContextVar("patcher_terms", default=PAYLOAD)


def terms() -> Terms:
    """The terms of the adapter running now (the payload's, unless ``speaking`` said)."""
    return _SPOKEN.get()


@contextmanager
def speaking(spoken: Terms) -> Iterator[None]:
    """Messages made inside name things in ``spoken``'s words."""
    token = _SPOKEN.set(spoken)
    try:
        yield
    finally:
        _SPOKEN.reset(token)

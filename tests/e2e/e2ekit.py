"""Helpers for the end-to-end tests: sample events, the handler's world, database queries."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patcher.dev.devrun import LambdaContext
from tests.fixtures.s3 import S3Bucket

EVENTS = Path(__file__).resolve().parents[1] / "events"
PREFIX = "migrations/"


def event(name: str) -> dict[str, Any]:
    """A sample payload from tests/events (the README shows the same files)."""
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


@dataclass
class LambdaEnv:
    """The deployed function's world: a bucket prefix, a database, and the handler."""

    bucket: S3Bucket
    dsn: str

    def put(self, name: str, text: str) -> None:
        self.bucket.put(PREFIX + name, text.encode())

    def put_many(self, files: dict[str, str]) -> None:
        self.bucket.put_many({PREFIX + name: text.encode() for name, text in files.items()})

    def invoke(self, payload: Any, context: Any = None) -> dict[str, Any]:
        from patcher.aws.handler import lambda_handler

        result = lambda_handler(payload, context if context is not None else LambdaContext())
        assert json.loads(json.dumps(result)) == result, "the result must be plain JSON"
        return result


@dataclass
class HandlerS3:
    """Hooks on every S3 client the handler makes; ``calls`` counts API calls (pages)."""

    hooks: list[Callable[[Any], None]] = field(default_factory=list)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (operation, key or prefix)
    clients: list[Any] = field(default_factory=list)


@dataclass
class Secret:
    arn: str
    password: str
    calls: collections.Counter[str]

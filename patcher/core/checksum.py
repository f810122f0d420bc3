"""The SPEC checksum of a migration file, in a module of its own: the checks of applied files
need it without loading the SQL lexer (``patcher.sql.scripts`` imports it from here)."""

from __future__ import annotations

import hashlib


def checksum(data: bytes) -> str:
    """The SPEC checksum: SHA-256 of the file's bytes, hex."""
    return hashlib.sha256(data).hexdigest()

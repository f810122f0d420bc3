"""Migration sources: where the SQL files come from (a directory or S3), behind one protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patcher.sources.base import MigrationSource
from patcher.sources.catalog import DEFAULT_MAX_SCRIPT_BYTES

if TYPE_CHECKING:
    from patcher.sources.local import LocalSource

__all__ = ["LocalSource", "MigrationSource", "open_source"]


def open_source(
    location: str, *, max_script_bytes: int | None = DEFAULT_MAX_SCRIPT_BYTES, **s3_options: object
) -> MigrationSource:
    """Build the source a location names: ``s3://bucket/prefix/``, ``file://dir`` or a path.

    ``max_script_bytes`` (PATCHER_MAX_SCRIPT_MB) caps every ``*.sql`` file, from the listing.
    Each source's module loads only when a location names it (the Lambda reads S3)."""
    if location.startswith("s3://"):
        from patcher.sources.s3 import S3Source  # boto3 is imported only by the S3 source

        return S3Source.from_url(location, max_script_bytes=max_script_bytes, **s3_options)  # type: ignore[arg-type]
    from patcher.sources.local import LocalSource

    if location.startswith("file://"):
        location = location[len("file://") :]
    return LocalSource(location, max_script_bytes=max_script_bytes)


def __getattr__(name: str) -> Any:
    if name == "LocalSource":
        from patcher.sources.local import LocalSource

        return LocalSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

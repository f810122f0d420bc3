"""The local source's bounded read: the whole file within the limit, even one that grew after
the listing, and a refusal once it grew past the limit (never more than limit + 1 bytes read)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from patcher.core.errors import InvalidSource
from patcher.sources.local import LocalSource, _read_bounded


@pytest.mark.parametrize(
    ("content", "size", "limit", "expected"),
    [
        (b"", 0, 10, b""),
        (b"abc", 3, 10, b"abc"),
        (b"abcdef", 3, 10, b"abcdef"),  # grew after fstat, still within the limit
        (b"a" * 20, 3, 10, b"a" * 11),  # grew past it: limit + 1, enough to refuse
        (b"a" * 20, 20, 10, b"a" * 11),  # already past it
        (b"a" * 10, 10, 10, b"a" * 10),  # exactly the limit
    ],
)
def test_reads_at_most_limit_plus_one(
    content: bytes, size: int, limit: int, expected: bytes
) -> None:
    assert _read_bounded(io.BytesIO(content), size, limit) == expected


def test_a_script_that_grew_past_the_limit_after_listing_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "0001_a.up.sql"
    script.write_text("SELECT 1;\n")
    source = LocalSource(tmp_path, max_script_bytes=64)
    (listed,) = [o for o in source.list() if o.name.endswith(".up.sql")]
    assert source.read(listed) == b"SELECT 1;\n"
    script.write_text("SELECT 1;\n" * 10)  # 100 bytes now
    with pytest.raises(InvalidSource) as raised:
        source.read(listed)
    assert "0001_a.up.sql" in str(raised.value.message)

"""Tests of the matrix report (tests/fixtures/pgmatrix.py): CI keeps only the end of its
output, so a failure's cause must be in the summary, not only in build/matrix/pgNN.log."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures import pgmatrix

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.a" name="test_ok"/>
<testcase classname="tests.a" name="test_skipped"><skipped message="why"/></testcase>
<testcase classname="tests.b" name="test_broken"><failure message="AssertionError: boom">{body}
E   AssertionError: boom</failure></testcase>
<testcase classname="tests.c" name="test_fixture"><error message="fixture failed">setup trace
E   RuntimeError: no cluster</error></testcase>
</testsuite></testsuites>
"""


def test_failures_are_counted_and_their_causes_printed(tmp_path: Path) -> None:
    junit = tmp_path / "pg18.xml"
    frames = "\n".join(f"frame {i}" for i in range(100))
    junit.write_text(JUNIT.format(body=frames))
    row = pgmatrix.Row(18, server="18.4", exit_code=1)
    pgmatrix._read_junit(junit, row)
    assert (row.passed, row.failed, row.skipped) == (1, 2, 1)
    report = pgmatrix.table([row], ["tests/x"])
    assert "  FAILED tests.b::test_broken" in report
    assert "PG 18: tests.b::test_broken" in report
    assert "E   AssertionError: boom" in report
    assert "E   RuntimeError: no cluster" in report
    assert "frame 99" in report and "frame 10\n" not in report  # the tail, not all of it
    assert report.rindex("RuntimeError") > report.index("| 18 |")  # after the table


def test_a_green_major_prints_no_details(tmp_path: Path) -> None:
    junit = tmp_path / "pg13.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="t" name="ok"/></testsuite></testsuites>'
    )
    row = pgmatrix.Row(13, server="13.23")
    pgmatrix._read_junit(junit, row)
    report = pgmatrix.table([row], ["tests/x"])
    assert row.green and "FAILED" not in report and "PG 13:" not in report

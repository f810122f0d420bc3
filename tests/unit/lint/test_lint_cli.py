"""``patcher lint``: paths, change-set context, suppressions, formats and exit codes (SPEC 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from patcher.cli.main import main


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def findings(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    code, out, _ = lint(capsys, "--format", "json", "--fail-on", "never", *args)
    assert code == 0
    found: list[dict[str, object]] = json.loads(out)["findings"]
    return found


def codes_of(found: list[dict[str, object]]) -> list[str]:
    return [str(f["code"]) for f in found]


# --- exit codes ------------------------------------------------------------------------------


def test_exit_status_follows_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warn = write(tmp_path / "w", {"1_x.up.sql": "CREATE INDEX i ON users (a);"})
    assert lint(capsys, str(warn))[0] == 1  # default --fail-on warning
    assert lint(capsys, "--fail-on", "error", str(warn))[0] == 0
    assert lint(capsys, "--fail-on", "never", str(warn))[0] == 0
    bad = write(tmp_path / "e", {"1_x.up.sql": "DROP TABLE users;"})
    assert lint(capsys, "--fail-on", "error", str(bad))[0] == 1
    design = write(tmp_path / "i", {"1_x.up.sql": "CREATE TABLE t (id int PRIMARY KEY);"})
    code, out, _ = lint(capsys, str(design))
    assert code == 0 and "PREFER_BIGINT" in out  # info never fails the run
    clean = write(tmp_path / "c", {"1_x.up.sql": "CREATE TABLE t (id bigint PRIMARY KEY);"})
    code, out, _ = lint(capsys, str(clean))
    assert code == 0 and "0 findings" in out


def test_bad_usage_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lint(capsys, str(tmp_path / "missing"))
    assert code == 2 and "no such file or directory" in err
    code, _, err = lint(capsys)
    assert code == 2 and "PATH" in err
    (tmp_path / "1_bad.up.sql").write_bytes(b"SELECT '\xff';")
    code, _, err = lint(capsys, str(tmp_path / "1_bad.up.sql"))
    assert code == 2 and "not valid UTF-8" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["lint", "--format", "xml", str(tmp_path)])
    assert exit_info.value.code == 2


# --- context without a database ---------------------------------------------------------------


def test_objects_of_earlier_files_of_the_change_set_are_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = write(
        tmp_path,
        {
            "2_index.up.sql": "CREATE INDEX t_a ON t (a);\nCREATE INDEX u_a ON users (a);",
            "1_table.up.sql": "CREATE TABLE t (a bigint);",
            "1_table.down.sql": "DROP TABLE t;",
            "README.md": "not linted",
        },
    )
    found = findings(capsys, str(migrations))
    located = {(Path(str(f["file"])).name, f["line"], f["code"]) for f in found}
    # the index on users (pre-existing) is a risk, the one on t (made by 1) is not
    assert ("2_index.up.sql", 2, "INDEX_NOT_CONCURRENT") in located
    assert not any(name == "2_index.up.sql" and line == 1 for name, line, _ in located)
    # a down script drops what an earlier release made: it exists
    assert ("1_table.down.sql", 1, "DROP_TABLE") in located
    unknown = next(f for f in found if f["code"] == "INDEX_NOT_CONCURRENT")
    assert "a dry run against the database tells" in str(unknown["message"])


def test_explicit_files_are_ordered_by_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        {"10_b.up.sql": "CREATE INDEX ON t (a);", "9_a.up.sql": "CREATE TABLE t (a text);"},
    )
    found = findings(capsys, str(tmp_path / "10_b.up.sql"), str(tmp_path / "9_a.up.sql"))
    assert codes_of(found) == []


# --- suppressions ----------------------------------------------------------------------------


def test_suppression_on_the_line_before_a_statement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "CREATE INDEX a ON users (a);\n"
        "-- patcher:ignore INDEX_NOT_CONCURRENT users has 40 rows\n"
        "CREATE INDEX b ON users (b);\n"
    )
    write(tmp_path, {"1_x.up.sql": sql})
    code, out, _ = lint(capsys, "--format", "json", str(tmp_path))
    report = json.loads(out)
    assert [(f["code"], f["line"]) for f in report["findings"]] == [("INDEX_NOT_CONCURRENT", 1)]
    assert [(f["line"], f["reason"]) for f in report["suppressed"]] == [(3, "users has 40 rows")]
    assert code == 1


def test_leading_suppression_covers_the_file_and_stacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "-- patcher:ignore ACCESS_EXCLUSIVE_LOCK,DROP_COLUMN legacy columns, agreed in #212\n"
        "-- patcher:ignore BREAKS_PREVIOUS_RELEASE released without them since 4.2\n"
        "\n"
        "ALTER TABLE users DROP COLUMN a;\n"
        "-- patcher:ignore RENAME agreed\n"
        "-- patcher:ignore DROP_OBJECT agreed\n"
        "DROP VIEW v;\n"
        "ALTER TABLE users DROP COLUMN b;\n"
    )
    write(tmp_path, {"1_x.up.sql": sql})
    found = findings(capsys, str(tmp_path))
    assert [(f["code"], f["line"]) for f in found] == [("UNUSED_SUPPRESSION", 5)]
    assert "RENAME" in str(found[0]["message"])


def test_unknown_code_in_a_suppression_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, {"1_x.up.sql": "-- patcher:ignore NO_SUCH_RULE because\nSELECT 1;"})
    [finding] = findings(capsys, str(tmp_path))
    assert finding["code"] == "UNUSED_SUPPRESSION"
    assert "names no rule" in str(finding["message"])


# --- formats ---------------------------------------------------------------------------------

SCRIPT = "SELECT 1;\n  DROP TABLE users;\nCREATE INDEX i ON orders (a, b);\n"


def test_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"1_x.up.sql": SCRIPT})
    _, out, _ = lint(capsys, str(tmp_path))
    assert re.search(r"1_x\.up\.sql:2:3: error DROP_TABLE: deletes users", out)
    assert "    DROP TABLE users" in out
    # the release rules: DROP TABLE is contract, and the version mixes it with an expand
    assert re.search(
        r"1_x\.up\.sql:2:3: error BREAKS_PREVIOUS_RELEASE: contract \(DROP TABLE\)", out
    )
    assert re.search(
        r"1_x\.up\.sql:2:3: warning MIXED_EXPAND_CONTRACT: this version has 1 expand", out
    )
    assert re.search(  # and version 1 has no down script
        r"1_x\.up\.sql:2:3: warning CONTRACT_WITHOUT_DOWN: version 1 is a contract version", out
    )
    assert out.rstrip().splitlines()[-1].startswith("6 findings (2 errors, 4 warnings")


# The workflow-command grammar GitHub's runner parses (actions/runner ActionCommand.cs):
# ::name key=value,key=value::message, with %, CR, LF escaped in the message and also : and ,
# in property values.
_COMMAND = re.compile(
    r"^::(error|warning|notice) ((?:[a-z]+=[^,:\r\n]*)(?:,[a-z]+=[^,:\r\n]*)*)::(.*)$"
)


def _unescape(value: str) -> str:
    return (
        value.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
    ).replace("%25", "%")


def test_github_format_is_valid_workflow_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write(tmp_path / "a,b:c", {"1_x.up.sql": SCRIPT + "UPDATE t SET a = '100%';\n"})
    _, out, _ = lint(capsys, "--format", "github", str(directory))
    *commands, summary = out.rstrip("\n").split("\n")
    assert summary.startswith("7 findings")  # with BREAKS_..., MIXED_..., CONTRACT_WITHOUT_DOWN
    parsed = []
    for command in commands:
        match = _COMMAND.match(command)
        assert match, command
        props = dict(p.split("=", 1) for p in match[2].split(","))
        parsed.append((match[1], {k: _unescape(v) for k, v in props.items()}, _unescape(match[3])))
    level, props, message = next(p for p in parsed if "DROP_TABLE" in p[1]["title"])
    assert level == "error"
    assert props["file"].endswith("a,b:c/1_x.up.sql")
    assert (props["line"], props["col"]) == ("2", "3")
    assert message.startswith("deletes users")
    assert {p[0] for p in parsed} == {"error", "warning"}


def test_markdown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"1_x.up.sql": SCRIPT.replace("SELECT 1", "UPDATE t SET a = 'x|y'")})
    _, out, _ = lint(capsys, "--format", "markdown", str(tmp_path))
    assert out.startswith("### patcher lint\n")
    assert "| line | severity | code | finding |" in out
    assert "| 2 | 🛑 error | `DROP_TABLE` |" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert all(line.count(" | ") == 3 for line in rows)  # the | in the SQL is escaped
    write(tmp_path / "ok", {"1_x.up.sql": "SELECT 1;"})
    _, out, _ = lint(capsys, "--format", "markdown", str(tmp_path / "ok"))
    assert "No findings" in out


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(capsys, "--list-rules")
    assert code == 0
    assert "| `DROP_TABLE` | error |" in out


def test_a_suppression_needed_once_earlier_files_are_deployed_is_not_unused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Linted with the whole history new, the ALTER of a table file 1 made fires nothing; the
    suppression its pull request needed is not reported unused. A wrong one still is."""
    directory = write(
        tmp_path / "m",
        {
            "1_t.up.sql": "CREATE TABLE t (id bigint);\n",
            "2_a.up.sql": "-- patcher:ignore ACCESS_EXCLUSIVE_LOCK brief, catalog-only\n"
            "ALTER TABLE t ADD COLUMN b text;\n",
            "3_b.up.sql": "-- patcher:ignore TRUNCATE never fires here\n"
            "ALTER TABLE t ADD COLUMN c text;\n",
        },
    )
    found = findings(capsys, str(directory))
    assert [(str(f["file"])[-8:], f["code"]) for f in found] == [
        ("3_b.up.sql"[-8:], "UNUSED_SUPPRESSION")
    ]

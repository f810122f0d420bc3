"""``patcher run-state-machine --phase``: the execution input carries SPEC 11's phase (the deploy
workflow's expand and contract steps), and a bad phase is refused by the parser."""

from __future__ import annotations

import pytest

from patcher.cli.main import build_parser
from patcher.cli.run_state_machine import build_input

ARGV = ["run-state-machine", "migrate", "--state-machine-arn", "arn:x"]


@pytest.mark.parametrize("phase", ["expand", "contract"])
def test_the_phase_is_in_the_input(phase: str) -> None:
    args = build_parser().parse_args([*ARGV, "--phase", phase, "--databases", "*"])
    assert build_input(args) == {"action": "migrate", "phase": phase, "databases": "*"}


def test_no_phase_no_key() -> None:
    assert build_input(build_parser().parse_args(ARGV)) == {"action": "migrate"}


def test_a_bad_phase_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*ARGV, "--phase", "both"])
    assert exited.value.code == 2
    assert "invalid choice: 'both'" in capsys.readouterr().err

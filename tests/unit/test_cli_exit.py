"""``patcher.cli.main.exit_now``: the console command's exit without the interpreter's teardown must
still run the atexit handlers, flush everything written, keep the exit status, and wait for a
thread that is still running."""

from __future__ import annotations

import subprocess
import sys

import pytest

PRELUDE = "import atexit, sys, threading, time\nfrom patcher.cli import main as cli\n"


def _run(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + body], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_status_survives_and_everything_written_is_flushed(code: int) -> None:
    done = _run(
        "atexit.register(lambda: print('handler ran', flush=True))\n"
        "sys.stdout.write('o' * 200_000)\n"
        "sys.stderr.write('e' * 50_000)\n"
        f"cli.exit_now({code})\n"
        "print('never')\n"
    )
    assert done.returncode == code
    assert done.stdout == "o" * 200_000 + "handler ran\n"
    assert done.stderr == "e" * 50_000


def test_a_thread_still_running_gets_the_normal_exit_and_finishes() -> None:
    done = _run(
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "cli.exit_now(4)\n"
    )
    assert done.returncode == 4
    assert done.stdout == "thread done\n"


def test_a_closed_stdout_does_not_turn_into_a_traceback() -> None:
    done = _run("sys.stdout.write('x' * 10)\nsys.stdout.close()\ncli.exit_now(1)\n")
    assert done.returncode == 1
    assert done.stderr == ""

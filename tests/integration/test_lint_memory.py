"""``patcher lint`` of a big script stays within 3x its size in RSS, and grows linearly.

Each run is a fresh interpreter (``patcher lint`` on one file) that reports its own peak RSS;
the baseline is the same command on a one-statement file. A 20 MB and a 5 MB data script (the
kind of seed script that reaches 50 MB in real histories; docs/lint.md gives the 50 MB figure) are
checked: peak above baseline under 3x the file. Held statement by statement, the peak is the
script's bytes and its text side by side while it is decoded (2x) and what the allocator keeps;
a whole-script parse would take ~19x (pglast's parse tree per byte of SQL). Measured here:
5 MB -> 1.25x, 20 MB -> 1.8x, 50 MB -> 1.95x (docs/lint.md): the ratio levels off under 2x+,
which the last assertion checks (it would grow towards 19x with a whole parse).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
MB = 1024 * 1024
# VmHWM, the peak RSS of this process image: ru_maxrss would carry the parent's peak over
# the exec (Linux keeps the larger of the two).
PEAK = (
    "import sys\n"
    "from patcher.cli.main import main\n"
    "code = main(['lint', '--fail-on', 'never', '--format', 'json', sys.argv[1]])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "print(int(hwm.split()[1]) * 1024, file=sys.stderr)\n"
)


def script(path: Path, size: int) -> Path:
    with path.open("w") as out:
        out.write("CREATE TABLE big (id bigint, name text, data jsonb);\n")
        written, i = 0, 0
        while written < size:
            line = f"INSERT INTO big VALUES ({i}, 'name {i} é', '{{\"k\": {i}}}');\n"
            out.write(line)
            written += len(line.encode())
            i += 1
            if i % 50_000 == 0:
                out.write("UPDATE users SET seen = true;\n")  # a finding now and then
    return path


def peak_rss(path: Path) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, check=True
    )
    return int(proc.stderr.strip().splitlines()[-1])


def test_lint_memory_is_bounded_and_linear(tmp_path: Path) -> None:
    small = tmp_path / "1_small.up.sql"
    small.write_text("SELECT 1;\n")
    baseline = peak_rss(small)
    extra = {}
    for size in (5 * MB, 20 * MB):
        path = script(tmp_path / f"{size}_big.up.sql", size)
        extra[size] = peak_rss(path) - baseline
        assert extra[size] < 3 * path.stat().st_size, (size, extra[size])
    ratios = {size: extra[size] / size for size in extra}
    assert ratios[20 * MB] < 2.5 and ratios[20 * MB] - ratios[5 * MB] < 1.0, ratios

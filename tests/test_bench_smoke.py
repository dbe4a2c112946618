"""bench/run.py --quick runs end to end and prints its table (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(240)


def test_bench_quick_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        capture_output=True, text=True, timeout=230, check=False, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| figure | N | notifier | baseline | ratio | target | met |" in out
    for row in ("`notifier check`", "daemon start to READY=1", "daemon peak memory",
                "`plan --json`", "SIGHUP reload", "SIGHUP reloads (after", "burst of 50", "isolated notification",
                "hanging one"):
        assert row in out, row
    assert "Machine:" in out

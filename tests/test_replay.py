"""`notifier replay`: the real daemon path on a virtual clock, on the example config."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


def test_replay_prints_the_2020_handover() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "notifier", "replay", "-c", str(ROOT / "config.example.toml"),
         "--from", "2020-11-08", "--until", "2020-12-03", "--speed", "100000"],
        capture_output=True, text=True, check=False, timeout=110,
    )
    elapsed = time.monotonic() - started
    print(f"\nreplay of 25 days at 100000x took {elapsed:.1f} s")
    assert proc.returncode == 0, proc.stderr
    timeline = [line for line in proc.stdout.splitlines() if " -> console: " in line]
    kinds = [line.split()[6] for line in timeline]
    assert kinds.count("due") == 3
    assert kinds.count("rescheduled") == 1
    assert kinds.count("reminder") == 12
    rescheduled = next(line for line in timeline if " rescheduled " in line)
    assert rescheduled.startswith("Sun 15 Nov 2020 18:54 +04")
    assert "Kalbajar handover: extended by 10 days, from 15 Nov to 25 Nov" in rescheduled
    assert "damaged roads" in proc.stdout
    # The old due's reminders stop at the extension; the new due's start after it.
    kalbajar = [line for line in timeline if "Kalbajar" in line]
    assert [line[:15] for line in kalbajar] == [
        "Thu 12 Nov 2020", "Sat 14 Nov 2020", "Sun 15 Nov 2020", "Sun 15 Nov 2020",
        "Sun 22 Nov 2020", "Tue 24 Nov 2020", "Wed 25 Nov 2020", "Thu 26 Nov 2020"]
    assert "replay done: 19 delivered, 0 failed" in proc.stdout
    assert "late by" not in proc.stdout
    assert elapsed < 60

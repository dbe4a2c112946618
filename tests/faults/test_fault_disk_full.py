"""Fault 4: the ledger's disk fills up while the daemon runs, then space returns.

The ledger lives on a small tmpfs mounted for this test (skipped, with the
reason, where mounting is impossible); the jsonl:// channel writes
elsewhere, so it could still send if the daemon let it. `notifier run`
delivers three deadlines, then the tmpfs is filled to the last byte while
five more fall due, then the filler is removed and three more fall due.

Checked: nothing is sent while the ledger cannot record it (every jsonl line
has its ledger row, claimed before the line was written, and no line for the
five appears until space returns); the daemon logs the write errors, keeps
running, and after recovery sends the five (late) and the last three (on
time), each once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl
from support.processes import Proc, wait_ready
from support.times import S, parse_time, utc_now
from support.waits import wait_until

from notifier.delivery.ledger import DeliveryState, open_ledger

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here: cannot make a small filesystem to fill")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte; the filler file to delete for recovery."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 512, 1):  # down to the last byte
            with suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_disk_full_sends_nothing_unrecorded_and_recovers(
        tmp_path: Path, small_disk: Path, record_property: Callable[[str, object], None]) -> None:
    out = tmp_path / "out.jsonl"
    db = small_disk / "ledger.db"
    base = utc_now() + 5 * S
    phases = {
        "before": {f"a{i}": base + i * 0.3 * S for i in range(3)},
        "full": {f"b{i}": base + 3.5 * S + i * 0.3 * S for i in range(5)},
        "after": {f"c{i}": base + 10 * S + i * 0.3 * S for i in range(3)},
    }
    dues = {k: v for phase in phases.values() for k, v in phase.items()}
    extra = {"r0": base + 3600 * S}  # added by a reload while the disk is full

    def text(more: dict[str, datetime]) -> str:
        return config_toml(state=db, channels={"file": f"jsonl://{out}"}, deadlines="".join(
            deadline_toml(k, v) for k, v in {**dues, **more}.items()))

    config = write_config(tmp_path / "config.toml", text({}))
    proc = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", clean_env()).start()
    try:
        wait_ready(proc)
        wait_until(lambda: len(read_jsonl(out)) == 3, 20, "the first three deliveries")
        assert utc_now() < min(phases["full"].values()) - 1 * S, "too slow to fill in time"
        filler = fill(small_disk)
        filled_at = utc_now()
        free_when_full = shutil.disk_usage(small_disk).free
        # A reload that brings a new deadline must record when it was first seen: it
        # fails in one line, and the running plan goes on.
        write_config(config, text(extra))
        proc.signal(signal.SIGHUP)
        wait_until(lambda: "reload failed: ledger: " in proc.text(), 10, "the failed reload")
        # While full: past the five dues and a heartbeat-free stretch of errors.
        time.sleep(max(0.0, (max(phases["full"].values()) - utc_now()).total_seconds()) + 2.0)
        during = read_jsonl(out)
        assert proc.alive(), proc.text()[-2000:]
        filler.unlink()
        freed_at = utc_now()
        proc.signal(signal.SIGHUP)  # the same file, now that first-seen times can be written
        wait_until(lambda: len(read_jsonl(out)) == len(dues), 40, "every delivery after recovery")
        wait_until(lambda: "deadlines added: r0" in proc.text(), 10, "the reload after recovery")
        assert proc.alive(), proc.text()[-2000:]
    finally:
        # Every due has passed: once stopped (sends in flight finish), nothing else arrives.
        status = proc.stop()
    assert status == 0, proc.text()[-2000:]
    logs = proc.text()
    lines = read_jsonl(out)
    with open_ledger(db, readonly=True) as book:
        rows = {r.key: r for r in book.history()}
        alive = book.last_alive()

    sent_while_full = [x["deadline"] for x in during if x["deadline"] in phases["full"]]
    assert sent_while_full == [], sent_while_full
    assert sorted(x["deadline"] for x in lines) == sorted(dues)  # each once
    unrecorded = [x["key"] for x in lines if x["key"] not in rows
                  or rows[x["key"]].state != DeliveryState.SENT
                  or rows[x["key"]].created_at > parse_time(x["sent_at"])]
    assert not unrecorded, unrecorded
    assert len(rows) == len(lines)
    errors = [line for line in logs.splitlines() if "ERROR" in line]
    assert any("database or disk is full" in e or "SQLITE_FULL" in e for e in errors), errors[:5]
    assert "Traceback" not in logs
    assert alive is not None
    assert alive >= freed_at - 1 * S
    late = {x["deadline"]: (parse_time(x["sent_at"]) - dues[x["deadline"]]).total_seconds()
            for x in lines}
    assert all(late[k] >= 0 for k in late)
    assert max(late[k] for k in phases["after"]) < 0.5
    recovery = max(parse_time(x["sent_at"]) for x in lines if x["deadline"] in phases["full"])
    report("disk full", {
        "tmpfs": "4 MiB", "free_bytes_when_full": free_when_full,
        "full_for_s": round((freed_at - filled_at).total_seconds(), 1),
        "due_while_full": len(phases["full"]), "sent_while_full": len(sent_while_full),
        "ledger_error_lines": len(errors),
        "reload_while_full": "failed in one line, taken after recovery",
        "recovered_after_s": round((recovery - freed_at).total_seconds(), 2),
        "deliveries": len(lines), "unrecorded": len(unrecorded), "duplicates": 0,
        "after_recovery_max_lateness_ms": round(max(late[k] for k in phases["after"]) * 1000, 1),
    }, record_property)

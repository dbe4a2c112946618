"""Fault 11: SIGKILL the live daemon again and again while it delivers 1,200 notifications.

`python -m notifier run` runs in a subprocess over a persistent SQLite ledger
and a jsonl:// channel. 1,200 deadlines fall due over about 40 s; meanwhile the
daemon is killed with SIGKILL at random moments at least 30 times and started
again each time: a fifth of the kills come at a random moment of start-up,
the rest at a random moment within a second after it is ready (the catch-up
burst after the previous kill, or live delivery). A last run catches up and
is stopped with SIGTERM.

What "lost" means here: the ledger says the daemon was alive just before the
first deadline, every downtime lasts about a second, the catch-up window is
24 h and every deadline has exactly one notification. So by the catch-up rule
(the latest missed notification per deadline is sent late) every planned key
must reach the jsonl file; nothing may be skipped. A key may appear twice only
when a kill hit between the send and its "sent" mark, so duplicates are at
most one per kill (one channel, one worker).

A catch-up summary cut off by a kill (claimed, never marked) is sent again at
the next start, like any send in flight (SPEC 3).
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, jsonl_config, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl, read_jsonl_after_kills
from support.ledger import rows
from support.processes import Proc, daemon_process, wait_ready
from support.times import utc_now
from support.waits import wait_until

from notifier.config import loader as config
from notifier.delivery.ledger import Claim, DeliveryState, Skip, open_ledger
from notifier.schedule import planning
from notifier.text import rfc3339

N = 1200
SPAN = 40.0
"""Seconds over which the deadlines fall due."""
KILLS = 30
SEED = int(os.environ.get("NOTIFIER_KILL_SEED", "20201110"))


@pytest.mark.timeout(180)
def test_sigkill_loses_nothing_and_duplicates_at_most_once_per_kill(
    tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    db = tmp_path / "ledger.db"
    out = tmp_path / "out.jsonl"
    log = tmp_path / "daemon.log"
    start = utc_now() + timedelta(seconds=1)
    dues = {f"k{i:04d}": start + timedelta(seconds=SPAN * i / N) for i in range(N)}
    cfg = write_config(tmp_path / "config.toml", config_toml(
        state=db, channels={"file": f"jsonl://{out}"},
        deadlines="".join(deadline_toml(name, due, announced=start - timedelta(hours=1))
                          for name, due in dues.items()),
        delivery={"catchup": "24h"}, zone="Asia/Baku"))
    with open_ledger(db) as book:
        book.touch_alive(utc_now())  # alive until now: everything after this is owed
    planned = {f"{name}/due/{due:%Y-%m-%dT%H:%M:%SZ}/" for name, due in dues.items()}
    assert len(planned) == N

    rng = random.Random(SEED)
    proc = Proc(["run", "-c", str(cfg)], log, clean_env())

    def start_run(run: str) -> int:
        """Start a run, its name marked in the log; where its output begins."""
        with log.open("ab") as sink:
            sink.write(f"=== {run}\n".encode())
        offset = proc.size()
        proc.start()
        return offset

    kills = killed_after_ready = killed_while_growing = 0
    t_begin = time.monotonic()
    while kills < KILLS:
        size_before = len(read_jsonl_after_kills(out)[0])
        offset = start_run(f"run {kills + 1}")
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 1.0))  # while it starts: imports, config, ledger
        else:
            # Once it runs (the start-up time varies with the machine's load):
            # during the catch-up burst or live delivery.
            wait_ready(proc, after=offset)
            time.sleep(rng.uniform(0.0, 1.0))
        proc.signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL, proc.text()[-3000:]
        kills += 1
        killed_after_ready += " ready: " in proc.text(offset)
        killed_while_growing += len(read_jsonl_after_kills(out)[0]) > size_before
    kill_phase = time.monotonic() - t_begin

    # The last run: let it catch up and deliver the rest, then stop it properly (a
    # SIGTERM lets the sends in flight finish: nothing can arrive after it exits).
    offset = start_run("final run")
    try:
        # Signals are handled once the daemon is up; SIGTERM before that would kill it.
        wait_ready(proc, after=offset)
        last_due = max(dues.values())
        with suppress(AssertionError):  # what is missing is reported below, by key
            wait_until(lambda: {line["key"] for line in read_jsonl_after_kills(out)[0]}
                       >= planned, max(0.0, (last_due - utc_now()).total_seconds()) + 30,
                       "every planned key in the file")
    finally:
        status = proc.stop(timeout=30)
    assert status == 0, proc.text()[-3000:]

    lines, torn = read_jsonl_after_kills(out)
    counts = Counter(line["key"] for line in lines)
    lost = planned - set(counts)
    extra = set(counts) - planned
    duplicates = sum(c - 1 for c in counts.values())
    late = sum(1 for line in lines if line["late"])
    lateness = [
        (datetime.fromisoformat(line["sent_at"]) - datetime.fromisoformat(line["planned_at"]))
        .total_seconds() for line in lines
    ]
    text = log.read_text("utf-8", errors="replace")
    recovered = sum(int(m) for m in re.findall(r"(\d+) delivery\(ies\) were in flight", text))
    catch_ups = len(re.findall(r"notifier was down since", text))
    records = rows(db)
    by_state = Counter(str(r.state) for r in records)

    figures = {
        "kills": kills,
        "kills_after_ready": killed_after_ready,
        "kills_while_delivering": killed_while_growing,
        "planned": N,
        "deliveries": len(lines),
        "lost": len(lost),
        "duplicates": duplicates,
        "torn_lines": torn,
        "sent_late": late,
        "in_flight_recovered": recovered,
        "catch_ups": catch_ups,
        "kill_phase_s": round(kill_phase, 1),
        "max_lateness_s": round(max(lateness), 2),
        "ledger_states": dict(by_state),
        "seed": SEED,
    }
    report("sigkill (live run)", figures, record_property)

    assert kills >= 30
    assert killed_after_ready >= 15, "too few kills hit a running daemon"
    assert killed_while_growing >= 8, "too few kills hit the daemon while it delivered"
    assert len(lines) >= 1000
    assert not extra, sorted(extra)[:5]
    assert not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:5]}"
    assert duplicates <= kills
    assert len(records) == N
    assert all(r.state == DeliveryState.SENT for r in records), by_state


def test_a_summary_in_flight_at_a_kill_is_sent_at_the_next_start(tmp_path: Path) -> None:
    """The ledger as a kill during a catch-up leaves it: the skips recorded, the
    summary claimed but never marked. The next start sends that summary."""
    now = utc_now()
    text = jsonl_config(tmp_path, deadline_toml(
        "lachin", now - timedelta(hours=3), reminders=["1h"],
        announced=now - timedelta(days=2)), delivery={"catchup": "2h"})
    (tmp_path / "config.toml").write_text(text)
    schedule = config.load(tmp_path / "config.toml").schedule
    crashed_at = now - timedelta(minutes=10)
    missed = planning.plan(schedule, now - timedelta(hours=5), crashed_at)
    assert [n.kind for n in missed] == ["reminder", "due"]
    key = f"summary/{rfc3339(crashed_at)}"
    with open_ledger(tmp_path / "state.db") as book:
        book.mark_skipped_many([Skip(n.key, "out", n.deadline, n.kind, n.at) for n in missed],
                               now=crashed_at, reason="notifier was down since (a test)")
        assert book.claim(Claim(key, "out", deadline=None, kind="summary", planned_at=crashed_at),
                          now=crashed_at)
        book.touch_alive(crashed_at)

    def summary_state() -> DeliveryState:
        return next(r.state for r in rows(tmp_path / "state.db") if r.key == key)

    with daemon_process(tmp_path, text) as (daemon, notify):
        notify.wait_for(lambda m: "READY=1" in m)
        wait_until(lambda: summary_state() not in (DeliveryState.CLAIMED, DeliveryState.RETRYING),
                   20, "the summary's row to settle")
    assert summary_state() == DeliveryState.SENT, daemon.text()[-3000:]
    (line,) = read_jsonl(tmp_path / "out.jsonl")
    assert line["key"] == key
    assert line["title"].startswith("notifier was down")
    assert "2 notifications skipped" in line["title"]

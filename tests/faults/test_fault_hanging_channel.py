"""Fault 3: a channel that hangs is bounded by `[delivery] timeout`; others stay on time.

`notifier run` (a subprocess, real clock) delivers five deadlines, 0.8 s
apart, to three channels: `stuck` (a local HTTP receiver that reads each
request and never answers), `healthy` (the same receiver, answering) and a
jsonl:// file. `[delivery] timeout = "2s"`. Checked: each delivery to
`stuck` gives up after the timeout (its worker moves on every ~2 s, the
failures are recorded as retries with a "no answer" error); the healthy
channels' lateness stays within 500 ms; SIGTERM while the stuck channel
still hangs exits 0 within the shutdown bound.
"""

from __future__ import annotations

import itertools
import re
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl
from support.processes import Proc, wait_ready
from support.receivers import HttpReceiver
from support.times import S, parse_time, utc_now
from support.waits import wait_until

from notifier.daemon.loop import SHUTDOWN_BOUND
from notifier.delivery.ledger import DeliveryState, open_ledger

pytestmark = pytest.mark.timeout(90)
TIMEOUT = 2.0


def test_hanging_channel_is_bounded_and_isolated(
        tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    out = tmp_path / "out.jsonl"
    db = tmp_path / "ledger.db"
    with HttpReceiver() as stuck, HttpReceiver() as healthy:
        stuck.hang()
        wall = time.time() - time.monotonic()
        first = utc_now() + 4 * S
        dues = {f"d{i:02d}": first + i * 0.8 * S for i in range(5)}
        config = write_config(tmp_path / "config.toml", config_toml(
            state=db, channels={"stuck": stuck.url, "healthy": healthy.url,
                                "file": f"jsonl://{out}"},
            delivery={"timeout": f"{TIMEOUT:g}s"},
            deadlines="".join(deadline_toml(k, v) for k, v in dues.items())))
        proc = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", clean_env()).start()
        try:
            wait_ready(proc)
            wait_until(lambda: len(read_jsonl(out)) == 5 and len(healthy.requests) == 5, 20,
                       "the healthy channels")

            def stuck_rows() -> list[DeliveryState]:
                with open_ledger(db, readonly=True) as book:
                    return [r.state for r in book.history() if r.channel == "stuck"]
            wait_until(lambda: stuck_rows().count(DeliveryState.RETRYING) == 5, 30,
                       "every delivery to the stuck channel to time out")
            # Still hanging (the first request is held open): stop now.
            assert stuck.requests
            stopping = time.monotonic()
            proc.signal(signal.SIGTERM)
            status = proc.wait(SHUTDOWN_BOUND + 10)
            stop_s = time.monotonic() - stopping
        finally:
            proc.stop()
        titles = [re.search(r"Handover (d\d\d)", req.json["title"]) for req in healthy.requests]
        http_late = sorted(req.arrived + wall - dues[m.group(1)].timestamp()
                           for req, m in zip(healthy.requests, titles, strict=True) if m)
        assert len(http_late) == 5
    assert status == 0, proc.text()[-2000:]
    with open_ledger(db, readonly=True) as book:
        rows = book.history()
    by_channel: dict[str, list[tuple[float, float, str]]] = {}
    for r in rows:
        by_channel.setdefault(r.channel, []).append(
            (r.planned_at.timestamp(), r.updated_at.timestamp(), r.last_error or ""))
    assert all(r.state == DeliveryState.SENT for r in rows if r.channel != "stuck")
    stuck_marks = sorted(by_channel["stuck"])
    assert all(f"no answer within {TIMEOUT:g} s" in e or "still running" in e
               for _, _, e in stuck_marks), stuck_marks
    # One worker for the channel, one send at a time, each given up after the timeout.
    ends = [u for _, u, _ in stuck_marks]
    spacing = [b - a for a, b in itertools.pairwise(ends)]
    first_wait = ends[0] - stuck_marks[0][0]
    assert TIMEOUT - 0.1 <= first_wait <= TIMEOUT + 0.5, first_wait
    assert all(s <= TIMEOUT + 0.5 for s in spacing), spacing
    file_late = [(parse_time(x["sent_at"]) - parse_time(x["planned_at"])).total_seconds()
                 for x in read_jsonl(out)]
    assert max(file_late) < 0.5, file_late
    assert max(http_late) < 0.5, http_late
    assert stop_s <= SHUTDOWN_BOUND + 3
    report("hanging channel", {
        "timeout_s": TIMEOUT, "stuck_first_give_up_s": round(first_wait, 2),
        "stuck_worker_spacing_s": [round(s, 2) for s in spacing],
        "healthy_http_lateness_ms_median_max": (round(statistics.median(http_late) * 1000, 1),
                                                round(max(http_late) * 1000, 1)),
        "file_lateness_ms_median_max": (round(statistics.median(file_late) * 1000, 1),
                                        round(max(file_late) * 1000, 1)),
        "sigterm_exit_s": round(stop_s, 2),
    }, record_property)

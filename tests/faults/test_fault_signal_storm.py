"""Fault 8: a storm of SIGHUP while the daemon delivers a burst.

`notifier run` (a subprocess) has 300 deadlines falling due within four
seconds, each to a jsonl:// file and to a local HTTP receiver. While they
go out, SIGHUP arrives every 5-40 ms for about five seconds; half-way, the
file is saved once with one more deadline (so the reloads are not all
no-ops). Checked: every (deadline, channel) is delivered exactly once, the
added deadline too, the daemon stays up, folds the storm into one reload
per 0.5 s (not one per signal), the burst keeps flowing, and it
exits 0 on SIGTERM.
"""

from __future__ import annotations

import random
import re
import signal
import statistics
import time
from collections import Counter
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

pytestmark = pytest.mark.timeout(120)
SPREAD = 4 * S
N = 300
STORM = 5.0


def test_sighup_storm_during_a_burst(tmp_path: Path,
                                     record_property: Callable[[str, object], None]) -> None:
    rng = random.Random(8)
    out = tmp_path / "out.jsonl"
    with HttpReceiver() as rx:
        start = utc_now() + 6 * S
        dues = {f"b{i:03d}": start + SPREAD * i / N for i in range(N)}

        def text(extra: str = "") -> str:
            return config_toml(
                state=tmp_path / "ledger.db", channels={"file": f"jsonl://{out}", "http": rx.url},
                deadlines="".join(deadline_toml(k, v) for k, v in dues.items()) + extra)

        config = write_config(tmp_path / "config.toml", text())
        proc = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", clean_env()).start()
        signals = 0
        try:
            wait_ready(proc)
            wait_until(lambda: utc_now() >= start - 0.5 * S, 30, "the burst")
            storm_end = time.monotonic() + STORM
            added = False
            while time.monotonic() < storm_end:
                proc.signal(signal.SIGHUP)
                signals += 1
                if not added and time.monotonic() > storm_end - 3.0:
                    late_due = utc_now() + 1.5 * S
                    write_config(config, text(deadline_toml("added", late_due)))
                    added = True
                time.sleep(rng.uniform(0.005, 0.04))
                assert proc.alive(), proc.text()[-3000:]
            wait_until(lambda: len(read_jsonl(out)) >= N + 1 and len(rx.requests) >= N + 1, 60,
                       "every delivery")
            # One more SIGHUP, and its reload: the storm's last folded reload has run by
            # then, and whatever it handed over finishes before the stop below.
            final_mark = proc.size()
            proc.signal(signal.SIGHUP)
            wait_until(lambda: "reloaded: " in proc.text(final_mark), 10,
                       "the reload after the storm")
            assert proc.alive()
        finally:
            status = proc.stop()
        requests = rx.requests
    assert status == 0, proc.text()[-3000:]
    lines = read_jsonl(out)
    file_counts = Counter(x["deadline"] for x in lines)
    http_counts = Counter(m.group(1) for r in requests
                          if (m := re.search(r"Handover (\w+)", r.json["title"])))
    want = Counter({**dict.fromkeys(dues, 1), "added": 1})
    assert file_counts == want, (file_counts - want, want - file_counts)
    assert http_counts == want, (http_counts - want, want - http_counts)
    logs = proc.text()
    reloads = len(re.findall(r"reloaded: ", proc.log.read_bytes()[:final_mark].decode()))
    # Folded: about 200 signals, one reload per 0.5 s (RELOAD_GAP) at most: 11 here.
    assert 1 <= reloads <= 2 * STORM + 3, (reloads, signals)
    assert "Traceback" not in logs
    lateness = [(parse_time(x["sent_at"]) - parse_time(x["planned_at"])).total_seconds()
                for x in lines]
    # The burst keeps flowing. How late it runs is the CPU the machine gives
    # the daemon, not the reloads: median 1-150 ms here, but 1-2.7 s with two
    # busy loops on the same 2 cores (and 0.8 s with reloads not folded, which
    # the count above catches). A burst stuck behind reloads would not finish.
    assert statistics.median(lateness) < 4.0, lateness
    assert max(lateness) < 8.0, lateness
    report("SIGHUP storm", {
        "deliveries": len(lines) + len(requests), "sighups": signals,
        "reloads_done": reloads, "lost": 0, "duplicates": 0,
        "file_lateness_ms_median_max": (round(statistics.median(lateness) * 1000),
                                        round(max(lateness) * 1000)),
    }, record_property)

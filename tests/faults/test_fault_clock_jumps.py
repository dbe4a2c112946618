"""Fault 6: the wall clock jumps back and forth (hours, years) and the machine suspends.

In-process: the real `Daemon` (system clock, real ledger, jsonl:// channel,
heartbeat 1 s) runs on a thread while time-machine moves the wall clock of
the whole process, so APScheduler sees the jumps exactly as it would see
`date -s` (its timers count in wall-clock time); the monotonic clock runs on,
as on a real machine. The daemon goes through: a jump back by an hour
(the heartbeat and watchdog must go on), forward again, forward by 2 h 20 min
(a reminder 20 min overdue: the catch-up rules send it late), forward by
three years over 36 monthly deadlines (catch-up: nothing older than the 24 h
window is sent, each skipped delivery is recorded, one summary), and then
normal delivery.

A subprocess: `notifier run` is frozen (SIGSTOP) while three deadlines fall
due and thawed (SIGCONT), as a suspended laptop would be.

And the daemon's own clock made to jump (the Daemon takes a clock): a jump
forward sends what fell due within a heartbeat, a suspend over days follows
the catch-up rules, a jump back and forward again sends nothing twice.

Checked: nothing stalls beyond the heartbeat, no burst of stale messages,
no duplicates.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from support.configs import config_toml, deadline_toml, jsonl_config, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl
from support.processes import Proc, wait_ready
from support.threads import RecordingNotifier, RunningDaemon, daemon_thread
from support.times import D, H, S, parse_time, utc_now
from support.waits import wait_until

from notifier.delivery.ledger import DeliveryState, open_ledger

pytestmark = pytest.mark.timeout(120)
HEARTBEAT = 1.0
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def pings_since(notes: RecordingNotifier, t: float) -> list[float]:
    """When each WATCHDOG=1 at or after monotonic time `t` was sent."""
    return [p for p in notes.times("WATCHDOG=1") if p >= t]


def test_wall_clock_jumps(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    out = tmp_path / "out.jsonl"
    three_years = T0 + 3 * 365 * D
    blocks = [
        deadline_toml("soon", T0 + 6 * S, announced=T0 - D),
        deadline_toml("hours", T0 + 3 * H, announced=T0 - D, reminders=["1h", "30m"]),
        # One a month for three years, with a day-before reminder: 72 in the jump.
        *(deadline_toml(f"m{i:02d}", T0 + (i + 1) * 30 * D, announced=T0 - D, reminders=["1d"])
          for i in range(36)),
        # Within the 24 h catch-up window of the three-year jump, and just after it.
        deadline_toml("recent", three_years - 2 * H, announced=T0 - D),
        deadline_toml("after", three_years + 4 * S, announced=T0 - D),
    ]
    cfg = write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "ledger.db", channels={"file": f"jsonl://{out}"},
        deadlines="".join(blocks)))
    figures: dict[str, object] = {}
    with time_machine.travel(T0, tick=True) as traveller, \
            daemon_thread(cfg, heartbeat=HEARTBEAT) as run:
        notes = run.notes
        assert read_jsonl(out) == []
        # 1. Back by an hour: the heartbeat goes on (APScheduler alone would
        #    wait for its clock to come back), nothing is sent.
        traveller.shift(-H)
        jumped = time.monotonic()
        wait_until(lambda: len(pings_since(notes, jumped)) >= 2, HEARTBEAT * 2.6,
                   "two watchdog pings after the jump back")
        pings = pings_since(notes, jumped)
        gaps = [b - a for a, b in zip([jumped, *pings], pings, strict=False)]
        figures["pings_after_back_jump"] = len(pings)
        assert len(pings) >= 2, notes.times("WATCHDOG=1")
        assert max(gaps) <= HEARTBEAT + 0.5, gaps
        assert read_jsonl(out) == []
        # 2. Forward again: "soon" (T0 + 6 s) goes out on time.
        traveller.shift(H)
        wait_until(lambda: len(read_jsonl(out)) == 1, 10, "soon")
        soon = read_jsonl(out)[0]
        late = (parse_time(soon["sent_at"]) - parse_time(soon["planned_at"])).total_seconds()
        figures["on_time_after_back_and_forth_ms"] = round(late * 1000)
        assert soon["deadline"] == "soon"
        assert 0 <= late < 0.5
        # 3. Forward 2 h 20 min: the 1 h reminder (at T0 + 2 h) is 20 min late.
        traveller.move_to(T0 + 2 * H + 20 * timedelta(minutes=1))
        jumped = time.monotonic()
        wait_until(lambda: len(read_jsonl(out)) >= 2, HEARTBEAT + 2, "the late reminder")
        figures["hours_jump_delivered_after_s"] = round(time.monotonic() - jumped, 2)
        assert time.monotonic() - jumped <= HEARTBEAT + 0.5
        # 4. Forward three years.
        traveller.move_to(three_years)
        jumped = time.monotonic()
        wait_until(lambda: any(x["kind"] == "summary" for x in read_jsonl(out)), HEARTBEAT + 3,
                   "the catch-up after three years")
        figures["years_jump_delivered_after_s"] = round(time.monotonic() - jumped, 2)
        assert time.monotonic() - jumped <= HEARTBEAT + 1.5
        # 5. And on as normal: "after" is due 4 s past the jump.
        wait_until(lambda: any(x["deadline"] == "after" for x in read_jsonl(out)), 10, "after")
        run.heartbeats(1)
        assert run.daemon.dispatcher.idle()
    lines = read_jsonl(out)
    with open_ledger(tmp_path / "ledger.db", readonly=True) as book:
        rows = book.history()
    counts = Counter(x["key"] for x in lines)
    assert all(n == 1 for n in counts.values()), counts
    sent = [(x["deadline"], x["kind"], x["late"]) for x in lines]
    # soon (on time); hours' 1h reminder (late); then after three years only what
    # the 24 h window allows: recent's due (late), the summary; then after's due.
    assert sent == [("soon", "due", False), ("hours", "reminder", True),
                    ("recent", "due", True), (None, "summary", False),
                    ("after", "due", False)], sent
    after = next(x for x in lines if x["deadline"] == "after")
    assert (parse_time(after["sent_at"]) - parse_time(after["planned_at"])).total_seconds() < 0.5
    skipped = [r for r in rows if r.state == DeliveryState.SKIPPED]
    assert len(skipped) == 2 + 72  # hours' 30m reminder and due; 36 x (reminder, due)
    figures.update({"deliveries": len(lines), "skipped": len(skipped), "duplicates": 0,
                    "summary": next(x["title"] for x in lines if x["kind"] == "summary")})
    report("clock jumps", figures, record_property)


def test_suspend_and_resume(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    out = tmp_path / "out.jsonl"
    first = utc_now() + 4 * S
    dues = {f"s{i}": first + 1.5 * S + i * 0.5 * S for i in range(3)}
    dues["before"] = first
    dues["later"] = first + 8 * S
    cfg = write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "ledger.db", channels={"file": f"jsonl://{out}"},
        deadlines="".join(deadline_toml(k, v) for k, v in dues.items())))
    proc = Proc(["run", "-c", str(cfg)], tmp_path / "daemon.log", clean_env()).start()
    try:
        wait_ready(proc)
        wait_until(lambda: len(read_jsonl(out)) == 1, 15, "the first due")
        proc.signal(signal.SIGSTOP)
        time.sleep(max(0.0, (max(dues[f"s{i}"] for i in range(3)) - utc_now())
                       .total_seconds()) + 1.0)
        assert len(read_jsonl(out)) == 1
        proc.signal(signal.SIGCONT)
        resumed = utc_now()
        wait_until(lambda: len(read_jsonl(out)) == 4, HEARTBEAT + 5, "the three after resume")
        caught_up = max(parse_time(x["sent_at"]) for x in read_jsonl(out))
        wait_until(lambda: len(read_jsonl(out)) == 5, 15, "the last one, on time")
    finally:
        # Every due has passed: once stopped (sends in flight finish), nothing else arrives.
        status = proc.stop()
    assert status == 0
    lines = read_jsonl(out)
    assert sorted(x["deadline"] for x in lines) == sorted(dues)
    later = next(x for x in lines if x["deadline"] == "later")
    late = (parse_time(later["sent_at"]) - parse_time(later["planned_at"])).total_seconds()
    assert late < 0.5
    report("suspend (SIGSTOP)", {
        "frozen_over": 3, "resumed_to_sent_s": round((caught_up - resumed).total_seconds(), 2),
        "deliveries": len(lines), "duplicates": 0, "next_on_time_ms": round(late * 1000),
    }, record_property)


# --------------------------------------------------------------------------- the daemon's clock


class JumpClock:
    """The system clock plus an offset the test can jump, as a wall clock would."""

    scale = 1.0

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, delta: timedelta) -> None:
        self.offset += delta


@contextmanager
def jumping_daemon(tmp: Path, text: str, clock: JumpClock) -> Iterator[RunningDaemon]:
    with daemon_thread(write_config(tmp / "config.toml", text), clock=clock,
                       heartbeat=HEARTBEAT) as run:
        yield run


def test_jump_forward_sends_within_the_heartbeat(tmp_path: Path) -> None:
    clock = JumpClock(T0)
    text = jsonl_config(tmp_path, deadline_toml("jump", T0 + H))
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, text, clock) as run:
        run.heartbeats(1)
        assert read_jsonl(out) == []
        clock.jump(H - 0.2 * S)
        jumped = time.monotonic()
        wait_until(lambda: len(read_jsonl(out)) == 1, HEARTBEAT * 3, "the due after the jump")
        waited = time.monotonic() - jumped
    print(f"\nclock jump +1 h: delivered {waited * 1000:.0f} ms after the jump "
          f"(heartbeat {HEARTBEAT:.0f} s)")
    assert waited <= HEARTBEAT + 0.5
    assert read_jsonl(out)[0]["kind"] == "due"


def test_big_jump_follows_catch_up_rules(tmp_path: Path) -> None:
    clock = JumpClock(T0)
    one = deadline_toml("one", T0 + 2 * D, reminders=["1d", "2h"])
    two = deadline_toml("two", T0 + 3 * D, reminders=["1d"])
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, jsonl_config(tmp_path, one + two), clock) as run:
        clock.jump(2 * D + 12 * H)  # like a suspend over two and a half days
        wait_until(lambda: len(read_jsonl(out)) >= 3, HEARTBEAT * 4, "catch-up")
        run.heartbeats(1)
        wait_until(run.daemon.dispatcher.idle, 10, "the dispatcher to be idle")
        rows = read_jsonl(out)
        history = run.ledger.history()
    # Latest per deadline only: one's due, two's 1d reminder; then one summary.
    assert sorted((r["deadline"] or "", r["kind"]) for r in rows) == [
        ("", "summary"), ("one", "due"), ("two", "reminder")]
    assert all(r["late"] for r in rows if r["kind"] != "summary")
    summary = next(r for r in rows if r["kind"] == "summary")
    assert summary["title"].startswith("notifier fell behind (suspend or clock jump): ")
    skipped = sorted(r.key for r in history if r.state == DeliveryState.SKIPPED)
    assert skipped == ["one/reminder/2030-01-03T12:00:00Z/1d",
                       "one/reminder/2030-01-03T12:00:00Z/2h"]


def test_jump_back_sends_nothing_twice(tmp_path: Path) -> None:
    clock = JumpClock(T0)
    text = jsonl_config(tmp_path, deadline_toml("back", T0 + 2 * S))
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, text, clock) as run:
        wait_until(lambda: len(read_jsonl(out)) == 1, 10, "the due")
        clock.jump(-H)
        run.heartbeats(2)
        clock.jump(H)
        run.heartbeats(2)
        wait_until(run.daemon.dispatcher.idle, 10, "the dispatcher to be idle")
    assert len(read_jsonl(out)) == 1


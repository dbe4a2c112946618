"""Wall-clock jumps and suspend: the heartbeat re-checks what is due (in-process daemon)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.configs import deadline_toml, jsonl_config, write_config
from support.jsonl import read_jsonl
from support.threads import RunningDaemon, daemon_thread
from support.waits import wait_until

from notifier.delivery.ledger import DeliveryState

pytestmark = pytest.mark.timeout(60)
HEARTBEAT = 1.0


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
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    clock = JumpClock(start)
    text = jsonl_config(tmp_path, deadline_toml("jump", start + timedelta(hours=1)))
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, text, clock):
        time.sleep(HEARTBEAT * 1.5)
        assert read_jsonl(out) == []
        clock.jump(timedelta(hours=1) - timedelta(seconds=0.2))
        jumped = time.monotonic()
        wait_until(lambda: len(read_jsonl(out)) == 1, HEARTBEAT * 3, "the due after the jump")
        waited = time.monotonic() - jumped
    print(f"\nclock jump +1 h: delivered {waited * 1000:.0f} ms after the jump "
          f"(heartbeat {HEARTBEAT:.0f} s)")
    assert waited <= HEARTBEAT + 0.5
    assert read_jsonl(out)[0]["kind"] == "due"


def test_big_jump_follows_catch_up_rules(tmp_path: Path) -> None:
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    clock = JumpClock(start)
    one = deadline_toml("one", start + timedelta(days=2), reminders=["1d", "2h"])
    two = deadline_toml("two", start + timedelta(days=3), reminders=["1d"])
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, jsonl_config(tmp_path, one + two), clock) as run:
        clock.jump(timedelta(days=2, hours=12))  # like a suspend over two and a half days
        wait_until(lambda: len(read_jsonl(out)) >= 3, HEARTBEAT * 4, "catch-up")
        time.sleep(HEARTBEAT * 1.5)
        rows = read_jsonl(out)
        history = run.ledger.history()
    # Latest per deadline only: one's due, two's 1d reminder; then one summary.
    assert sorted((r["deadline"] or "", r["kind"]) for r in rows) == [
        ("", "summary"), ("one", "due"), ("two", "reminder")]
    assert all(r["late"] for r in rows if r["kind"] != "summary")
    summary = next(r for r in rows if r["kind"] == "summary")
    assert summary["title"].startswith("notifier fell behind (suspend or clock jump): ")
    skipped = sorted(r.key for r in history if r.state == DeliveryState.SKIPPED)
    assert skipped == ["one/reminder/2030-01-03T12:00:00Z/1d", "one/reminder/2030-01-03T12:00:00Z/2h"]


def test_jump_back_sends_nothing_twice(tmp_path: Path) -> None:
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    clock = JumpClock(start)
    text = jsonl_config(tmp_path, deadline_toml("back", start + timedelta(seconds=2)))
    out = tmp_path / "out.jsonl"
    with jumping_daemon(tmp_path, text, clock):
        wait_until(lambda: len(read_jsonl(out)) == 1, 10, "the due")
        clock.jump(-timedelta(hours=1))
        time.sleep(HEARTBEAT * 2)
        clock.jump(timedelta(hours=1))
        time.sleep(HEARTBEAT * 2)
    assert len(read_jsonl(out)) == 1

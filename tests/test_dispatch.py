"""The dispatcher on its own: backoff, claim -> send -> mark, give-up, restarts.

Real parts throughout: a SQLite ledger file, apprise channels delivering to a
real HTTP receiver (json://) and to jsonl:// files. Only the clock is ours
where a test must step past a give-up time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.jsonl import read_jsonl
from support.ledger import rows
from support.receivers import HttpReceiver
from support.senders import senders
from support.times import utc_now
from support.waits import wait_until

from notifier.config import loader as config
from notifier.delivery.backoff import FIRST_BACKOFF, MAX_BACKOFF, backoff
from notifier.delivery.dispatch import NOT_STARTED, Dispatcher
from notifier.delivery.ledger import DeliveryRecord, DeliveryState, Ledger, open_ledger
from notifier.messages.render import Message, Renderer
from notifier.schedule import planning
from notifier.schedule.model import Notification, Schedule

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


class Edge(random.Random):
    """A Random whose uniform() returns one end of the range: the jitter's bounds."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


# --------------------------------------------------------------------------- backoff

# attempts made so far -> (shortest, longest) wait before the next one.
DEFAULT_TABLE = [
    (1, 22.5 * S, 37.5 * S),
    (2, 45 * S, 75 * S),
    (3, 90 * S, 150 * S),
    (4, 3 * MIN, 5 * MIN),
    (5, 6 * MIN, 10 * MIN),
    (6, 12 * MIN, 20 * MIN),
    (7, 24 * MIN, 40 * MIN),          # 32 min +- 25 %
    (8, 45 * MIN, 60 * MIN),          # 64 min is past the cap: 1 h, jitter only downwards
    (9, 45 * MIN, 60 * MIN),
    (30, 45 * MIN, 60 * MIN),
    (1_000, 45 * MIN, 60 * MIN),      # a month of retries: no overflow
    (10**9, 45 * MIN, 60 * MIN),
    (0, 22.5 * S, 37.5 * S),          # nonsense attempt counts behave as the first
]


@pytest.mark.parametrize(("attempts", "low", "high"), DEFAULT_TABLE)
def test_backoff_table_30s_doubling_to_1h(attempts: int, low: timedelta, high: timedelta) -> None:
    assert backoff(attempts, Edge("low")) == low
    assert backoff(attempts, Edge("high")) == high


@pytest.mark.parametrize(("attempts", "low", "high"), [
    (1, 0.15 * S, 0.25 * S),
    (2, 0.3 * S, 0.5 * S),
    (3, 0.6 * S, 1.0 * S),
    (4, 0.75 * S, 1.0 * S),   # 1.6 s is past the 1 s cap
    (50, 0.75 * S, 1.0 * S),
])
def test_backoff_table_with_injected_bounds(attempts: int, low: timedelta,
                                            high: timedelta) -> None:
    kwargs = {"first": 0.2 * S, "maximum": 1 * S}
    assert backoff(attempts, Edge("low"), **kwargs) == low
    assert backoff(attempts, Edge("high"), **kwargs) == high


def test_backoff_jitter_spreads_within_bounds() -> None:
    rng = random.Random(1234)
    for attempts, low, high in DEFAULT_TABLE:
        waits = [backoff(attempts, rng) for _ in range(300)]
        assert all(low <= w <= high for w in waits), attempts
        # Real jitter: the waits spread over most of the allowed range.
        assert max(waits) - min(waits) > (high - low) * 0.8, attempts


def test_backoff_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="first"):
        backoff(1, random.Random(), first=timedelta(0))
    with pytest.raises(ValueError, match="first"):
        backoff(1, random.Random(), first=2 * S, maximum=1 * S)


def test_product_default_is_30s_doubling_to_1h() -> None:
    assert (FIRST_BACKOFF, MAX_BACKOFF) == (30 * S, H)


# --------------------------------------------------------------------------- fixtures


class Clock:
    """A wall clock that a test can push forward (the dispatcher takes any clock)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class World:
    """A config with three deadlines due soon, its ledger file, channels, dispatcher."""

    def __init__(self, tmp: Path, receiver: HttpReceiver, *, give_up_after: str = "24h",
                 when: datetime | None = None) -> None:
        self.tmp = tmp
        tmp.mkdir(exist_ok=True)
        self.receiver = receiver
        self.jsonl = tmp / "out.jsonl"
        self.db = tmp / "ledger.db"
        base = when or utc_now()
        self.cfg = config.load(write_config(tmp / "config.toml", config_toml(
            state=self.db, channels={"http": receiver.url, "file": f"jsonl://{self.jsonl}"},
            deadlines="".join(deadline_toml(f"d{i}", base + i * S, announced=base - 10 * H)
                              for i in range(3)),
            delivery={"give_up_after": give_up_after}, zone="Asia/Baku")))
        self.schedule: Schedule = self.cfg.schedule
        self.items: list[Notification] = planning.plan(self.schedule, base - H, base + H)
        assert [n.kind for n in self.items] == ["due"] * 3
        self.renderer = Renderer()
        self.clock = Clock()
        self.ledgers: list[Ledger] = []

    def render(self, n: Notification, schedule: Schedule, at: datetime) -> Message:
        return self.renderer.render(n, schedule, sent_at=at)

    def dispatcher(self, *, first_backoff: timedelta = FIRST_BACKOFF,
                   max_backoff: timedelta = MAX_BACKOFF,
                   on_retry: Callable[[datetime], None] | None = None,
                   parallel: int | None = None, lead: timedelta = timedelta(0)) -> Dispatcher:
        """`parallel` caps the sends in flight per channel (default: what each allows)."""
        ledger = open_ledger(self.db)
        self.ledgers.append(ledger)
        d = Dispatcher(ledger, clock=self.clock, render=self.render,
                       give_up_after=self.cfg.give_up_after, first_backoff=first_backoff,
                       max_backoff=max_backoff, on_retry=on_retry, lead=lead)
        d.configure(self.schedule, senders(self.schedule, timeout=5.0, parallel=parallel))
        return d

    def row(self, key: str, channel: str) -> DeliveryRecord:
        book = open_ledger(self.db, readonly=True)
        try:
            found = [r for r in book.history() if (r.key, r.channel) == (key, channel)]
        finally:
            book.close()
        assert len(found) == 1, (key, channel)
        return found[0]

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()


@pytest.fixture
def world(tmp_path: Path, http_receiver: HttpReceiver) -> Iterator[World]:
    w = World(tmp_path, http_receiver)
    yield w
    w.close()


# --------------------------------------------------------------------------- delivery


def test_claim_send_mark_delivers_each_key_once_per_channel(world: World) -> None:
    d = world.dispatcher()
    for n in world.items:
        d.submit(n)
    assert d.wait_idle(10)
    assert world.receiver.wait_for(3)
    assert sorted(r["key"] for r in read_jsonl(world.jsonl)) == sorted(n.key for n in world.items)
    for n in world.items:
        for channel in ("http", "file"):
            rec = world.row(n.key, channel)
            assert (rec.state, rec.attempts, rec.last_error) == (DeliveryState.SENT, 1, None)
    assert d.sent == 6
    d.stop(5)


def test_a_job_handed_over_early_is_claimed_at_once_and_sent_at_its_instant(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    w = World(tmp_path / "early", http_receiver, when=utc_now() + 1.5 * S)
    try:
        d = w.dispatcher(lead=3 * S)
        first, far = w.items[0], w.items[2]
        d.submit(first, channels=("file",))
        wait_until(lambda: [r.state for r in rows(w.db)] == [DeliveryState.CLAIMED], 10,
                   "the claim")
        # A second before its instant: claimed (durably, crash-safe), not yet sent
        # (and below: sent at its instant, not earlier).
        assert w.clock() < first.at
        assert w.row(first.key, "file").state == DeliveryState.CLAIMED
        assert not w.jsonl.exists() or read_jsonl(w.jsonl) == []
        assert d.wait_idle(10)
        [line] = read_jsonl(w.jsonl)
        sent_at = datetime.fromisoformat(line["sent_at"])
        assert first.at <= sent_at < first.at + 0.5 * S
        assert line["late"] is False
        assert w.row(first.key, "file").state == DeliveryState.SENT
        d.stop(5)
        # Handed over further ahead than the lead: not held (the caller's business).
        d2 = w.dispatcher(lead=timedelta(milliseconds=100))
        d2.submit(far, channels=("file",))
        assert d2.wait_idle(10)
        assert datetime.fromisoformat(read_jsonl(w.jsonl)[-1]["sent_at"]) < far.at - S
        d2.stop(5)
    finally:
        w.close()


def test_failure_is_marked_for_retry_with_backoff_then_sent(world: World) -> None:
    world.receiver.fail_next(1)
    d = world.dispatcher(first_backoff=0.4 * S, max_backoff=2 * S)
    n = world.items[0]
    before = world.clock()
    d.submit(n, channels=("http",))
    assert d.wait_idle(10)
    rec = world.row(n.key, "http")
    assert rec.state == DeliveryState.RETRYING
    assert rec.attempts == 1
    assert rec.last_error is not None
    assert "500" in rec.last_error
    assert rec.next_attempt is not None
    wait = rec.next_attempt - rec.updated_at
    assert 0.3 * S <= wait <= 0.5 * S, wait
    # Handed back before its time, the retry is refused by the ledger: nothing is sent.
    d.submit(n, channels=("http",), attempt=2)
    assert d.wait_idle(10)
    assert len(world.receiver.requests) == 1
    # Once due, it goes out and the row counts both attempts.
    world.clock.offset = rec.next_attempt - before
    d.submit(n, channels=("http",), attempt=2)
    assert d.wait_idle(10)
    assert len(world.receiver.requests) == 2
    rec = world.row(n.key, "http")
    assert (rec.state, rec.attempts) == (DeliveryState.SENT, 2)
    d.stop(5)


def test_permanent_failure_waits_the_longest_backoff(world: World) -> None:
    world.receiver.set_status(401)
    d = world.dispatcher(first_backoff=0.4 * S, max_backoff=20 * S)
    n = world.items[0]
    d.submit(n, channels=("http",))
    assert d.wait_idle(10)
    rec = world.row(n.key, "http")
    assert rec.state == DeliveryState.RETRYING
    assert rec.next_attempt is not None
    assert 15 * S <= rec.next_attempt - rec.updated_at <= 20 * S
    d.stop(5)


def test_retry_wake_up_hook_gets_the_retry_time(world: World) -> None:
    world.receiver.fail_next(1)
    seen: list[datetime] = []
    d = world.dispatcher(first_backoff=0.4 * S, max_backoff=2 * S, on_retry=seen.append)
    d.submit(world.items[0], channels=("http",))
    assert d.wait_idle(10)
    rec = world.row(world.items[0].key, "http")
    assert seen == [rec.next_attempt]
    d.stop(5)


def test_give_up_marks_failed_once_give_up_after_has_passed(tmp_path: Path,
                                                            http_receiver: HttpReceiver) -> None:
    w = World(tmp_path, http_receiver, give_up_after="10m")
    try:
        http_receiver.set_status(503)
        d = w.dispatcher()
        n = w.items[0]
        d.submit(n, channels=("http",))
        assert d.wait_idle(10)
        rec = w.row(n.key, "http")
        assert rec.state == DeliveryState.RETRYING
        assert rec.next_attempt is not None
        # Still inside give_up_after: another failure schedules another retry.
        w.clock.offset = 9 * MIN
        d.submit(n, channels=("http",), attempt=2)
        assert d.wait_idle(10)
        rec = w.row(n.key, "http")
        assert (rec.state, rec.attempts) == (DeliveryState.RETRYING, 2)
        assert rec.next_attempt is not None
        # Past it: the next failure is the last one.
        w.clock.offset = rec.next_attempt - utc_now() + 2 * MIN
        d.submit(n, channels=("http",), attempt=3)
        assert d.wait_idle(10)
        rec = w.row(n.key, "http")
        assert (rec.state, rec.attempts, rec.next_attempt) == (DeliveryState.FAILED, 3, None)
        assert rec.last_error is not None
        assert "503" in rec.last_error
        assert d.failed == 1
        assert len(http_receiver.requests) == 3
        d.stop(5)
    finally:
        w.close()


def test_late_delivery_gets_the_full_retry_period(tmp_path: Path,
                                                   http_receiver: HttpReceiver) -> None:
    """give_up_after counts from the first attempt, not from the planned time.

    A notification planned 2 h ago (sent late after downtime) with a 1 h
    give-up period used to be failed on its first error, without any retry.
    """
    w = World(tmp_path, http_receiver, give_up_after="1h", when=utc_now() - 2 * H)
    try:
        http_receiver.fail_next(1)
        d = w.dispatcher()
        n = w.items[0]
        d.submit(n, channels=("http",))
        assert d.wait_idle(10)
        rec = w.row(n.key, "http")
        assert rec.late
        assert rec.state == DeliveryState.RETRYING, rec
        d.stop(5)
        # A restarted dispatcher (no memory of the first attempt) reads it from the ledger.
        d2 = w.dispatcher()
        http_receiver.fail_next(1)
        assert rec.next_attempt is not None
        w.clock.offset = rec.next_attempt - utc_now() + 30 * MIN
        d2.submit(n, channels=("http",), attempt=2)
        assert d2.wait_idle(10)
        assert w.row(n.key, "http").state == DeliveryState.RETRYING
        w.clock.offset = 61 * MIN
        http_receiver.fail_next(1)
        d2.submit(n, channels=("http",), attempt=3)
        assert d2.wait_idle(10)
        assert w.row(n.key, "http").state == DeliveryState.FAILED
        d2.stop(5)
    finally:
        w.close()


def test_a_digest_retried_by_a_new_dispatcher_gets_the_full_retry_period(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    """A message of no deadline (a digest, a catch-up summary) is looked up by its
    key too: a new process counts give_up_after from its first attempt, not
    from its planned time."""
    w = World(tmp_path, http_receiver, give_up_after="1h", when=utc_now() - 2 * H)
    try:
        planned = w.items[0].at
        n = replace(w.items[0], kind="digest", deadline=None, due=None, offset=None, seq=None,
                    stage=None, key=f"digest/{planned:%Y-%m-%dT%H:%M:%S}Z", title="Digest")
        text = Message("Digest", "nothing open")
        http_receiver.fail_next(1)
        d = w.dispatcher()
        d.submit(n, channels=("http",), fixed=text)
        assert d.wait_idle(10)
        rec = w.row(n.key, "http")
        assert rec.state == DeliveryState.RETRYING, rec
        d.stop(5)
        d2 = w.dispatcher()
        http_receiver.fail_next(1)
        assert rec.next_attempt is not None
        w.clock.offset = rec.next_attempt - utc_now() + 30 * MIN
        d2.submit(n, channels=("http",), attempt=2, fixed=text)
        assert d2.wait_idle(10)
        assert w.row(n.key, "http").state == DeliveryState.RETRYING
        d2.stop(5)
    finally:
        w.close()


def test_a_new_dispatcher_over_the_same_ledger_sends_nothing_twice(world: World) -> None:
    d1 = world.dispatcher()
    for n in world.items:
        d1.submit(n)
    assert d1.wait_idle(10)
    assert d1.stop(5)
    assert world.receiver.wait_for(3)
    lines = read_jsonl(world.jsonl)
    assert len(lines) == 3
    d2 = world.dispatcher()
    for n in world.items:
        d2.submit(n)
    assert d2.wait_idle(10)
    assert d2.sent == 0
    assert d2.stop(5)
    assert len(world.receiver.requests) == 3
    assert read_jsonl(world.jsonl) == lines
    for n in world.items:
        assert world.row(n.key, "http").attempts == 1


def test_a_retry_waiting_behind_a_hanging_send_is_claimed_and_queued_once(world: World) -> None:
    """The daemon hands due retries over on every tick; a busy channel must not pile them up.

    Before the fix the retry stayed 'retrying' in the ledger while it waited,
    so the daemon saw it due again on every tick, queued it again, and (its
    next wake-up being that overdue retry) ticked again at once: a busy loop
    that queued thousands of copies while the channel hung.
    """
    world.receiver.fail_next(1)
    # One send at a time, so the retry has to wait behind the hanging one.
    d = world.dispatcher(first_backoff=0.2 * S, max_backoff=1 * S, parallel=1)
    n0, n1 = world.items[0], world.items[1]
    d.submit(n0, channels=("http",))
    assert d.wait_idle(10)
    assert world.row(n0.key, "http").state == DeliveryState.RETRYING
    world.receiver.hang()
    d.submit(n1, channels=("http",))
    assert world.receiver.wait_for(2)  # n1 now hangs the channel's worker
    world.clock.offset = 1 * S  # n0's retry is due
    for _ in range(50):
        d.submit(n0, channels=("http",), attempt=2)
    assert d.pending() == 2
    rec = world.row(n0.key, "http")
    assert (rec.state, rec.attempts) == (DeliveryState.CLAIMED, 2)
    world.receiver.release()
    assert d.wait_idle(10)
    assert len(world.receiver.requests) == 3
    assert world.row(n0.key, "http").state == DeliveryState.SENT
    assert d.sent == 2
    d.stop(5)


def test_a_retry_that_is_not_due_is_dropped_when_handed_over(world: World) -> None:
    world.receiver.fail_next(1)
    d = world.dispatcher(first_backoff=5 * S, max_backoff=10 * S)
    n = world.items[0]
    d.submit(n, channels=("http",))
    assert d.wait_idle(10)
    d.submit(n, channels=("http",), attempt=2)  # its next attempt is seconds away
    assert d.pending() == 0
    assert world.row(n.key, "http").state == DeliveryState.RETRYING
    assert len(world.receiver.requests) == 1
    d.stop(5)


def test_stop_gives_queued_retries_back_to_the_ledger(world: World) -> None:
    world.receiver.fail_next(1)
    d = world.dispatcher(first_backoff=0.2 * S, max_backoff=1 * S, parallel=1)
    n0, n1 = world.items[0], world.items[1]
    d.submit(n0, channels=("http",))
    assert d.wait_idle(10)
    world.receiver.hang()
    d.submit(n1, channels=("http",))
    assert world.receiver.wait_for(2)
    world.clock.offset = 1 * S
    d.submit(n0, channels=("http",), attempt=2)
    assert world.row(n0.key, "http").state == DeliveryState.CLAIMED
    assert not d.stop(0.2)  # n1 still hangs: not everything finished
    rec = world.row(n0.key, "http")
    assert (rec.state, rec.last_error) == (DeliveryState.RETRYING, NOT_STARTED)
    assert rec.next_attempt is not None
    assert rec.next_attempt <= world.clock()
    # n1 was really being sent: it stays claimed, for recover_in_flight at the next start.
    assert world.row(n1.key, "http").state == DeliveryState.CLAIMED
    world.receiver.release()  # the worker then finishes n1 and sees the stop
    wait_until(lambda: world.row(n1.key, "http").state == DeliveryState.SENT, 10,
               "n1 to be sent")


def test_late_is_decided_by_delay_or_forced_for_catch_up(world: World) -> None:
    d = world.dispatcher()
    on_time, missed = world.items[0], world.items[1]
    d.submit(on_time, channels=("file",))
    d.submit(missed, channels=("file",), late=True)  # missed during downtime, seconds ago
    assert d.wait_idle(10)
    flags = {line["key"]: line["late"] for line in read_jsonl(world.jsonl)}
    assert flags == {on_time.key: False, missed.key: True}
    assert not world.row(on_time.key, "file").late
    assert world.row(missed.key, "file").late
    d.stop(5)
    # More than late_after behind its planned time is late without being told.
    w2 = World(world.tmp / "w2", world.receiver, when=utc_now() - 2 * MIN)
    try:
        d2 = w2.dispatcher()
        d2.submit(w2.items[0], channels=("file",))
        assert d2.wait_idle(10)
        assert [line["late"] for line in read_jsonl(w2.jsonl)] == [True]
        assert "Sent late by 2 min" in read_jsonl(w2.jsonl)[0]["body"]
        d2.stop(5)
    finally:
        w2.close()


def test_giving_up_after_one_attempt_says_one(tmp_path: Path, http_receiver: HttpReceiver,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A first attempt that fails when give_up_after has already passed since its
    claim (the clock moved on) is given up: "after 1 attempt"."""
    caplog.set_level(logging.ERROR, logger="notifier.dispatch")
    w = World(tmp_path, http_receiver, give_up_after="10m")
    try:
        http_receiver.set_status(503)
        rendered = w.render

        def render_then_wait(n: Notification, schedule: Schedule, at: datetime) -> Message:
            w.clock.offset = 11 * MIN  # between the claim and the failure
            return rendered(n, schedule, at)
        w.render = render_then_wait  # type: ignore[method-assign]
        d = w.dispatcher()
        n = w.items[0]
        d.submit(n, channels=("http",))
        assert d.wait_idle(10)
        assert w.row(n.key, "http").state == DeliveryState.FAILED
        d.stop(5)
    finally:
        w.close()
    (said,) = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert " after 1 attempt: " in said, said

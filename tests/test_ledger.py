"""The ledger contract: every behaviour of the `Ledger` interface, run against each backend.

Each test takes a `store` (tests/ledger_stores.py), parametrised by backend, so
a new backend is one more entry in STORES. What only SQLite files do (damage,
permissions, WAL, a full disk) is in tests/test_ledger_sqlite.py.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ledger_stores import KEY, STORES, T0, Store, at, claim, make_store, only
from support.env import clean_env

import notifier
from notifier.delivery.ledger import (
    MAX_ERROR_CHARS,
    Claim,
    DeliveryState,
    Ledger,
    Sent,
    Skip,
)
from notifier.errors import LedgerError


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    made = make_store(request.param)
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture
def ledger(store: Store) -> Iterator[Ledger]:
    with store.open() as opened:
        yield opened


# --------------------------------------------------------------------------- state machine


def test_first_claim_inserts_and_second_claim_is_refused(ledger: Ledger) -> None:
    assert claim(ledger) is True
    assert claim(ledger) is False
    assert claim(ledger, now=at(3600)) is False
    rec = only(ledger)
    assert rec.state is DeliveryState.CLAIMED
    assert rec.attempts == 1
    assert rec.next_attempt is None
    assert rec.last_error is None
    assert (rec.deadline, rec.kind, rec.late) == ("kalbajar", "reminder", False)
    assert rec.created_at == rec.updated_at == T0
    # another channel of the same key is a separate delivery
    assert claim(ledger, channel="mail") is True
    assert ledger.states([KEY]) == {
        (KEY, "ops"): DeliveryState.CLAIMED,
        (KEY, "mail"): DeliveryState.CLAIMED,
    }


def test_times_round_trip_exactly_and_come_back_in_utc(ledger: Ledger) -> None:
    baku = timezone(timedelta(hours=4))
    planned = datetime(2020, 11, 26, 0, 0, 0, 999999, tzinfo=baku)
    now = datetime(2020, 11, 25, 20, 0, 0, 1, tzinfo=UTC)
    assert ledger.claim(
        Claim("k", "ops", deadline=None, kind="digest", planned_at=planned, late=True), now=now
    )
    rec = only(ledger, "k")
    assert rec.planned_at == planned
    assert rec.planned_at.utcoffset() == timedelta(0)
    assert rec.planned_at.microsecond == 999999
    assert rec.created_at == now
    assert rec.deadline is None
    assert rec.late is True


def test_naive_datetimes_are_rejected(ledger: Ledger) -> None:
    naive = datetime(2020, 11, 15, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.claim(Claim(KEY, "ops", deadline=None, kind="due", planned_at=naive), now=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.touch_alive(naive)
    assert ledger.history() == []


def test_sent_is_final(ledger: Ledger) -> None:
    assert claim(ledger)
    ledger.mark_sent(KEY, "ops", now=at(2))
    rec = only(ledger)
    assert rec.state is DeliveryState.SENT
    assert rec.updated_at == at(2)
    assert claim(ledger, now=at(10)) is False
    ledger.mark_retry(KEY, "ops", now=at(11), error="late failure", next_attempt=at(12))
    ledger.mark_failed(KEY, "ops", now=at(13), error="late failure")
    ledger.mark_skipped(
        Skip(KEY, "ops", deadline="kalbajar", kind="reminder", planned_at=T0), now=at(14),
        reason="catch-up",
    )
    assert only(ledger) == rec
    assert ledger.due_retries(at(100)) == []


def test_retry_is_claimable_only_when_due(ledger: Ledger) -> None:
    assert claim(ledger)
    ledger.mark_retry(KEY, "ops", now=at(1), error="HTTP 503", next_attempt=at(31))
    rec = only(ledger)
    assert rec.state is DeliveryState.RETRYING
    assert rec.next_attempt == at(31)
    assert rec.last_error == "HTTP 503"
    assert ledger.next_retry_at() == at(31)

    assert ledger.due_retries(at(30)) == []
    assert claim(ledger, now=at(30)) is False
    assert [r.key for r in ledger.due_retries(at(31))] == [KEY]

    assert claim(ledger, now=at(31), late=True) is True
    rec = only(ledger)
    assert rec.state is DeliveryState.CLAIMED
    assert rec.attempts == 2
    assert rec.next_attempt is None
    assert rec.late is True
    assert ledger.next_retry_at() is None
    assert claim(ledger, now=at(32)) is False  # claimed again: in flight

    ledger.mark_failed(KEY, "ops", now=at(40), error="HTTP 410 gone")
    rec = only(ledger)
    assert (rec.state, rec.last_error, rec.attempts) == (DeliveryState.FAILED, "HTTP 410 gone", 2)
    assert claim(ledger, now=at(10_000)) is False


def test_due_retries_oldest_first(ledger: Ledger) -> None:
    for i, delay in enumerate([300, 30, 120, 4000]):
        key = f"k{i}"
        assert claim(ledger, key)
        ledger.mark_retry(key, "ops", now=T0, error="x", next_attempt=at(delay))
    assert [r.key for r in ledger.due_retries(at(300))] == ["k1", "k2", "k0"]
    assert ledger.next_retry_at() == at(30)
    assert [r.next_attempt for r in ledger.due_retries(at(5000))] == [
        at(30), at(120), at(300), at(4000),
    ]


def test_marking_an_unknown_delivery_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no delivery"):
        ledger.mark_sent("nope", "ops", now=T0)
    with pytest.raises(LedgerError, match="no delivery"):
        ledger.mark_retry("nope", "ops", now=T0, error="e", next_attempt=at(1))
    with pytest.raises(LedgerError, match="no delivery"):
        ledger.mark_failed("nope", "ops", now=T0, error="e")
    assert ledger.history() == []
    assert claim(ledger)  # the failed marks left no transaction open


def test_last_error_is_capped(ledger: Ledger) -> None:
    assert claim(ledger)
    ledger.mark_retry(KEY, "ops", now=T0, error="e" * 10_000, next_attempt=at(1))
    error = only(ledger).last_error
    assert error is not None
    assert len(error) == MAX_ERROR_CHARS
    assert error.startswith("eeee")
    ledger.mark_skipped(
        Skip("other", "ops", deadline=None, kind="due", planned_at=T0), now=T0, reason="r" * 900
    )
    skipped = only(ledger, "other").last_error
    assert skipped is not None
    assert len(skipped) == MAX_ERROR_CHARS


def test_skipped_never_overrides_sent_claimed_or_failed(ledger: Ledger) -> None:
    def skip(key: str) -> None:
        ledger.mark_skipped(
            Skip(key, "ops", deadline="aghdam", kind="reminder", planned_at=T0), now=at(50),
            reason="missed during downtime",
        )

    for key in ("sent", "claimed", "failed", "retrying"):
        assert claim(ledger, key)
    ledger.mark_sent("sent", "ops", now=at(1))
    ledger.mark_failed("failed", "ops", now=at(1), error="boom")
    ledger.mark_retry("retrying", "ops", now=at(1), error="boom", next_attempt=at(2))
    before = {r.key: r for r in ledger.history()}
    for key in ("sent", "claimed", "failed", "retrying", "new"):
        skip(key)

    for key in ("sent", "claimed", "failed"):
        assert only(ledger, key) == before[key]
    retried = only(ledger, "retrying")
    assert retried.state is DeliveryState.SKIPPED
    assert retried.next_attempt is None
    assert retried.last_error == "missed during downtime"
    new = only(ledger, "new")
    assert (new.state, new.attempts, new.deadline) == (DeliveryState.SKIPPED, 0, "aghdam")
    assert new.updated_at == at(50)
    # skipped is final: it can't be claimed, and a second skip changes nothing
    assert claim(ledger, "new", now=at(60)) is False
    assert claim(ledger, "retrying", now=at(60)) is False
    skip("new")
    assert only(ledger, "new") == new
    assert ledger.due_retries(at(1000)) == []


def test_skipped_in_bulk_is_one_transaction_with_the_same_rules(
        ledger: Ledger) -> None:
    assert claim(ledger, "sent")
    ledger.mark_sent("sent", "ops", now=at(1))
    skips = [Skip(f"k{i}", c, "aghdam", "reminder", at(i)) for i in range(500)
             for c in ("ops", "mail")]
    ledger.mark_skipped_many([*skips, Skip("sent", "ops", None, "due", T0)],
                             now=at(600), reason="missed during downtime")
    rows = ledger.history()
    assert len(rows) == 1001
    assert only(ledger, "sent").state is DeliveryState.SENT
    k7 = only(ledger, "k7", "mail")
    assert (k7.state, k7.planned_at, k7.updated_at) == (DeliveryState.SKIPPED, at(7), at(600))
    ledger.mark_skipped_many([], now=at(700), reason="nothing")
    assert len(ledger.history()) == 1001


def test_recover_in_flight_after_reopen(store: Store) -> None:
    with store.open() as led:
        assert claim(led, "a")
        assert claim(led, "b")
        assert claim(led, "c")
        led.mark_sent("b", "ops", now=at(1))
        led.mark_retry("c", "ops", now=at(1), error="x", next_attempt=at(900))
    with store.open() as led:
        assert led.recover_in_flight(at(100)) == 1
        assert led.recover_in_flight(at(101)) == 0
        rec = only(led, "a")
        assert rec.state is DeliveryState.RETRYING
        assert rec.next_attempt == at(100)
        assert rec.last_error is not None
        assert "interrupted" in rec.last_error
        assert [r.key for r in led.due_retries(at(100))] == ["a"]
        assert only(led, "b").state is DeliveryState.SENT
        assert only(led, "c").next_attempt == at(900)
        assert claim(led, "a", now=at(100)) is True
        assert only(led, "a").attempts == 2


_CRASHING_CHILD = """
import sys, time
from datetime import datetime, UTC
from notifier.delivery.ledger import Claim, open_ledger
led = open_ledger(sys.argv[1])
t = datetime(2020, 11, 15, 14, 54, tzinfo=UTC)
ok = led.claim(Claim("k", "ops", deadline="lachin", kind="due", planned_at=t), now=t)
print("claimed" if ok else "refused", flush=True)
time.sleep(120)  # "sending" when it is killed
"""


def test_a_claim_survives_a_crash_right_after_it_returns(store: Store) -> None:
    env = clean_env(PYTHONPATH=str(Path(notifier.__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_CHILD, store.address],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "claimed"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    with store.open() as led:
        assert led.states(["k"]) == {("k", "ops"): DeliveryState.CLAIMED}
        assert led.recover_in_flight(at(5)) == 1
        assert claim(led, "k", now=at(5)) is True


# --------------------------------------------------------------------------- queries


def test_states_for_100k_keys(ledger: Ledger) -> None:
    present = [f"deadline-{i}/reminder/{i}" for i in range(1000)]
    for key in present:
        assert claim(ledger, key, channel="ops")
    for key in present[::2]:
        assert claim(ledger, key, channel="mail")
        ledger.mark_sent(key, "mail", now=at(1))
    asked = present + [f"absent-{i}" for i in range(99_000)]
    random.Random(7).shuffle(asked)

    started = time.perf_counter()
    result = ledger.states(asked)
    elapsed = time.perf_counter() - started

    expected = {(k, "ops"): DeliveryState.CLAIMED for k in present}
    expected.update({(k, "mail"): DeliveryState.SENT for k in present[::2]})
    assert result == expected
    assert elapsed < 5.0, f"states() took {elapsed:.2f}s for 100k keys"
    assert ledger.states([]) == {}
    assert ledger.states(iter([present[1], present[1]])) == {
        (present[1], "ops"): DeliveryState.CLAIMED
    }


def test_history_order_filter_limit_and_last_delivery(ledger: Ledger) -> None:
    assert claim(ledger, "k1", deadline="kalbajar", now=at(1))
    assert claim(ledger, "a1", deadline="aghdam", now=at(2))
    assert claim(ledger, "k2", deadline="kalbajar", now=at(3))
    assert claim(ledger, "digest", deadline=None, now=at(4))
    ledger.mark_sent("k1", "ops", now=at(10))
    ledger.mark_failed("k2", "ops", now=at(20), error="gone")

    assert [r.key for r in ledger.history()] == ["k2", "k1", "digest", "a1"]
    assert [r.key for r in ledger.history(deadline="kalbajar")] == ["k2", "k1"]
    assert [r.key for r in ledger.history(limit=2)] == ["k2", "k1"]
    assert [r.key for r in ledger.history(deadline="aghdam", limit=5)] == ["a1"]
    assert ledger.history(deadline="lachin") == []
    assert ledger.history(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        ledger.history(limit=-1)

    last = ledger.last_delivery("kalbajar")
    assert last is not None
    assert (last.key, last.state, last.updated_at) == ("k2", DeliveryState.FAILED, at(20))
    assert last.last_error == "gone"
    ledger.mark_sent("k1", "ops", now=at(30))  # already sent: changes nothing
    assert claim(ledger, "k3", deadline="kalbajar", now=at(25))
    last = ledger.last_delivery("kalbajar")
    assert last is not None
    assert (last.key, last.state) == ("k3", DeliveryState.CLAIMED)
    aghdam = ledger.last_delivery("aghdam")
    assert aghdam is not None
    assert aghdam.state is DeliveryState.CLAIMED
    assert ledger.last_delivery("lachin") is None
    # As of an earlier instant: the last row updated by then, never a later one.
    before = ledger.last_delivery("kalbajar", upto=at(22))
    assert before is not None
    assert before.key == "k2"
    assert ledger.last_delivery("kalbajar", upto=at(0)) is None


def test_first_seen_is_stable_across_reopen(store: Store) -> None:
    with store.open() as led:
        assert led.first_seen() == {}
        assert led.record_first_seen(["kalbajar", "kalbajar/ext/1", "kalbajar"], T0) == {
            "kalbajar": T0,
            "kalbajar/ext/1": T0,
        }
    with store.open() as led:
        got = led.record_first_seen(["kalbajar/ext/1", "lachin", "kalbajar"], at(3600))
        assert got == {"kalbajar/ext/1": T0, "lachin": at(3600), "kalbajar": T0}
        assert led.record_first_seen([], at(7200)) == {}
    with store.open(readonly=True) as ro:
        assert ro.first_seen() == {"kalbajar": T0, "kalbajar/ext/1": T0, "lachin": at(3600)}


def test_first_seen_keeps_ids_exactly(store: Store) -> None:
    """Quotes, backslashes, controls and characters outside the BMP come back
    unchanged (SQLite gets the ids as one JSON array)."""
    odd = ['a"b', "back\\slash", "tab\tnew\nline", "Ağdam", "emoji-\U0001f600", "x" * 300]
    with store.open() as led:
        assert led.record_first_seen(odd, T0) == dict.fromkeys(odd, T0)
        assert led.record_first_seen([*odd, "new"], at(60)) == {
            **dict.fromkeys(odd, T0), "new": at(60)}
    with store.open(readonly=True) as ro:
        assert set(ro.first_seen()) == {*odd, "new"}


def test_last_alive(store: Store) -> None:
    with store.open() as led:
        assert led.last_alive() is None
        led.touch_alive(T0)
        assert led.last_alive() == T0
        led.touch_alive(at(30))
        assert led.last_alive() == at(30)
    with store.open() as led:
        assert led.last_alive() == at(30)


def test_one_delivery_is_looked_up_by_key_and_channel(ledger: Ledger) -> None:
    assert claim(ledger, deadline="kalbajar")
    assert claim(ledger, "other", deadline="kalbajar", now=at(1))
    ledger.mark_retry(KEY, "ops", now=at(2), error="HTTP 503", next_attempt=at(30))
    found = ledger.delivery(KEY, "ops")
    assert found == only(ledger)
    assert found is not None
    assert (found.state, found.created_at, found.next_attempt) == (
        DeliveryState.RETRYING, T0, at(30))
    assert ledger.delivery(KEY, "mail") is None
    assert ledger.delivery("nope", "ops") is None


# --------------------------------------------------------------------------- reopening


def test_reopen_after_close_keeps_data(store: Store) -> None:
    led = store.open()
    assert claim(led)
    led.mark_sent(KEY, "ops", now=at(1))
    before = led.history()
    led.close()
    led.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        led.history()
    with pytest.raises(LedgerError, match="closed"):
        claim(led)
    with store.open() as again:
        assert again.history() == before
        assert claim(again) is False




def test_readonly_sees_a_live_writer_and_refuses_writes(store: Store) -> None:
    with store.open() as writer:
        assert claim(writer, "a")
        with store.open(readonly=True) as reader:
            assert reader.states(["a", "b"]) == {("a", "ops"): DeliveryState.CLAIMED}
            assert claim(writer, "b")
            writer.mark_sent("a", "ops", now=at(1))
            assert reader.states(["a", "b"]) == {
                ("a", "ops"): DeliveryState.SENT,
                ("b", "ops"): DeliveryState.CLAIMED,
            }
            with pytest.raises(LedgerError, match="read-only"):
                claim(reader, "c")
            with pytest.raises(LedgerError, match="read-only"):
                reader.touch_alive(T0)
            with pytest.raises(LedgerError, match="read-only"):
                reader.record_first_seen(["x"], T0)
        assert writer.states(["c"]) == {}
    # after the writer closed (and removed its -wal), a read-only open still works
    with store.open(readonly=True) as reader:
        assert len(reader.history()) == 2


# --------------------------------------------------------------------------- write failures


def claims(*keys: str, channel: str = "ops", late: bool = False) -> list[Claim]:
    return [Claim(k, channel, "kalbajar", "reminder", T0, late) for k in keys]


def test_claim_many_claims_exactly_what_a_claim_would(ledger: Ledger) -> None:
    assert claim(ledger, "claimed")
    assert claim(ledger, "sent")
    ledger.mark_sent("sent", "ops", now=at(1))
    for key, due in (("due retry", at(5)), ("later retry", at(3600))):
        assert claim(ledger, key)
        ledger.mark_retry(key, "ops", now=at(2), error="500", next_attempt=due)
    got = ledger.claim_many(
        claims("new", "claimed", "sent", "due retry", "later retry", "new", late=True),
        now=at(10))
    # The second "new" sees the row the first one made in the same transaction.
    assert got == [True, False, False, True, False, False]
    states = ledger.states(["new", "claimed", "sent", "due retry", "later retry"])
    assert states == {
        ("new", "ops"): DeliveryState.CLAIMED,
        ("claimed", "ops"): DeliveryState.CLAIMED,
        ("sent", "ops"): DeliveryState.SENT,
        ("due retry", "ops"): DeliveryState.CLAIMED,
        ("later retry", "ops"): DeliveryState.RETRYING,
    }
    assert (only(ledger, "new").attempts, only(ledger, "new").late) == (1, True)
    assert only(ledger, "new").created_at == at(10)
    assert (only(ledger, "due retry").attempts, only(ledger, "due retry").late) == (2, True)
    assert ledger.claim_many([], now=at(11)) == []


def test_mark_sent_many_marks_all_in_one_go_and_keeps_sent_times(ledger: Ledger) -> None:
    assert ledger.claim_many(claims("a", "b", "c"), now=T0) == [True] * 3
    ledger.mark_sent("c", "ops", now=at(1))
    ledger.mark_sent_many([Sent("a", "ops", at(2)), Sent("b", "ops", at(3)),
                           Sent("c", "ops", at(4))])
    assert [(only(ledger, k).state, only(ledger, k).updated_at) for k in "abc"] == [
        (DeliveryState.SENT, at(2)), (DeliveryState.SENT, at(3)), (DeliveryState.SENT, at(1))]
    ledger.mark_sent_many([])


def test_mark_sent_many_with_an_unknown_row_marks_none(ledger: Ledger) -> None:
    assert ledger.claim_many(claims("a"), now=T0) == [True]
    with pytest.raises(LedgerError, match="no delivery"):
        ledger.mark_sent_many([Sent("a", "ops", at(1)), Sent("ghost", "ops", at(1))])
    assert only(ledger, "a").state is DeliveryState.CLAIMED


# --------------------------------------------------------------------------- concurrency


def _race(n: int, attempt: Callable[[int], bool]) -> list[bool]:
    """Run attempt(0..n-1) in n threads released at the same instant."""
    barrier = threading.Barrier(n)

    def run(i: int) -> bool:
        barrier.wait(timeout=30)
        return attempt(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        return [f.result(timeout=60) for f in futures]  # re-raises a thread's exception


def test_concurrent_claims_on_one_ledger_yield_exactly_one_winner(ledger: Ledger) -> None:
    for round_ in range(5):
        key = f"race-{round_}"
        results = _race(8, partial(lambda k, _i: claim(ledger, k), key))
        assert sorted(results) == [False] * 7 + [True]
        assert only(ledger, key).attempts == 1


def test_concurrent_claims_through_separate_connections(store: Store) -> None:
    ledgers = [store.open() for _ in range(8)]
    try:
        results = _race(8, lambda i: claim(ledgers[i], "shared"))
        assert sorted(results) == [False] * 7 + [True]
        ledgers[0].mark_retry("shared", "ops", now=T0, error="x", next_attempt=at(1))
        results = _race(8, lambda i: claim(ledgers[i], "shared", now=at(1)))
        assert sorted(results) == [False] * 7 + [True]
        assert only(ledgers[3], "shared").attempts == 2
    finally:
        for led in ledgers:
            led.close()


def test_threads_share_one_ledger_safely(ledger: Ledger) -> None:
    def work(i: int) -> bool:
        for j in range(40):
            key = f"t{i}-{j}"
            assert claim(ledger, key)
            ledger.mark_sent(key, "ops", now=at(j))
            ledger.states([key])
        return True

    assert _race(8, work) == [True] * 8
    states = ledger.states(f"t{i}-{j}" for i in range(8) for j in range(40))
    assert len(states) == 320
    assert set(states.values()) == {DeliveryState.SENT}


# --------------------------------------------------------------------------- model check

KEYS = ("k1", "k2")
CHANNELS = ("ops", "mail")


class LedgerModel(RuleBasedStateMachine):
    """Random operation sequences agree with a dictionary model of the contract."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.store = make_store(backend)
        self.ledger: Ledger = self.store.open()
        self.now = T0
        # (key, channel) -> (state, attempts, next_attempt)
        self.model: dict[tuple[str, str], tuple[DeliveryState, int, datetime | None]] = {}

    def teardown(self) -> None:
        self.ledger.close()
        self.store.drop()

    @initialize()
    def start(self) -> None:
        assert self.ledger.history() == []

    @rule(seconds=st.integers(min_value=0, max_value=120))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(key=st.sampled_from(KEYS), channel=st.sampled_from(CHANNELS))
    def claim(self, key: str, channel: str) -> None:
        got = claim(self.ledger, key, channel, now=self.now)
        row = self.model.get((key, channel))
        if row is None:
            expected, self.model[(key, channel)] = True, (DeliveryState.CLAIMED, 1, None)
        elif row[0] is DeliveryState.RETRYING and row[2] is not None and row[2] <= self.now:
            expected, self.model[(key, channel)] = True, (DeliveryState.CLAIMED, row[1] + 1, None)
        else:
            expected = False
        assert got is expected

    def _mark(self, key: str, channel: str, op: Callable[[], None], new: tuple[
        frozenset[DeliveryState], DeliveryState, datetime | None
    ]) -> None:
        row = self.model.get((key, channel))
        if row is None:
            with pytest.raises(LedgerError, match="no delivery"):
                op()
            return
        op()
        allowed, state, next_attempt = new
        if row[0] in allowed:
            self.model[(key, channel)] = (state, row[1], next_attempt)

    @rule(key=st.sampled_from(KEYS), channel=st.sampled_from(CHANNELS))
    def sent(self, key: str, channel: str) -> None:
        self._mark(
            key, channel, lambda: self.ledger.mark_sent(key, channel, now=self.now),
            (frozenset(DeliveryState) - {DeliveryState.SENT}, DeliveryState.SENT, None),
        )

    @rule(
        key=st.sampled_from(KEYS),
        channel=st.sampled_from(CHANNELS),
        delay=st.integers(min_value=0, max_value=300),
    )
    def retry(self, key: str, channel: str, delay: int) -> None:
        when = self.now + timedelta(seconds=delay)
        self._mark(
            key, channel,
            lambda: self.ledger.mark_retry(
                key, channel, now=self.now, error="HTTP 503", next_attempt=when
            ),
            (frozenset({DeliveryState.CLAIMED, DeliveryState.RETRYING}),
             DeliveryState.RETRYING, when),
        )

    @rule(key=st.sampled_from(KEYS), channel=st.sampled_from(CHANNELS))
    def failed(self, key: str, channel: str) -> None:
        self._mark(
            key, channel,
            lambda: self.ledger.mark_failed(key, channel, now=self.now, error="gone"),
            (frozenset({DeliveryState.CLAIMED, DeliveryState.RETRYING}),
             DeliveryState.FAILED, None),
        )

    @rule(key=st.sampled_from(KEYS), channel=st.sampled_from(CHANNELS))
    def skipped(self, key: str, channel: str) -> None:
        self.ledger.mark_skipped(
            Skip(key, channel, deadline="kalbajar", kind="reminder", planned_at=T0), now=self.now,
            reason="catch-up",
        )
        row = self.model.get((key, channel))
        if row is None:
            self.model[(key, channel)] = (DeliveryState.SKIPPED, 0, None)
        elif row[0] is DeliveryState.RETRYING:
            self.model[(key, channel)] = (DeliveryState.SKIPPED, row[1], None)

    @precondition(lambda self: any(r[0] is DeliveryState.CLAIMED for r in self.model.values()))
    @rule()
    def recover(self) -> None:
        expected = 0
        for k, (state, attempts, _) in list(self.model.items()):
            if state is DeliveryState.CLAIMED:
                self.model[k] = (DeliveryState.RETRYING, attempts, self.now)
                expected += 1
        assert self.ledger.recover_in_flight(self.now) == expected

    @invariant()
    def agrees(self) -> None:
        assert self.ledger.states(KEYS) == {k: v[0] for k, v in self.model.items()}
        rows = {(r.key, r.channel): r for r in self.ledger.history()}
        assert {k: (r.state, r.attempts, r.next_attempt) for k, r in rows.items()} == self.model
        due = {(r.key, r.channel) for r in self.ledger.due_retries(self.now)}
        assert due == {
            k for k, (s, _, n) in self.model.items()
            if s is DeliveryState.RETRYING and n is not None and n <= self.now
        }
        pending = [n for s, _, n in self.model.values() if s is DeliveryState.RETRYING]
        assert self.ledger.next_retry_at() == min((n for n in pending if n), default=None)


@pytest.mark.parametrize("backend", STORES)
def test_ledger_model(backend: str) -> None:
    # Hypothesis takes any callable that returns a machine (its docs); the stub says a class.
    run_state_machine_as_test(
        lambda: LedgerModel(backend),  # type: ignore[arg-type]
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

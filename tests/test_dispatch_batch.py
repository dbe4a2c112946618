"""The dispatcher under a burst: batched claims, parallel sends, group-committed marks.

Real parts: a SQLite ledger file, apprise json:// to a real HTTP receiver and
jsonl:// files; the crash is a real SIGKILL of a process running a dispatcher.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.jsonl import read_jsonl
from support.receivers import HttpReceiver
from support.senders import senders
from support.times import utc_now
from support.waits import wait_until

from notifier.config import loader as config
from notifier.delivery.channels import PARALLEL_SENDS
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ledger import Claim, DeliveryState, open_ledger
from notifier.delivery.ledger.sqlite import SqliteLedger
from notifier.messages.render import Message, Renderer
from notifier.schedule import planning
from notifier.schedule.model import Notification, Schedule

H = timedelta(hours=1)


class CountingLedger(SqliteLedger):
    """The real ledger, noting the size of every batch of claims it is asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def claim_many(self, claims: Iterable[Claim], *, now: datetime) -> list[bool]:
        wanted = list(claims)
        self.batches.append(len(wanted))
        return super().claim_many(wanted, now=now)


class Burst:
    """`count` deadlines due at one instant, an HTTP and a jsonl channel, a ledger file."""

    def __init__(self, tmp: Path, receiver: HttpReceiver, count: int) -> None:
        self.db = tmp / "ledger.db"
        self.jsonl = tmp / "out.jsonl"
        self.receiver = receiver
        base = utc_now()
        self.config_path = write_config(tmp / "config.toml", config_toml(
            state=self.db, channels={"http": receiver.url, "file": f"jsonl://{self.jsonl}"},
            deadlines="".join(deadline_toml(f"d{i:04d}", base, announced=base - 10 * H)
                              for i in range(count)),
            zone="Asia/Baku"))
        self.schedule: Schedule = config.load(self.config_path).schedule
        self.items: list[Notification] = planning.plan(self.schedule, base - H, base + H)
        assert len(self.items) == count
        self.renderer = Renderer()
        self.ledgers: list[SqliteLedger] = []

    def render(self, n: Notification, schedule: Schedule, at: datetime) -> Message:
        return self.renderer.render(n, schedule, sent_at=at)

    def dispatcher(self, *, parallel: int | None = None, timeout: float = 5.0) -> Dispatcher:
        ledger = CountingLedger(self.db)
        self.ledgers.append(ledger)
        d = Dispatcher(ledger, clock=lambda: datetime.now(UTC), render=self.render,
                       give_up_after=24 * H)
        d.configure(self.schedule, senders(self.schedule, timeout=timeout, parallel=parallel))
        return d

    def states(self) -> Counter[tuple[str, DeliveryState]]:
        with open_ledger(self.db, readonly=True) as book:
            return Counter((r.channel, r.state) for r in book.history())

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()


@pytest.fixture
def burst(tmp_path: Path, http_receiver: HttpReceiver) -> Iterator[Burst]:
    b = Burst(tmp_path, http_receiver, 120)
    yield b
    b.close()


def test_a_burst_is_sent_once_per_channel_in_parallel_and_in_order_to_a_file(
    burst: Burst,
) -> None:
    d = burst.dispatcher()
    assert d._lanes == {}  # lanes come with the first job
    for n in burst.items:
        d.submit(n)
    assert d.wait_idle(60)
    assert burst.receiver.wait_for(len(burst.items), timeout=5)
    keys = [n.key for n in burst.items]
    http = Counter(r.json["title"] for r in burst.receiver.requests)
    assert len(http) == len(keys)
    assert set(http.values()) == {1}
    # One send at a time to a file: it gets the burst in the order handed over.
    assert [line["key"] for line in read_jsonl(burst.jsonl)] == keys
    assert burst.states() == Counter({("http", DeliveryState.SENT): len(keys),
                                      ("file", DeliveryState.SENT): len(keys)})
    assert d.sent == 2 * len(keys)
    lanes = d._lanes  # how many workers each channel got
    assert (len(lanes["http"].threads), len(lanes["file"].threads)) == (PARALLEL_SENDS, 1)
    assert d.stop(5)


def queued_behind_a_hung_send(burst: Burst, count: int) -> tuple[Dispatcher, list[Notification]]:
    """One send to the HTTP channel hangs; `count` more are handed over behind it."""
    burst.receiver.hang()
    d = burst.dispatcher(parallel=1)
    d.submit(burst.items[0], channels=("http",))
    assert burst.receiver.wait_for(1)
    rest = burst.items[1:count + 1]
    for n in rest:
        d.submit(n, channels=("http",))
    return d, rest


def test_deliveries_that_wait_are_claimed_together(burst: Burst) -> None:
    """While a send hangs, the deliveries queued behind it are then claimed in one go."""
    d, rest = queued_behind_a_hung_send(burst, 40)
    burst.receiver.release()
    assert d.wait_idle(30)
    ledger = burst.ledgers[0]
    assert isinstance(ledger, CountingLedger)
    assert ledger.batches == [1, len(rest)]
    assert len(burst.receiver.requests) == 1 + len(rest)
    assert burst.states() == Counter({("http", DeliveryState.SENT): 1 + len(rest)})
    # Handed over again (a second look at the plan), nothing goes out twice.
    for n in burst.items[:41]:
        d.submit(n, channels=("http",))
    assert d.wait_idle(10)
    assert len(burst.receiver.requests) == 1 + len(rest)
    assert d.stop(5)


def test_stop_gives_claimed_but_unsent_deliveries_back(burst: Burst) -> None:
    d, rest = queued_behind_a_hung_send(burst, 20)
    # The first send finishes; the rest are claimed together and the next send hangs.
    burst.receiver.release()
    burst.receiver.hang()
    assert burst.receiver.wait_for(2)
    assert not d.stop(0.2)
    states = burst.states()
    # The one in flight stays claimed (recover_in_flight sends it again at the
    # next start); the others, never started, are due retries now.
    assert states == Counter({("http", DeliveryState.SENT): 1,
                              ("http", DeliveryState.CLAIMED): 1,
                              ("http", DeliveryState.RETRYING): len(rest) - 1})
    ledger = burst.ledgers[0]
    assert isinstance(ledger, CountingLedger)
    assert ledger.batches == [1, len(rest)]
    assert len(ledger.due_retries(datetime.now(UTC))) == len(rest) - 1
    assert d.pending() == 1
    burst.receiver.release()


CHILD = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime, timedelta
    from notifier.config import loader as config
    from notifier.schedule import planning
    from notifier.delivery.channels import ChannelSender
    from notifier.delivery.dispatch import Dispatcher
    from notifier.delivery.ledger import open_ledger
    from notifier.messages.render import Renderer

    from pathlib import Path
    cfg = config.load(Path(sys.argv[1]))
    now = datetime.now(UTC)
    items = planning.plan(cfg.schedule, now - timedelta(hours=1), now + timedelta(hours=1))
    ledger = open_ledger(cfg.state)
    renderer = Renderer()
    d = Dispatcher(ledger, clock=lambda: datetime.now(UTC),
                   render=lambda n, s, at: renderer.render(n, s, sent_at=at),
                   give_up_after=timedelta(hours=24))
    sender = ChannelSender(cfg.schedule.channels["http"], timeout=30)
    sender.parallel = 1
    d.configure(cfg.schedule, {"http": sender})
    d.submit(items[0], channels=("http",))
    while not ledger.states([items[0].key]):
        time.sleep(0.01)
    for n in items[1:]:
        d.submit(n, channels=("http",))
    print("queued", flush=True)
    time.sleep(60)
""")


@pytest.mark.timeout(60)
def test_a_kill_in_the_middle_of_a_claimed_batch_loses_nothing(
    tmp_path: Path, http_receiver: HttpReceiver,
) -> None:
    b = Burst(tmp_path, http_receiver, 30)
    try:
        http_receiver.hang()
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(b.config_path)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "queued"
            assert http_receiver.wait_for(1)
            # Let the first send finish; the batch behind it is claimed and its first send hangs.
            http_receiver.release()
            http_receiver.hang()
            assert http_receiver.wait_for(2)
            wait_until(lambda: b.states()[("http", DeliveryState.SENT)] >= 1, 10,
                       "the first send's sent mark")
        finally:
            child.kill()
            child.wait(10)
        at_kill = b.states()
        assert at_kill[("http", DeliveryState.CLAIMED)] >= 2, at_kill  # claimed, mostly unsent
        assert sum(at_kill.values()) == len(b.items)  # the whole batch was claimed at once
        http_receiver.release()

        # The next start: rows left claimed become retries, handed over again.
        d = b.dispatcher()
        ledger = b.ledgers[0]
        assert ledger.recover_in_flight(datetime.now(UTC)) == at_kill[
            ("http", DeliveryState.CLAIMED)]
        by_key = {n.key: n for n in b.items}
        for rec in ledger.due_retries(datetime.now(UTC)):
            d.submit(by_key[rec.key], channels=("http",), attempt=rec.attempts + 1)
        assert d.wait_idle(30)
        assert d.stop(5)
        arrived = Counter(r.json["title"] for r in http_receiver.requests)
        assert len(arrived) == len(b.items)  # nothing lost
        # Only the send in flight at the kill can arrive twice.
        assert sum(arrived.values()) - len(arrived) <= 1
        assert b.states() == Counter({("http", DeliveryState.SENT): len(b.items)})
    finally:
        b.close()

"""Claim -> send -> mark, with retries, one worker per channel.

Each channel has its own thread and queue, so a slow, failing or hanging
channel never delays another. A delivery is claimed in the ledger (durably)
before it is sent and marked after; a send whose claim could not be written
does not happen (the claim is retried until the disk recovers).

Retries: a failure is marked in the ledger with the time of the next attempt
(`backoff`: 30 s doubling to 1 h, jittered; a permanent failure waits the
full hour), and the owner hands the delivery back once it is due. A retry is
claimed as it is handed back, so one waiting behind a slow send is neither
handed back again nor seen as due again. A delivery is given up (marked
failed) when it fails `give_up_after` or more after its first attempt.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from notifier.channels import OutgoingMessage
from notifier.errors import DeliveryError, LedgerError, LedgerWriteError
from notifier.ledger import Ledger
from notifier.model import Notification, Schedule
from notifier.render import Message

log = logging.getLogger("notifier.dispatch")

FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
LATE_AFTER = timedelta(seconds=60)
NOT_STARTED = "interrupted: the daemon stopped before this retry was sent"


class Sender(Protocol):
    """What the dispatcher needs of a channel (channels.ChannelSender is one)."""

    def send(self, msg: OutgoingMessage, /) -> object: ...


Render = Callable[[Notification, Schedule, datetime], Message]


def backoff(
    attempts: int,
    rng: random.Random,
    *,
    first: timedelta = FIRST_BACKOFF,
    maximum: timedelta = MAX_BACKOFF,
) -> timedelta:
    """The wait after `attempts` failed attempts: `first` doubling up to `maximum`, jittered.

    The un-jittered wait is first, 2 x first, 4 x first, ... capped at `maximum`
    (30 s, 1 min, 2 min, ... 32 min, then 1 h). The jitter spreads the retries
    of many messages that failed together: the wait is drawn uniformly from
    -25 % .. +25 % of that value, but never beyond `maximum`, so at the cap it
    lies between 45 min and 1 h.
    """
    if first <= timedelta(0) or maximum < first:
        raise ValueError("backoff needs 0 < first <= maximum")
    base = first
    # Doubling stops at the cap, so a delivery retried for weeks never overflows.
    for _ in range(max(0, attempts - 1)):
        if base >= maximum:
            break
        base *= 2
    base = min(base, maximum)
    low = base * 0.75
    high = min(base * 1.25, maximum)
    seconds = rng.uniform(low.total_seconds(), high.total_seconds())
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Job:
    notification: Notification
    channel: str
    attempt: int = 1
    fixed: Message | None = None
    """A pre-rendered message (catch-up summaries)."""
    claimed: bool = False
    """Already claimed in the ledger when it was handed over (retries)."""
    late: bool = False
    """Marked late whatever its delay (a catch-up after downtime)."""


_STOP = object()


class Dispatcher:
    """Delivers submitted notifications, one worker thread and queue per channel.

    A failed send is marked for retry in the ledger with `backoff` (from
    `first_backoff` doubling to `max_backoff`, jittered; a permanent failure
    such as HTTP 401 waits `max_backoff` straight away) and handed back by
    the daemon when due (`Ledger.due_retries`). A delivery is given up, and
    marked failed, once a failure happens `give_up_after` or more after its
    first attempt. `on_retry` is told the time of every retry that was
    scheduled, so the owner can wake up for it.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime],
        render: Render,
        give_up_after: timedelta,
        late_after: timedelta = LATE_AFTER,
        on_sent: Callable[[OutgoingMessage, str, datetime], None] | None = None,
        rng: random.Random | None = None,
        first_backoff: timedelta = FIRST_BACKOFF,
        max_backoff: timedelta = MAX_BACKOFF,
        on_retry: Callable[[datetime], None] | None = None,
    ) -> None:
        if first_backoff <= timedelta(0) or max_backoff < first_backoff:
            raise ValueError("need 0 < first_backoff <= max_backoff")
        self.late_after = late_after
        self._on_sent = on_sent
        self.on_retry = on_retry
        self._ledger = ledger
        self._clock = clock
        self._render = render
        self.give_up_after = give_up_after
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._senders: dict[str, Sender] = {}
        self._schedule = Schedule(deadlines=())
        self._queues: dict[str, queue.Queue[Job | object]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._first_attempt: dict[tuple[str, str], datetime] = {}
        """When each delivery still being retried by this process was first attempted."""
        self._queued: set[tuple[str, str]] = set()
        """(key, channel) of every job queued or being sent."""
        self._outstanding = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.sent = 0
        self.failed = 0

    def configure(self, schedule: Schedule, senders: Mapping[str, Sender],
                  render: Render | None = None) -> None:
        """Use a new schedule and channel set (on reload); workers are kept per name."""
        with self._lock:
            self._schedule = schedule
            self._senders = dict(senders)
            if render is not None:
                self._render = render

    def submit(self, n: Notification, *, channels: tuple[str, ...] | None = None,
               attempt: int = 1, fixed: Message | None = None, late: bool = False) -> None:
        """Queue `n` for each of `channels` (default: its own).

        The message is marked late when it is sent more than `late_after`
        after its planned time, or always with `late` (missed during downtime).

        A delivery that is already queued or being sent is not queued again.
        A retry (`attempt` > 1) is claimed in the ledger right here, not when
        its turn comes: while it waits behind a slow send on its channel, the
        ledger then no longer lists it among the due retries, so the owner
        neither hands it over again nor wakes up for it again and again. A
        retry the ledger no longer offers (sent, given up, not due) is dropped.
        """
        for channel in channels if channels is not None else n.channels:
            ident = (n.key, channel)
            with self._lock:
                if ident in self._queued:
                    continue
                self._queued.add(ident)
                self._outstanding += 1
            claimed = False
            if attempt > 1:
                try:
                    claimed = self._claim(n, channel, self._clock(), late=late)
                except LedgerWriteError as e:
                    # The worker claims it instead, patiently (see _retrying).
                    log.error("cannot claim the retry of %s to %s yet: %s", n.key, channel, e)
                else:
                    if not claimed:
                        self._done(ident)
                        continue
            self._queue(channel).put(Job(n, channel, attempt, fixed, claimed, late))

    def _is_late(self, n: Notification, now: datetime, *, forced: bool) -> bool:
        return forced or now - n.at > self.late_after

    def _claim(self, n: Notification, channel: str, now: datetime, *, late: bool) -> bool:
        return self._ledger.claim(n.key, channel, deadline=n.deadline, kind=n.kind,
                                  planned_at=n.at, now=now,
                                  late=self._is_late(n, now, forced=late))

    def _done(self, ident: tuple[str, str]) -> None:
        with self._lock:
            self._queued.discard(ident)
            self._outstanding -= 1

    def pending(self) -> int:
        """Jobs queued or in flight, over all channels."""
        return self._outstanding

    def _queue(self, channel: str) -> queue.Queue[Job | object]:
        with self._lock:
            q = self._queues.get(channel)
            if q is None:
                q = self._queues[channel] = queue.Queue()
                # Daemon threads: a send stuck past its timeout must not block exit.
                t = threading.Thread(target=self._work, args=(channel, q),
                                     name=f"channel-{channel}", daemon=True)
                self._threads[channel] = t
                t.start()
            return q

    def _work(self, channel: str, q: queue.Queue[Job | object]) -> None:
        while True:
            job = q.get()
            if job is _STOP:
                return
            assert isinstance(job, Job)
            try:
                self._deliver(job)
            except Exception:
                log.exception("delivery of %s to %s crashed", job.notification.key, channel)
            finally:
                self._done((job.notification.key, channel))

    def _retrying(self, what: Callable[[], bool | None]) -> bool | None:
        """Run a ledger write until it succeeds (disk full recovers) or we stop."""
        pause = 0.5
        while True:
            try:
                return what()
            except LedgerWriteError as e:
                if self._stopping.is_set():
                    raise
                log.error("ledger write failed, retrying in %.0f s: %s", pause, e)
                time.sleep(pause)
                pause = min(pause * 2, 30.0)

    def _deliver(self, job: Job) -> None:
        n, channel = job.notification, job.channel
        now = self._clock()
        late = self._is_late(n, now, forced=job.late)
        with self._lock:
            sender = self._senders.get(channel)
            schedule = self._schedule
            render = self._render
        claimed = job.claimed or self._retrying(lambda: self._claim(n, channel, now, late=late))
        if not claimed:
            return
        if job.attempt <= 1:
            with self._lock:
                self._first_attempt.setdefault((n.key, channel), now)
        if sender is None:
            self._retrying(lambda: self._ledger.mark_failed(
                n.key, channel, now=now, error="channel no longer configured"))
            self._forget(n.key, channel)
            return
        try:
            # On time means "as planned": the text then reads as it would at n.at.
            rendered = job.fixed or render(n, schedule, now if late else n.at)
            msg = OutgoingMessage(
                key=n.key, kind=n.kind, deadline=n.deadline, title=rendered.title,
                body=rendered.body, due=n.due, planned_at=n.at, late=late,
                sent_at=self._clock())
            sender.send(msg)
        except DeliveryError as e:
            self._after_failure(job, str(e), permanent=e.permanent)
            return
        except Exception as e:  # noqa: BLE001 - a rendering bug fails this delivery, visibly
            self._after_failure(job, f"{type(e).__name__}: {e}", permanent=False)
            return
        done = self._clock()
        self._retrying(lambda: self._ledger.mark_sent(n.key, channel, now=done))
        self._forget(n.key, channel)
        with self._lock:
            self.sent += 1
        if self._on_sent is not None:
            self._on_sent(msg, channel, done)
        log.info("sent %s to %s%s", n.key, channel,
                 f" (late by {int((done - n.at).total_seconds())} s)" if late else "")

    def _forget(self, key: str, channel: str) -> None:
        with self._lock:
            self._first_attempt.pop((key, channel), None)

    def _started(self, n: Notification, channel: str) -> datetime:
        """When delivery of `n` to `channel` was first attempted (its planned time if unknown)."""
        with self._lock:
            known = self._first_attempt.get((n.key, channel))
        if known is not None:
            return known
        if n.deadline is not None:
            # A retry handed over after a restart: the ledger row was created
            # by the first claim.
            try:
                rows = self._ledger.history(n.deadline)
            except LedgerError as e:
                log.error("cannot read when %s to %s was first tried: %s", n.key, channel, e)
                rows = []
            for rec in rows:
                if rec.key == n.key and rec.channel == channel:
                    with self._lock:
                        self._first_attempt[(n.key, channel)] = rec.created_at
                    return rec.created_at
        return n.at

    def _after_failure(self, job: Job, error: str, *, permanent: bool) -> None:
        n, channel = job.notification, job.channel
        now = self._clock()
        # Retried for give_up_after from the first attempt, not from the planned
        # time: a notification sent late after downtime gets the full period too.
        if now - self._started(n, channel) >= self.give_up_after:
            self._retrying(lambda: self._ledger.mark_failed(n.key, channel, now=now, error=error))
            self._forget(n.key, channel)
            with self._lock:
                self.failed += 1
            log.error("gave up on %s to %s after %d attempts: %s",
                      n.key, channel, job.attempt, error)
            return
        # A permanent failure (HTTP 401/403/404/410, a URL that does not load)
        # will not heal by itself within seconds: retry slowly, in case the
        # operator fixes it, instead of hammering the service.
        wait = backoff(1_000_000 if permanent else job.attempt, self._rng,
                       first=self.first_backoff, maximum=self.max_backoff)
        nxt = now + wait
        self._retrying(lambda: self._ledger.mark_retry(
            n.key, channel, now=now, error=error, next_attempt=nxt))
        log.warning("send of %s to %s failed (attempt %d%s), retry at %s: %s",
                    n.key, channel, job.attempt, ", permanent" if permanent else "",
                    nxt.isoformat(timespec="seconds"), error)
        if self.on_retry is not None:
            self.on_retry(nxt)

    def idle(self) -> bool:
        return self.pending() == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    def _release_queued(self, q: queue.Queue[Job | object]) -> None:
        """Give retries that were claimed when handed over, but never started, back.

        They become due retries again (as `recover_in_flight` would make them
        at the next start), so the next start does not count them as sends
        that were in flight.
        """
        now = self._clock()
        while True:
            try:
                job = q.get_nowait()
            except queue.Empty:
                return
            if not isinstance(job, Job):
                continue
            n = job.notification
            try:
                if job.claimed:
                    self._ledger.mark_retry(n.key, job.channel, now=now, next_attempt=now,
                                            error=NOT_STARTED)
            except LedgerError as e:
                log.error("cannot release the retry of %s to %s: %s", n.key, job.channel, e)
            finally:
                self._done((n.key, job.channel))

    def stop(self, timeout: float) -> bool:
        """Finish in-flight and queued sends within `timeout` seconds; True if all finished."""
        finished = self.wait_idle(timeout)
        self._stopping.set()
        for q in list(self._queues.values()):
            self._release_queued(q)
            q.put(_STOP)
        for t in list(self._threads.values()):
            t.join(timeout=0.5)
        return finished

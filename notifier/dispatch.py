"""Claim -> send -> mark, with retries, one worker per channel.

Each channel has its own thread and queue, so a slow, failing or hanging
channel never delays another. A delivery is claimed in the ledger (durably)
before it is sent and marked after; a send whose claim could not be written
does not happen (the claim is retried until the disk recovers).
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
from notifier.errors import DeliveryError, LedgerWriteError
from notifier.ledger import Ledger
from notifier.model import Notification, Schedule
from notifier.render import Message

log = logging.getLogger("notifier.dispatch")

FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
LATE_AFTER = timedelta(seconds=60)


class Sender(Protocol):
    """What the dispatcher needs of a channel (channels.ChannelSender is one)."""

    def send(self, msg: OutgoingMessage, /) -> object: ...


Render = Callable[[Notification, Schedule, datetime], Message]


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """30 s doubling to 1 h, with +-25 % jitter so retries of many messages spread out."""
    base: timedelta = min(FIRST_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)
    return base * rng.uniform(0.75, 1.25)


@dataclass(frozen=True)
class Job:
    notification: Notification
    channel: str
    attempt: int = 1
    fixed: Message | None = None
    """A pre-rendered message (catch-up summaries)."""


_STOP = object()


class Dispatcher:
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
    ) -> None:
        self.late_after = late_after
        self._on_sent = on_sent
        self._ledger = ledger
        self._clock = clock
        self._render = render
        self.give_up_after = give_up_after
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._senders: dict[str, Sender] = {}
        self._schedule = Schedule(deadlines=())
        self._queues: dict[str, queue.Queue[Job | object]] = {}
        self._threads: dict[str, threading.Thread] = {}
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
               attempt: int = 1, fixed: Message | None = None) -> None:
        for channel in channels if channels is not None else n.channels:
            q = self._queue(channel)
            with self._lock:
                self._outstanding += 1
            q.put(Job(n, channel, attempt, fixed))

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
                with self._lock:
                    self._outstanding -= 1

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
        late = now - n.at > self.late_after
        with self._lock:
            sender = self._senders.get(channel)
            schedule = self._schedule
            render = self._render
        claimed = self._retrying(lambda: self._ledger.claim(
            n.key, channel, deadline=n.deadline, kind=n.kind, planned_at=n.at, now=now, late=late))
        if not claimed:
            return
        if sender is None:
            self._retrying(lambda: self._ledger.mark_failed(
                n.key, channel, now=now, error="channel no longer configured"))
            return
        try:
            # On time means "as planned": the text then reads as it would at n.at.
            rendered = job.fixed or render(n, schedule, now if late else n.at)
            msg = OutgoingMessage(
                key=n.key, kind=n.kind, deadline=n.deadline, title=rendered.title,
                body=rendered.body, due=n.due, planned_at=n.at, late=late)
            sender.send(msg)
        except DeliveryError as e:
            self._after_failure(job, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a rendering bug fails this delivery, visibly
            self._after_failure(job, f"{type(e).__name__}: {e}")
            return
        done = self._clock()
        self._retrying(lambda: self._ledger.mark_sent(n.key, channel, now=done))
        self.sent += 1
        if self._on_sent is not None:
            self._on_sent(msg, channel, done)
        log.info("sent %s to %s%s", n.key, channel,
                 f" (late by {int((done - n.at).total_seconds())} s)" if late else "")

    def _after_failure(self, job: Job, error: str) -> None:
        n, channel = job.notification, job.channel
        now = self._clock()
        if now - n.at >= self.give_up_after:
            self._retrying(lambda: self._ledger.mark_failed(n.key, channel, now=now, error=error))
            self.failed += 1
            log.error("gave up on %s to %s after %d attempts: %s",
                      n.key, channel, job.attempt, error)
            return
        nxt = now + backoff(job.attempt, self._rng)
        self._retrying(lambda: self._ledger.mark_retry(
            n.key, channel, now=now, error=error, next_attempt=nxt))
        log.warning("send of %s to %s failed (attempt %d), retry at %s: %s",
                    n.key, channel, job.attempt, nxt.isoformat(timespec="seconds"), error)

    def idle(self) -> bool:
        return self.pending() == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    def stop(self, timeout: float) -> bool:
        """Finish in-flight and queued sends within `timeout` seconds; True if all finished."""
        finished = self.wait_idle(timeout)
        self._stopping.set()
        for q in list(self._queues.values()):
            q.put(_STOP)
        for t in list(self._threads.values()):
            t.join(timeout=0.5)
        return finished

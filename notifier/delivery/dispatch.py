"""Claim -> send -> mark, with retries, one lane of workers per channel.

Each channel has its own queue and worker threads, so a slow, failing or
hanging channel never delays another. A delivery is claimed in the ledger
(durably) before it is sent and marked after; a send whose claim could not be
written does not happen (the claim is retried until the disk recovers).

Throughput: deliveries waiting on a channel are claimed together, up to
`CLAIM_BATCH` in one transaction (one fsync). A channel whose services allow it
(`ChannelSender.parallel`) has that many sends in flight; the "sent" marks of
sends that finish together are committed together (`notifier.delivery.sentmarks`), each send
waiting until its own mark is durable. So after a crash, rows left claimed
are either sends that were in flight (sent again: at most `parallel`
duplicates per channel) or claimed but never started (sent once, as
retries).

Retries: a failure is marked in the ledger with the time of the next attempt
(`backoff`: 30 s doubling to 1 h, jittered; a permanent failure waits the
full hour), and the owner hands the delivery back once it is due. A retry is
claimed as it is handed back, so one waiting behind a slow send is neither
handed back again nor seen as due again. A delivery is given up (marked
failed) when it fails `give_up_after` or more after its first attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from notifier.delivery.backoff import FIRST_BACKOFF, MAX_BACKOFF, backoff
from notifier.delivery.lanes import Job, Lane, Render, Sender, parallel_of
from notifier.delivery.ledger import Claim, Ledger, Sent
from notifier.delivery.outcomes import OutgoingMessage
from notifier.delivery.sentmarks import SentMarks
from notifier.errors import DeliveryError, LedgerError, LedgerWriteError
from notifier.messages.render import Message
from notifier.schedule.lateness import LATE_AFTER, is_late
from notifier.schedule.model import Notification, Schedule
from notifier.text import rfc3339
from notifier.wording import duration_text, plural

log = logging.getLogger("notifier.dispatch")
_T = TypeVar("_T")

NOT_STARTED = "interrupted: the daemon stopped before this delivery was sent"
CLAIM_BATCH = 64
"""Deliveries claimed in one ledger transaction at most.

Enough that a burst costs a handful of fsyncs; small enough that a claim
transaction stays a few milliseconds, and that a stop has few claimed but
unsent rows to give back."""


class Dispatcher:
    """Delivers submitted notifications, one lane of worker threads per channel.

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
        claim_batch: int = CLAIM_BATCH,
        lead: timedelta = timedelta(0),
        scale: float = 1.0,
    ) -> None:
        if first_backoff <= timedelta(0) or max_backoff < first_backoff:
            raise ValueError("need 0 < first_backoff <= max_backoff")
        if claim_batch < 1:
            raise ValueError("claim_batch must be positive")
        self.late_after = late_after
        self._on_sent = on_sent
        self.on_retry = on_retry
        self._ledger = ledger
        self._marks = SentMarks(ledger)
        self._clock = clock
        self._render = render
        self.give_up_after = give_up_after
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.claim_batch = claim_batch
        self.lead = lead
        """A job may be handed over up to this long before its planned instant: it is
        claimed and rendered at once, then waits for the instant to be sent."""
        self._scale = scale
        """Clock seconds per real second (a replay's clock runs faster)."""
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._senders: dict[str, Sender] = {}
        self._schedule = Schedule(deadlines=())
        self._lanes: dict[str, Lane] = {}
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
        """Use a new schedule and channel set (on reload); lanes are kept per name."""
        with self._lock:
            self._schedule = schedule
            self._senders = dict(senders)
            if render is not None:
                self._render = render
            lanes = list(self._lanes.values())
        for lane in lanes:
            self._fit(lane)

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
            job = Job(n, channel, attempt, fixed, False, late)
            if attempt > 1:
                now = self._clock()
                marked_late = self._is_late(n, now, forced=late)
                try:
                    claimed = self._ledger.claim(
                        Claim(n.key, channel, n.deadline, n.kind, n.at, marked_late), now=now)
                except LedgerWriteError as e:
                    # The worker claims it instead, patiently (see _retrying).
                    log.error("cannot claim the retry of %s to %s yet: %s", n.key, channel, e)
                else:
                    if not claimed:
                        self._done(ident)
                        continue
                    job = replace(job, claimed=True, late=marked_late)
            lane = self._lane(channel)
            with lane.cond:
                lane.inbox.append(job)
                lane.cond.notify()

    def _is_late(self, n: Notification, now: datetime, *, forced: bool) -> bool:
        return forced or is_late(n.at, now, after=self.late_after)

    def _done(self, ident: tuple[str, str]) -> None:
        with self._lock:
            self._queued.discard(ident)
            self._outstanding -= 1

    def pending(self) -> int:
        """Jobs queued or in flight, over all channels."""
        return self._outstanding

    def _lane(self, channel: str) -> Lane:
        with self._lock:
            lane = self._lanes.get(channel)
            if lane is None:
                lane = self._lanes[channel] = Lane(channel)
            else:
                return lane
        self._fit(lane)
        return lane

    def _fit(self, lane: Lane) -> None:
        """Give `lane` its sender's limit, and a worker per send it may have in flight."""
        with self._lock:
            limit = parallel_of(self._senders.get(lane.channel))
        with lane.cond:
            lane.limit = limit
            while len(lane.threads) < limit and not lane.stopped:
                # Daemon threads: a send stuck past its timeout must not block exit.
                suffix = f"-{len(lane.threads) + 1}" if lane.threads else ""
                t = threading.Thread(target=self._work, args=(lane,),
                                     name=f"channel-{lane.channel}{suffix}", daemon=True)
                lane.threads.append(t)
                t.start()
            lane.cond.notify_all()

    def _work(self, lane: Lane) -> None:
        while True:
            batch: list[Job] = []
            job: Job | None = None
            with lane.cond:
                while job is None and not batch:
                    if lane.stopped:
                        return
                    if lane.busy < lane.limit:
                        if lane.ready:
                            job = lane.ready.popleft()
                        elif lane.inbox and not lane.claiming:
                            # One worker claims at a time; the others send meanwhile.
                            take = min(len(lane.inbox), self.claim_batch)
                            batch = [lane.inbox.popleft() for _ in range(take)]
                            lane.claiming = True
                    if job is None and not batch:
                        lane.cond.wait()
                lane.busy += 1
            try:
                if batch:
                    job = self._claim_batch(lane, batch)
                if job is not None:
                    self._send_one(job)
            finally:
                with lane.cond:
                    lane.busy -= 1
                    lane.cond.notify_all()

    def _claim_batch(self, lane: Lane, batch: list[Job]) -> Job | None:
        """Claim the unclaimed jobs of `batch` in one transaction.

        The claimed ones join the lane's ready queue, in order, but for the
        first, which is returned for the caller to send itself. Jobs the
        ledger refuses (sent or claimed by an earlier run, a retry not due)
        are dropped. After a stop, claimed jobs are given back at once.
        """
        claimed: list[Job] = []
        try:
            claimed = self._claim_jobs(batch)
        except Exception as e:  # noqa: BLE001 - the jobs must be accounted for whatever failed
            # Not a full disk (that is retried until we stop): unclaimed, so not sent.
            log.error("cannot claim deliveries to %s: %s", lane.channel, e)
            claimed = []
            for j in batch:
                if j.claimed:
                    claimed.append(j)
                else:
                    self._done((j.notification.key, j.channel))
        finally:
            with lane.cond:
                lane.claiming = False
                stopped = lane.stopped
                if not stopped and claimed:
                    lane.ready.extend(claimed[1:])
                lane.cond.notify_all()
        if stopped:
            self._release(claimed)
            return None
        return claimed[0] if claimed else None

    def _claim_jobs(self, batch: list[Job]) -> list[Job]:
        """`batch` without the jobs the ledger refused, every one of them claimed."""
        now = self._clock()
        fresh = [j for j in batch if not j.claimed]
        lateness = [self._is_late(j.notification, now, forced=j.late) for j in fresh]
        claims = [Claim(j.notification.key, j.channel, j.notification.deadline,
                        j.notification.kind, j.notification.at, late)
                  for j, late in zip(fresh, lateness, strict=True)]
        outcome = self._retrying(lambda: self._ledger.claim_many(claims, now=now)) if claims \
            else []
        taken = {id(j): replace(j, claimed=True, late=late)
                 for j, late, ok in zip(fresh, lateness, outcome, strict=True) if ok}
        kept: list[Job] = []
        for j in batch:
            if j.claimed:
                kept.append(j)
            elif id(j) in taken:
                kept.append(taken[id(j)])
                if j.attempt <= 1:
                    with self._lock:
                        # Claimed up to `lead` early, sent at the instant: first tried then.
                        self._first_attempt.setdefault((j.notification.key, j.channel),
                                                       max(now, j.notification.at))
            else:
                self._done((j.notification.key, j.channel))
        return kept

    def _send_one(self, job: Job) -> None:
        try:
            self._deliver(job)
        except Exception:
            log.exception("delivery of %s to %s crashed", job.notification.key, job.channel)
        finally:
            self._done((job.notification.key, job.channel))

    def _retrying(self, what: Callable[[], _T]) -> _T:
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
        """Send a claimed job and mark the outcome."""
        n, channel = job.notification, job.channel
        now = self._clock()
        late = job.late
        with self._lock:
            sender = self._senders.get(channel)
            schedule = self._schedule
            render = self._render
        if sender is None:
            self._retrying(lambda: self._ledger.mark_failed(
                n.key, channel, now=now, error="channel no longer configured"))
            self._forget(n.key, channel)
            return
        try:
            # On time means "as planned": the text then reads as it would at n.at.
            rendered = job.fixed or render(n, schedule, now if late else n.at)
            self._hold_until(n.at)
            msg = OutgoingMessage(
                key=n.key, kind=n.kind, deadline=n.deadline, title=rendered.title,
                body=rendered.body, due=n.due, planned_at=n.at, late=late,
                sent_at=self._clock(), channel=channel)
            sender.send(msg)
        except DeliveryError as e:
            self._after_failure(job, str(e), permanent=e.permanent)
            return
        except Exception as e:  # noqa: BLE001 - a rendering bug fails this delivery, visibly
            self._after_failure(job, f"{type(e).__name__}: {e}", permanent=False)
            return
        done = self._clock()
        self._retrying(lambda: self._marks.mark(Sent(n.key, channel, done)))
        self._forget(n.key, channel)
        with self._lock:
            self.sent += 1
        if self._on_sent is not None:
            self._on_sent(msg, channel, done)
        log.info("sent %s to %s%s", n.key, channel,
                 f" (late by {duration_text(done - n.at)})" if late else "")

    def _hold_until(self, at: datetime) -> None:
        """Sleep until `at` if it lies ahead by at most `lead`: never send before the instant."""
        while True:
            early = at - self._clock()
            if early <= timedelta(0) or early > self.lead:
                return
            time.sleep(early.total_seconds() / self._scale)

    def _forget(self, key: str, channel: str) -> None:
        with self._lock:
            self._first_attempt.pop((key, channel), None)

    def _started(self, n: Notification, channel: str) -> datetime:
        """When delivery of `n` to `channel` was first attempted (its planned time if unknown)."""
        with self._lock:
            known = self._first_attempt.get((n.key, channel))
        if known is not None:
            return known
        # A retry handed over after a restart: the ledger row (found by its
        # key) was created by the first claim.
        try:
            rec = self._ledger.delivery(n.key, channel)
        except LedgerError as e:
            log.error("cannot read when %s to %s was first tried: %s", n.key, channel, e)
            rec = None
        if rec is not None:
            first = max(rec.created_at, n.at)  # the claim may precede the instant
            with self._lock:
                self._first_attempt[(n.key, channel)] = first
            return first
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
            log.error("gave up on %s to %s after %s: %s",
                      n.key, channel, plural(job.attempt, "attempt"), error)
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
                    rfc3339(nxt), error)
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

    def _release(self, jobs: Iterable[Job]) -> None:
        """Give jobs that were claimed, but never started, back to the ledger.

        They become due retries again (as `recover_in_flight` would make them
        at the next start), so the next start does not count them as sends
        that were in flight.
        """
        now = self._clock()
        for job in jobs:
            n = job.notification
            try:
                if job.claimed:
                    self._ledger.mark_retry(n.key, job.channel, now=now, next_attempt=now,
                                            error=NOT_STARTED)
            except LedgerError as e:
                log.error("cannot release %s to %s: %s", n.key, job.channel, e)
            finally:
                self._done((n.key, job.channel))

    def stop(self, timeout: float) -> bool:
        """Finish in-flight and queued sends within `timeout` seconds; True if all finished."""
        finished = self.wait_idle(timeout)
        self._stopping.set()
        with self._lock:
            lanes = list(self._lanes.values())
        threads: list[threading.Thread] = []
        for lane in lanes:
            with lane.cond:
                lane.stopped = True
                left = [*lane.ready, *lane.inbox]
                lane.ready.clear()
                lane.inbox.clear()
                threads += lane.threads
                lane.cond.notify_all()
            self._release(left)
        end = time.monotonic() + 0.5
        for t in threads:
            t.join(timeout=max(0.0, end - time.monotonic()))
        return finished

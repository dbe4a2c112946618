"""`notifier run`: the timer, signals, reload, heartbeat, catch-up.

APScheduler is only the timer: at most three jobs (the next wake-up, the
heartbeat, the config-file watch) whatever the number of deadlines. The plan
itself lives in `Timeline`, refilled from the pure planner as time passes. All
decisions happen on the main thread, one command at a time; channel workers
(dispatch.py) only deliver.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol

from notifier.config import loader as config
from notifier.config import tomlread
from notifier.daemon import heap
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.appriseset import (
    isolate_apprise_logging,
    load_plugin_paths,
    register_builtin_schemas,
)
from notifier.delivery.channels import ChannelSender
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ledger import DeliveryRecord, Ledger, Skip
from notifier.delivery.outcomes import OutgoingMessage
from notifier.delivery.sendpool import SendPool, default_size
from notifier.errors import ConfigError, LedgerError, Problem
from notifier.messages.render import Message, Renderer
from notifier.messages.templates import TemplateSource
from notifier.messages.wording import duration_text
from notifier.schedule import catchup, planning
from notifier.schedule.lateness import LATE_AFTER
from notifier.schedule.model import Deadline, Notification, Schedule
from notifier.text import rfc3339

log = logging.getLogger("notifier.daemon")

WINDOW = timedelta(days=2)
"""How far ahead the in-memory timeline is filled; refilled as time passes."""
STALE_AFTER = timedelta(minutes=5)
"""A notification found this late (downtime, suspend, clock jump) follows the catch-up rules."""
HEARTBEAT = 30.0
RELOAD_GAP = 0.5
"""Seconds between the starts of two reloads; requests in between wait, folded into one."""
SHUTDOWN_BOUND = 10.0
PREPARE_LEAD = timedelta(milliseconds=100)
"""How long before its instant a notification is handed to its channel: claimed
and rendered then, it is sent at the instant itself, so a send starts on time
even when the claim's fsync or a busy moment takes a few milliseconds."""


class Clock(Protocol):
    scale: float
    """Virtual seconds per real second (1 for the system clock)."""

    def now(self) -> datetime: ...


class SystemClock:
    scale = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that starts at `start` and runs `speed` times faster than real time.

    With `epoch` (a real Unix time) the clock reads `start` at that real
    instant, so a replay restarted with the same epoch resumes the same
    virtual timeline, downtime included; without it, it starts now.
    """

    def __init__(self, start: datetime, speed: float, epoch: float | None = None) -> None:
        self.scale = float(speed)
        self.start = start
        """Where the virtual timeline begins: a replay answers for everything from here on."""
        self._epoch = epoch
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._epoch is not None:
            elapsed = time.time() - self._epoch
        else:
            elapsed = time.monotonic() - self._t0
        return self.start + timedelta(seconds=elapsed * self.scale)


def real_seconds(clock: Clock, until: datetime) -> float:
    return max(0.0, (until - clock.now()).total_seconds() / clock.scale)


@dataclass
class Timeline:
    """The upcoming notifications in (cursor, end], sorted; a window over the plan."""

    schedule: Schedule
    cursor: datetime
    end: datetime
    items: list[Notification] = field(default_factory=list)

    @classmethod
    def build(cls, schedule: Schedule, cursor: datetime) -> Timeline:
        end = cursor + WINDOW
        start = cursor + timedelta(microseconds=1)
        return cls(schedule, cursor, end, planning.plan(schedule, start, end))

    def take_due(self, now: datetime) -> list[Notification]:
        """Everything at or before `now`, refilling the window as needed."""
        due: list[Notification] = []
        while True:
            i = 0
            while i < len(self.items) and self.items[i].at <= now:
                i += 1
            due.extend(self.items[:i])
            del self.items[:i]
            if now < self.end:
                break
            start = self.end + timedelta(microseconds=1)
            self.end = max(self.end + WINDOW, now + timedelta(seconds=1))
            self.items = planning.plan(self.schedule, start, self.end)
        self.cursor = max(self.cursor, now)
        return due

    def next_at(self) -> datetime:
        return self.items[0].at if self.items else self.end

    def keys(self) -> set[str]:
        return {n.key for n in self.items}


def find_notification(schedule: Schedule, rec: DeliveryRecord) -> Notification | None:
    """The planned notification behind a ledger row (for retries after a restart)."""
    start = rec.planned_at
    end = start + timedelta(microseconds=1)
    if rec.deadline is None:
        # A digest is planned only while a deadline is open (or with `always`):
        # look it up against the real schedule, not an empty one.
        candidates = planning.plan_digest(schedule, schedule.digest, start, end) \
            if rec.kind == "digest" and schedule.digest is not None else []
    else:
        d = next((d for d in schedule.deadlines if d.id == rec.deadline), None)
        candidates = [] if d is None else planning.plan_deadline(d, schedule.channels, start, end)
    return next((n for n in candidates if n.key == rec.key), None)


def describe_moves(old: Schedule, new: Schedule, now: datetime) -> list[str]:
    """`kalbajar: due moved 15 Nov -> 25 Nov` for every deadline whose effective due changed."""
    before = {d.id: d for d in old.deadlines}
    out = []
    for d in new.deadlines:
        prev = before.get(d.id)
        if prev is None:
            continue
        a = prev.stages[prev.stage_at(now)].due
        b = d.stages[d.stage_at(now)].due
        if a != b:
            fmt = "%d %b %H:%M" if (a.astimezone(d.zone).hour or b.astimezone(d.zone).hour) \
                else "%d %b"
            out.append(f"{d.id}: due moved {a.astimezone(d.zone).strftime(fmt)}"
                       f" -> {b.astimezone(d.zone).strftime(fmt)}")
    return out


@dataclass
class Loaded:
    cfg: config.Config
    schedule: Schedule
    renderer: Renderer
    senders: dict[str, ChannelSender]


class Daemon:
    def __init__(
        self,
        cfg: config.Config,
        ledger: Ledger,
        *,
        clock: Clock | None = None,
        notifier: SystemdNotifier | None = None,
        heartbeat: float = HEARTBEAT,
        watch_interval: float = 1.0,
        stop_at: datetime | None = None,
        on_sent: Callable[[OutgoingMessage, str, datetime], None] | None = None,
        on_reload: Callable[[config.Config], None] | None = None,
        install_signals: bool = True,
        send_helpers: int = 0,
    ) -> None:
        self.on_reload = on_reload
        self.clock = clock or SystemClock()
        self.ledger = ledger
        self.sd = notifier or SystemdNotifier.from_env()
        wd = self.sd.watchdog_interval()
        self.heartbeat = min(heartbeat, wd) if wd else heartbeat
        self.watch_interval = watch_interval
        self.stop_at = stop_at
        self.install_signals = install_signals
        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._config_print = self._fingerprint(cfg.path)
        self._tried_print = self._config_print
        self._hashed_stat: tuple[int, ...] | None = None
        isolate_apprise_logging()
        # APScheduler logs every job run at INFO; the heartbeat would flood the journal.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._lead = PREPARE_LEAD * self.clock.scale
        self.origin = self.clock.start if isinstance(self.clock, VirtualClock) else None
        """A replay's --from: it answers for every notification from there on."""
        self.sendpool = SendPool(send_helpers) if send_helpers > 0 else None
        """Processes that run the sends of apprise's own unthrottled services (one
        interpreter delivers about 300 a second here; see notifier.delivery.sendhelper)."""
        # Deadlines without `announced` are known from when the daemon first saw
        # them: for a replay that is where its virtual clock starts.
        self.loaded = self._prepare(cfg, self.origin or self.clock.now())
        self.dispatcher = Dispatcher(
            ledger, clock=self.clock.now, render=self._render,
            give_up_after=cfg.give_up_after, late_after=LATE_AFTER * self.clock.scale,
            on_sent=on_sent, on_retry=self._on_retry, lead=self._lead,
            scale=self.clock.scale,
        )
        self.dispatcher.configure(self.loaded.schedule, self.loaded.senders)
        self.timeline = Timeline(self.loaded.schedule, self.clock.now(), self.clock.now())
        self._scheduler: object | None = None
        self._last_alive_write = 0.0
        self._pending: dict[tuple[str, str], datetime] = {}
        """(key, channel) handed to the dispatcher for a first attempt whose claim may not
        be in the ledger yet -> planned time. The ledger's "alive" mark never passes the
        oldest of them, so a restart's catch-up covers them if the process dies first."""
        self._summaries: dict[tuple[str, str], tuple[Notification, Message]] = {}
        """Catch-up summaries sent by this process, kept so that a failed one can be retried."""
        self._wall_drift = time.time() - time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._reload_queued = False
        self._reload_at: float | None = None
        self._last_reload = -RELOAD_GAP

    # -- loading ------------------------------------------------------------

    def _prepare(self, cfg: config.Config, now: datetime,
                 previous: Loaded | None = None) -> Loaded:
        """Everything a config needs to run; with `previous` (a reload), deadlines
        taken unchanged from it keep their first-seen times (final once recorded)."""
        fresh: Iterable[Deadline] = cfg.schedule.deadlines
        if previous is not None:
            # Deadlines a reload took from the running config were recorded and
            # filled in then; only the others are looked up (or recorded now).
            kept = {id(d) for d in previous.schedule.deadlines}
            fresh = [d for d in fresh if id(d) not in kept]
        ids = config.first_seen_ids(fresh)
        # SQLite does most of the recording with the GIL released (0.2 s of 0.3 s
        # at 100,000 deadlines): meanwhile apprise finds its plugins (0.3 s, the
        # first time) and the templates compile.
        with ThreadPoolExecutor(1, thread_name_prefix="first-seen") as pool:
            recording = pool.submit(self.ledger.record_first_seen, ids, now)
            register_builtin_schemas()
            load_plugin_paths(list(cfg.plugin_paths))
            renderer = Renderer({k: TemplateSource(v.title, v.body)
                                 for k, v in cfg.templates.items()})
            seen = recording.result()
        # In place: nothing but `cfg` holds these deadlines yet. A reload takes them
        # over filled in (first-seen times never change once recorded).
        config.fill_first_seen(fresh, seen)
        schedule = cfg.schedule
        timeout = cfg.send_timeout.total_seconds()
        senders = {name: ChannelSender(ch, timeout=timeout, offload=self.sendpool)
                   for name, ch in cfg.schedule.channels.items()}
        for name, sender in senders.items():
            log.info("channel %s: %s", name, ", ".join(sender.description()))
        return Loaded(cfg, schedule, renderer, senders)

    def _start_helpers(self) -> None:
        """After READY=1 (a helper's imports would slow the start): the helpers the
        channels can use. Until one is up its sends run in this process."""
        if self.sendpool is not None and any(s.offloads for s in self.loaded.senders.values()):
            self.sendpool.start()

    def _render(self, n: Notification, schedule: Schedule, sent_at: datetime) -> Message:
        return self.loaded.renderer.render(n, schedule, sent_at=sent_at)

    @staticmethod
    def _fingerprint(path: Path) -> bytes | None:
        """What the file watch compares: a digest of the file's bytes (None if unreadable).

        Not its size and modification time: two saves of the same size within
        one tick of the file system's clock look the same by those.
        """
        try:
            with path.open("rb") as f:
                data = f.read(tomlread.MAX_FILE_BYTES + 1)
        except OSError:
            return None
        return hashlib.blake2b(data, digest_size=16).digest()

    # -- the loop -----------------------------------------------------------

    def run(self) -> int:
        from apscheduler.schedulers.background import (  # noqa: PLC0415 - slow import
            BackgroundScheduler,
        )

        if self.install_signals:
            # As early as possible: SIGHUP's default action would end the process.
            self._install_signals()
        now = self.clock.now()
        self._start(now)
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._scheduler = scheduler
        self._arm_timers()
        scheduler.start()
        self.commands.put("tick")
        self._touch_alive(now)
        self.sd.ready(self._status_text(now))
        log.info("ready: %s", self._status_text(now))
        self._start_helpers()
        heap.settle()
        try:
            while True:
                command = self._next_command()
                if command == "stop":
                    break
                try:
                    if command == "reload":
                        self._reload_when_due()
                    elif command == "heartbeat":
                        self._heartbeat()
                    self._tick()
                except LedgerError as e:
                    # Disk full or I/O trouble: nothing is sent without its
                    # claim (the workers retry claims), so keep running and
                    # try again at the next wake-up or heartbeat.
                    log.error("ledger: %s; will retry", e)
                if self.stop_at is not None and self.clock.now() >= self.stop_at \
                        and self.dispatcher.idle():
                    break
        finally:
            self.sd.stopping()
            log.info("stopping: finishing in-flight sends (at most %.0f s)", SHUTDOWN_BOUND)
            scheduler.shutdown(wait=False)
            finished = self.dispatcher.stop(SHUTDOWN_BOUND)
            if not finished:
                log.warning("some sends were still in flight at exit; they are retried at start")
            if self.sendpool is not None:
                self.sendpool.close()
            try:
                self._touch_alive(self.clock.now())
            except LedgerError as e:
                log.error("ledger: %s", e)
        log.info("stopped")
        return 0

    def _start(self, now: datetime) -> None:
        """Recover sends cut off by a crash, catch up on downtime, fill the timeline."""
        recovered = self.ledger.recover_in_flight(now)
        if recovered:
            log.warning("%d delivery(ies) were in flight at a crash; sending them again", recovered)
        since = self.ledger.last_alive()
        self._catch_up_downtime(now, since)
        cursor = now
        if self.origin is not None:
            # A fresh replay answers for its whole interval from --from on, however
            # far its virtual clock ran while the process started; and never for
            # anything before --from (its clock may not be there yet).
            start = self.origin - timedelta(microseconds=1)
            cursor = start if since is None else max(now, start)
        self.timeline = Timeline.build(self.loaded.schedule, cursor)

    def _heartbeat(self) -> None:
        self._last_heartbeat = time.monotonic()
        self._arm("heartbeat", self.heartbeat, self.commands.put, "heartbeat")
        self.sd.watchdog()

    def _arm_timers(self) -> None:
        """The heartbeat and the config-file watch, from now (again after a clock jump)."""
        self._arm("heartbeat", self.heartbeat, self.commands.put, "heartbeat")
        if self.watch_interval > 0:
            self._arm("watch", self.watch_interval, self._watch)

    def _arm(self, ident: str, seconds: float, func: Callable[..., object], *args: str) -> None:
        """Run `func(*args)` once, `seconds` from now; re-armed each time it runs.

        One-shot jobs, not APScheduler interval jobs: an interval job that
        missed runs (the clock jumped years ahead) makes APScheduler 3 step
        through every missed run time one interval at a time, which for a
        1-second job over three years is minutes of CPU with its lock held.
        """
        scheduler = self._scheduler
        if scheduler is None:
            return
        scheduler.add_job(  # type: ignore[attr-defined]  # BackgroundScheduler, untyped
            func, "date", args=list(args), id=ident, replace_existing=True,
            run_date=datetime.now(UTC) + timedelta(seconds=seconds))

    def _next_command(self) -> str:
        """The next command, or "heartbeat" when one is overdue.

        APScheduler times its jobs by the wall clock: set back by an hour, it
        would run the heartbeat, the watch and the wake-up an hour late. The
        heartbeat is also kept here by the monotonic clock, which a clock
        change does not move, and a change of the wall clock against it
        re-arms the jobs; so the daemon re-checks what is due and pings the
        watchdog within a heartbeat whatever the clock does.
        """
        due = self._last_heartbeat + self.heartbeat
        if self._reload_at is not None:
            due = min(due, self._reload_at)
        try:
            command = self.commands.get(timeout=max(0.0, due - time.monotonic()))
        except queue.Empty:
            if self._reload_at is not None and time.monotonic() >= self._reload_at:
                self._reload_at = None
                command = "reload"
            else:
                command = "heartbeat"
        drift = time.time() - time.monotonic()
        if abs(drift - self._wall_drift) > 1.0:
            # The wall clock was set, or the machine was suspended.
            log.info("wall clock moved by %+.0f s against the monotonic clock; "
                     "re-arming the timers", drift - self._wall_drift)
            self._wall_drift = drift
            self._arm_timers()
        return command

    def _on_retry(self, _at: datetime) -> None:
        # A channel worker recorded a failed send after the last wake-up was
        # planned: plan it again, so the retry goes out on time.
        self.commands.put("tick")

    def _submit(self, n: Notification, channels: tuple[str, ...] | None = None, *,
                late: bool = False) -> None:
        """Hand a first attempt to the dispatcher (see `_pending`)."""
        for channel in n.channels if channels is None else channels:
            self._pending.setdefault((n.key, channel), n.at)
        self.dispatcher.submit(n, channels=channels, late=late)

    def _alive_mark(self, now: datetime) -> datetime:
        """What the ledger's "alive" mark may say: that everything planned before it
        has been handed over and claimed.

        That is `now`, or earlier: where the timeline has been taken up to (a
        fresh replay starts at --from), and the planned time of the oldest
        submitted delivery not claimed yet (a job waiting in a channel's queue,
        behind a slow send or a full disk, has no ledger row). If the process
        dies, the catch-up at the next start looks back from this mark, so it
        still finds all of them.
        """
        if self._pending:
            claimed = self.ledger.states({key for key, _ in self._pending})
            self._pending = {k: at for k, at in self._pending.items() if k not in claimed}
        return min([now, self.timeline.cursor, *self._pending.values()])

    def _touch_alive(self, now: datetime) -> None:
        self.ledger.touch_alive(self._alive_mark(now))
        self._last_alive_write = time.monotonic()

    def _install_signals(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # SimpleQueue.put is reentrant, so it is safe inside a signal handler.
            if signum == signal.SIGHUP:
                self._request_reload()
            else:
                self.commands.put("stop")

        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def _reload_when_due(self) -> None:
        """Reload now, or once RELOAD_GAP has passed since the last one began."""
        wait = self._last_reload + RELOAD_GAP - time.monotonic()
        if wait > 0:
            # Still queued (so further requests stay folded into this one).
            self._reload_at = time.monotonic() + wait
            return
        self._last_reload = time.monotonic()
        self.reload()

    def _request_reload(self) -> None:
        """Queue a reload unless one is already waiting.

        A storm of SIGHUPs (or saves) then costs one reload per RELOAD_GAP,
        not one per signal, and deliveries are not starved of the CPU and the
        ledger. A request made while a reload runs queues another, for the
        newer file, so the last version saved is always the one read.
        """
        if not self._reload_queued:
            self._reload_queued = True
            self.commands.put("reload")

    def _unchanged_since_hashed(self, path: Path) -> bool:
        """Whether the file surely has not changed since the watch last hashed it.

        Hashing a 119 MB schedule every second would be a tenth of a core. A
        save changes size, mtime or ctime, except one within the same tick of
        the file system's clock as the previous write: so a file whose stat
        is unchanged and whose mtime is over 2 s old is not read again.
        """
        try:
            st = path.stat()
        except OSError:
            self._hashed_stat = None
            return False
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        settled = time.time() - st.st_mtime > 2.0
        if key == self._hashed_stat and settled:
            return True
        self._hashed_stat = key if settled else None
        return False

    def _watch(self) -> None:
        try:
            if self._unchanged_since_hashed(self.loaded.cfg.path):
                return
            current = self._fingerprint(self.loaded.cfg.path)
            if current is not None and current != self._tried_print:
                # Wait until the file has stopped changing, so a half-written save is
                # not read; then reload once for this version of the file.
                time.sleep(min(0.2, self.watch_interval / 2))
                if self._fingerprint(self.loaded.cfg.path) == current:
                    self._tried_print = current
                    self._request_reload()
        finally:
            self._arm("watch", self.watch_interval, self._watch)

    def _tick(self) -> None:
        now = self.clock.now()
        # Up to the lead ahead: the channel workers wait for each one's instant.
        due = self.timeline.take_due(now + self._lead)
        if self.stop_at is not None:
            # A replay ends at --until: nothing planned at or after it is sent.
            due = [n for n in due if n.at < self.stop_at]
        stale = [n for n in due if now - n.at > STALE_AFTER * self.clock.scale]
        if stale:
            fresh = [n for n in due if n not in stale]
            self._catch_up(stale, now, reason="late (suspend or clock jump)", cause="behind")
            due = fresh
        for n in due:
            self._submit(n)
        try:
            # Not while the workers claim what was just handed over: the "alive"
            # write's fsync would hold the ledger under them (p99 of isolated
            # sends 15 ms); the next tick or heartbeat writes it.
            self._retry_and_touch(now, touch=not due)
        finally:
            self._schedule_wake(now)

    def _retry_and_touch(self, now: datetime, *, touch: bool = True) -> None:
        for rec in self.ledger.due_retries(now):
            if rec.kind == "summary":
                self._retry_summary(rec, now)
                continue
            found = find_notification(self.loaded.schedule, rec)
            if found is None:
                self.ledger.mark_failed(rec.key, rec.channel, now=now,
                                        error="no longer in the configuration")
                continue
            # A retry of a message sent late after downtime stays marked late.
            self.dispatcher.submit(found, channels=(rec.channel,), attempt=rec.attempts + 1,
                                   late=rec.late)
        interval = min(10.0, self.heartbeat)
        elapsed = time.monotonic() - self._last_alive_write
        # Put off for a busy tick, but never past twice the interval.
        if elapsed >= interval and (touch or elapsed >= 2 * interval):
            self._touch_alive(now)

    def _retry_summary(self, rec: DeliveryRecord, now: datetime) -> None:
        """A catch-up summary is not in the plan: retry the one this process rendered."""
        kept = self._summaries.get((rec.key, rec.channel))
        if kept is None:
            self.ledger.mark_failed(rec.key, rec.channel, now=now,
                                    error="catch-up summary of an earlier run; not sent again")
            return
        n, message = kept
        self.dispatcher.submit(n, channels=(rec.channel,), attempt=rec.attempts + 1,
                               fixed=message)

    def _schedule_wake(self, now: datetime) -> None:
        if self._scheduler is None:
            return
        targets = [self.timeline.next_at() - self._lead]
        try:
            retry = self.ledger.next_retry_at()
        except LedgerError:
            retry = now + timedelta(seconds=self.heartbeat * self.clock.scale)
        if retry is not None:
            targets.append(retry)
        if self.stop_at is not None:
            targets.append(self.stop_at)
        wake = max(min(targets), now)
        run_date = datetime.now(UTC) + timedelta(seconds=real_seconds(self.clock, wake))
        self._scheduler.add_job(  # type: ignore[attr-defined]  # BackgroundScheduler, untyped
            self.commands.put, "date", args=["tick"], run_date=run_date, id="wake",
            replace_existing=True,
        )

    # -- catch-up -----------------------------------------------------------

    def _catch_up_downtime(self, now: datetime, since: datetime | None) -> None:
        if since is None or since >= now:
            return
        start = since - STALE_AFTER
        if self.origin is not None:
            start = max(start, self.origin)
        # Up to and including `now`: the timeline takes over right after it.
        end = now + timedelta(microseconds=1)
        if self.stop_at is not None:
            end = min(end, self.stop_at)
        missed = planning.plan(self.loaded.schedule, start, end)
        self._catch_up(missed, now, reason=f"notifier was down since {since:%Y-%m-%d %H:%M} UTC")

    def _catch_up(self, candidates: list[Notification], now: datetime, *, reason: str,
                  cause: Literal["down", "behind"] = "down") -> None:
        states = self.ledger.states(n.key for n in candidates)
        missed: list[Notification] = []
        routes: dict[str, tuple[str, ...]] = {}
        for n in candidates:
            todo = tuple(c for c in n.channels if (n.key, c) not in states)
            if todo:
                missed.append(n)
                routes[n.key] = todo
        decision = catchup.catch_up(missed, now, self.loaded.cfg.catchup)
        if not decision:
            return
        log.warning("%s: %d missed notification(s): sending %d late, skipping %d",
                    reason, len(missed), len(decision.send), len(decision.skip))
        self.ledger.mark_skipped_many(
            (Skip(n.key, c, n.deadline, n.kind, n.at)
             for n in decision.skip for c in routes[n.key]),
            now=now, reason=reason)
        for n in decision.send:
            # Sent because it was missed: marked late ("Sent late by ..."), however
            # short the downtime was.
            self._submit(n, channels=routes[n.key], late=True)
        self._send_summaries(decision, routes, now, cause)

    def _send_summaries(self, decision: catchup.CatchUp, routes: dict[str, tuple[str, ...]],
                        now: datetime, cause: Literal["down", "behind"]) -> None:
        channels = sorted({c for n in (*decision.skip, *decision.send) for c in routes[n.key]})
        for channel in channels:
            skipped = [n for n in decision.skip if channel in routes[n.key]]
            late = [n for n in decision.send if channel in routes[n.key]]
            if not skipped:
                continue
            message = self.loaded.renderer.render_summary(skipped, late, self.loaded.schedule,
                                                          now=now, cause=cause)
            summary = Notification(
                at=now, kind="summary", deadline=None, due=None, offset=None, seq=None,
                channels=(channel,), title=message.title,
                key=f"summary/{rfc3339(now)}", stage=None,
            )
            if len(self._summaries) >= 100:
                self._summaries.pop(next(iter(self._summaries)))
            self._summaries[(summary.key, channel)] = (summary, message)
            self.dispatcher.submit(summary, fixed=message)

    # -- reload -------------------------------------------------------------

    def reload(self) -> None:
        self._reload_queued = False
        self.sd.reloading()
        path = self.loaded.cfg.path
        self._tried_print = self._fingerprint(path)
        with heap.renewing():
            self._reload(path)

    def _reload(self, path: Path) -> None:
        try:
            cfg = self._load_new(path, self.loaded.cfg)
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload rejected: %s", problem)
            log.error("reload rejected: keeping the previous configuration")
            self.sd.ready("config rejected; running the previous one")
            return
        except Exception:
            log.exception("reload failed: keeping the previous configuration")
            self.sd.ready("reload failed; running the previous one")
            return
        if self.on_reload is not None:
            self.on_reload(cfg)
        now = self.clock.now()
        try:
            loaded = self._prepare(cfg, now, self.loaded)
        except Exception:
            log.exception("reload failed: keeping the previous configuration")
            self.sd.ready("reload failed; running the previous one")
            return
        old_keys = self.timeline.keys()
        old_schedule = self.loaded.schedule
        timeline = Timeline(loaded.schedule, self.timeline.cursor, self.timeline.end)
        timeline.items = planning.plan(loaded.schedule,
                                       timeline.cursor + timedelta(microseconds=1), timeline.end)
        new_keys = timeline.keys()
        self.loaded = loaded
        self.timeline = timeline
        self.dispatcher.configure(loaded.schedule, loaded.senders)
        self.dispatcher.give_up_after = cfg.give_up_after
        self._config_print = self._tried_print
        moves = describe_moves(old_schedule, loaded.schedule, now)
        log.info("reloaded: +%d / -%d notifications%s", len(new_keys - old_keys),
                 len(old_keys - new_keys), "".join(f", {m}" for m in moves))
        self.sd.ready(self._status_text(now))
        self._start_helpers()

    @staticmethod
    def _load_new(path: Path, previous: config.Config) -> config.Config:
        """The config file for a reload; an empty file is refused.

        An empty file is valid TOML, but never what an operator means for a
        running daemon: it is an editor's save caught between truncating the
        file and writing it, and applied it would drop every deadline.
        """
        try:
            with path.open("rb") as f:
                empty = not f.read(4096).strip()
        except OSError:
            empty = False  # config.load reports it, located
        if empty:
            raise ConfigError([Problem(str(path), 1, 1, "",
                                       "the file is empty (a save in progress?)")])
        return config.load(path, previous=previous)

    def _status_text(self, now: datetime) -> str:
        n = len(self.loaded.schedule.deadlines)
        nxt = self.timeline.items[0] if self.timeline.items else None
        if nxt is None:
            return f"{n} deadlines, nothing planned in the next {WINDOW.days} days"
        left = nxt.at - now
        return f"{n} deadlines, next: {nxt.deadline or nxt.kind} {nxt.kind} in " \
               f"{duration_text(left)}"


def run_daemon(cfg: config.Config, ledger: Ledger, **kwargs: object) -> int:
    """Entry for `notifier run` (kept here so the CLI stays a thin shell)."""
    os.umask(0o077)
    kwargs.setdefault("send_helpers", default_size())
    daemon = Daemon(cfg, ledger, **kwargs)  # type: ignore[arg-type]  # forwarded keywords
    return daemon.run()

"""`notifier run`: the main loop, its timers, signals and heartbeat.

APScheduler times one job, the next wake-up, whatever the number of
deadlines; the heartbeat and the file watch are the loop's own timers (see
`Daemon._next_command`). The plan itself lives in `Timeline`, refilled from the
pure planner as time passes. All decisions happen on the main thread, one
command at a time; channel workers (dispatch.py) only deliver.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from notifier.config import loader as config
from notifier.daemon import heap
from notifier.daemon.catchup import STALE_AFTER, CatchUp
from notifier.daemon.clock import Clock, SystemClock, VirtualClock, real_seconds
from notifier.daemon.reload import (
    FileWatch,
    Loaded,
    ReloadRequests,
    first_seen_in,
    prepare,
    reload_line,
)
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.daemon.timeline import WINDOW, Timeline, find_notification
from notifier.delivery.appriseset import isolate_apprise_logging
from notifier.delivery.channels import StandIn
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ledger import Ledger, Skip
from notifier.delivery.ledger.base import INTERRUPTED
from notifier.delivery.outcomes import OutgoingMessage
from notifier.delivery.sendpool import SendPool
from notifier.errors import ConfigError, LedgerError
from notifier.messages.render import Message
from notifier.schedule import planning
from notifier.schedule.lateness import LATE_AFTER
from notifier.schedule.model import Notification, Schedule
from notifier.schedule.standing import stale_reason
from notifier.wording import days_text, duration_text, plural

log = logging.getLogger("notifier.daemon")

HEARTBEAT = 30.0
SHUTDOWN_BOUND = 10.0
PREPARE_LEAD = timedelta(milliseconds=100)
"""How long before its instant a notification is handed to its channel: claimed
and rendered then, it is sent at the instant itself, so a send starts on time
even when the claim's fsync or a busy moment takes a few milliseconds."""


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
        stand_in: StandIn | None = None,
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
        self.reloads = ReloadRequests(self.commands)
        self.watch = FileWatch(cfg.path, watch_interval)
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
        self.stand_in = stand_in
        """A replay's preview: what URLs that are not built-in would receive goes here."""
        self.loaded = prepare(cfg, ledger, self.origin or self.clock.now(),
                              sendpool=self.sendpool, stand_in=stand_in)
        self.dispatcher = Dispatcher(
            ledger, clock=self.clock.now, render=self._render,
            give_up_after=cfg.give_up_after, late_after=LATE_AFTER * self.clock.scale,
            on_sent=on_sent, on_retry=self._on_retry, lead=self._lead,
            scale=self.clock.scale,
        )
        self.dispatcher.configure(self.loaded.schedule, self.loaded.senders)
        self.catchup = CatchUp(ledger, self.dispatcher, self._submit_late,
                               origin=self.origin, stop_at=stop_at)
        self.timeline = Timeline(self.loaded.schedule, self.clock.now(), self.clock.now())
        self._scheduler: object | None = None
        self._last_alive_write = 0.0
        self._pending: dict[tuple[str, str], datetime] = {}
        """(key, channel) handed to the dispatcher for a first attempt whose claim may not
        be in the ledger yet -> planned time. The ledger's "alive" mark never passes the
        oldest of them, so a restart's catch-up covers them if the process dies first."""
        self._last_heartbeat = time.monotonic()

    def _start_helpers(self) -> None:
        """After READY=1 (a helper's imports would slow the start): the helpers the
        channels can use. Until one is up its sends run in this process."""
        if self.sendpool is not None and any(s.offloads for s in self.loaded.senders.values()):
            self.sendpool.start()

    def _render(self, n: Notification, schedule: Schedule, sent_at: datetime) -> Message:
        return self.loaded.renderer.render(n, schedule, sent_at=sent_at)

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
        scheduler.start()
        self.commands.put("tick")
        self._touch_alive(now)
        self.sd.ready(self._status_text(now))
        log.info("ready: %s", self._status_text(now))
        self._start_helpers()
        heap.settle()
        try:
            while self._serve(self._next_command()):
                pass
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

    def _serve(self, command: str) -> bool:
        """Carry out one command; False when the loop ends."""
        if command == "stop":
            return False
        if command == "watch":
            if self.watch.look():
                self.reloads.request()
            return True
        try:
            if command == "reload":
                self._reload_when_due()
            elif command == "heartbeat":
                self._heartbeat()
            self._tick()
        except LedgerError as e:
            # Disk full or I/O trouble: nothing is sent without its claim (the
            # workers retry claims), so keep running and try again at the next
            # wake-up or heartbeat.
            log.error("ledger: %s; will retry", e)
        # A replay ends at --until, once everything before it is sent.
        return self.stop_at is None or self.clock.now() < self.stop_at \
            or not self.dispatcher.idle()

    def _start(self, now: datetime) -> None:
        """Recover sends cut off by a crash, catch up on downtime, fill the timeline."""
        recovered = self.ledger.recover_in_flight(now)
        if recovered:
            were, them = ("was", "it") if recovered == 1 else ("were", "them")
            log.warning("%s %s in flight at a crash; sending %s again",
                        plural(recovered, "delivery", "deliveries"), were, them)
        since = self.ledger.last_alive()
        self.catchup.after_downtime(self.loaded, now, since)
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
        self.sd.watchdog()

    def _next_command(self) -> str:
        """The next command on the queue, or the loop's own timer that falls due first.

        The heartbeat, the file watch and a deferred reload are timed here by
        the monotonic clock, which a change of the wall clock does not move:
        set back by an hour or forward by years, the daemon still re-checks
        what is due and pings the watchdog every heartbeat. APScheduler times
        only the next wake-up, by the wall clock like the plan; every tick
        (so at least every heartbeat) plans that wake-up again.
        """
        timers = [(self._last_heartbeat + self.heartbeat, "heartbeat")]
        if self.watch_interval > 0:
            timers.append((self.watch.due, "watch"))
        if self.reloads.deferred_until is not None:
            timers.append((self.reloads.deferred_until, "reload"))
        due, timer = min(timers)
        try:
            return self.commands.get(timeout=max(0.0, due - time.monotonic()))
        except queue.Empty:
            return timer

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

    def _submit_late(self, n: Notification, channels: tuple[str, ...]) -> None:
        self._submit(n, channels, late=True)

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
                self.reloads.request()
            else:
                self.commands.put("stop")

        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def _reload_when_due(self) -> None:
        if self.reloads.may_start():
            self.reload()

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
            self.catchup.behind(self.loaded, stale, now)
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
                self.catchup.retry_summary(self.loaded, rec, now)
                continue
            found = find_notification(self.loaded.schedule, rec)
            if found is None:
                self.ledger.mark_failed(rec.key, rec.channel, now=now,
                                        error="no longer in the configuration")
                continue
            deadline = self.loaded.schedule.deadline(found.deadline)
            stale = None if deadline is None else stale_reason(deadline, found, now)
            if stale is not None:
                # Sent now, it would contradict the closure or extension sent meanwhile.
                if rec.last_error == INTERRUPTED:
                    stale += "; its send was cut off by a stop or crash and may have gone out"
                self.ledger.mark_skipped(
                    Skip(rec.key, rec.channel, rec.deadline, rec.kind, rec.planned_at),
                    now=now, reason=stale)
                log.warning("dropped the retry of %s to %s: %s", rec.key, rec.channel, stale)
                continue
            # A retry of a message sent late after downtime stays marked late.
            self.dispatcher.submit(found, channels=(rec.channel,), attempt=rec.attempts + 1,
                                   late=rec.late)
        interval = min(10.0, self.heartbeat)
        elapsed = time.monotonic() - self._last_alive_write
        # Put off for a busy tick, but never past twice the interval.
        if elapsed >= interval and (touch or elapsed >= 2 * interval):
            self._touch_alive(now)

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

    # -- reload -------------------------------------------------------------

    def reload(self) -> None:
        self.reloads.started()
        self.sd.reloading()
        path = self.loaded.cfg.path
        self.watch.read_now()
        with heap.renewing():
            self._reload(path)

    def _load_anew(self, path: Path, now: datetime) -> Loaded | None:
        """The new config, ready to run; None (said in the log) if it is refused or
        cannot be prepared, and the previous one keeps running."""
        try:
            # An empty file is a config like any other (README, "Choices"): its
            # warning is logged below, and the diff line names what it removed.
            cfg = config.load(path, previous=self.loaded.cfg,
                              first_seen=first_seen_in(self.ledger, now))
            for warning in cfg.warnings:  # as `run` says them at start
                log.warning("reload: %s", warning.text(warning=True))
            if self.on_reload is not None:
                self.on_reload(cfg)
            return prepare(cfg, self.ledger, now, sendpool=self.sendpool,
                           previous=self.loaded, stand_in=self.stand_in)
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload rejected: %s", problem)
            log.error("reload rejected: keeping the previous configuration")
            self.sd.ready("config rejected; running the previous one")
        except LedgerError as e:
            # First-seen times could not be read or recorded (a full disk, say): one
            # line, as every ledger error; the next reload (SIGHUP or a save) tries again.
            log.error("reload failed: ledger: %s; keeping the previous configuration", e)
            self.sd.ready("reload failed; running the previous one")
        except Exception:
            # Every problem of the input is a located ConfigError above (a value that would
            # fail later, such as a zero timeout, is refused at load): this is a bug.
            log.exception("reload failed: keeping the previous configuration")
            self.sd.ready("reload failed; running the previous one")
        return None

    def _reload(self, path: Path) -> None:
        now = self.clock.now()
        loaded = self._load_anew(path, now)
        if loaded is None:
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
        self.dispatcher.give_up_after = loaded.cfg.give_up_after
        log.info("%s", reload_line(old_schedule, loaded.schedule, now,
                                   added=len(new_keys - old_keys),
                                   removed=len(old_keys - new_keys)))
        self.sd.ready(self._status_text(now))
        self._start_helpers()

    def _status_text(self, now: datetime) -> str:
        n = plural(len(self.loaded.schedule.deadlines), "deadline")
        nxt = self.timeline.items[0] if self.timeline.items else None
        if nxt is None:
            return f"{n}, nothing planned in the next {days_text(WINDOW.days)}"
        left = nxt.at - now
        return f"{n}, next: {nxt.deadline or nxt.kind} {nxt.kind} in {duration_text(left)}"


def run_daemon(cfg: config.Config, ledger: Ledger, **kwargs: object) -> int:
    """Entry for `notifier run` (kept here so the CLI stays a thin shell)."""
    os.umask(0o077)
    kwargs.setdefault("send_helpers", cfg.send_helpers)  # read at start, not on reload
    daemon = Daemon(cfg, ledger, **kwargs)  # type: ignore[arg-type]  # forwarded keywords
    return daemon.run()

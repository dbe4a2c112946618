"""`notifier run`: the timer, signals, reload, heartbeat, catch-up.

APScheduler is only the timer: at most three jobs (the next wake-up, the
heartbeat, the config-file watch) whatever the number of deadlines. The plan
itself lives in `Timeline`, refilled from the pure planner as time passes. All
decisions happen on the main thread, one command at a time; channel workers
(dispatch.py) only deliver.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Protocol

from notifier import catchup, config, planning
from notifier.channels import (
    ChannelSender,
    OutgoingMessage,
    isolate_apprise_logging,
    load_plugin_paths,
    register_builtin_schemas,
)
from notifier.dispatch import Dispatcher
from notifier.errors import ConfigError, LedgerError
from notifier.ledger import DeliveryRecord, Ledger
from notifier.model import Notification, Schedule
from notifier.render import Message, Renderer, TemplateSource
from notifier.sdnotify import SystemdNotifier

log = logging.getLogger("notifier.daemon")

WINDOW = timedelta(days=2)
"""How far ahead the in-memory timeline is filled; refilled as time passes."""
STALE_AFTER = timedelta(minutes=5)
"""A notification found this late (downtime, suspend, clock jump) follows the catch-up rules."""
HEARTBEAT = 30.0
SHUTDOWN_BOUND = 10.0


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
        self._start = start
        self._epoch = epoch
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._epoch is not None:
            elapsed = time.time() - self._epoch
        else:
            elapsed = time.monotonic() - self._t0
        return self._start + timedelta(seconds=elapsed * self.scale)


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
        candidates = planning.plan(Schedule(deadlines=(), channels=schedule.channels,
                                            digest=schedule.digest, zone=schedule.zone),
                                   start, end) if rec.kind == "digest" else []
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
        self._config_stat = self._stat(cfg.path)
        self._tried_stat = self._config_stat
        register_builtin_schemas()
        isolate_apprise_logging()
        # APScheduler logs every job run at INFO; the heartbeat would flood the journal.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.loaded = self._prepare(cfg, self.clock.now())
        self.dispatcher = Dispatcher(
            ledger, clock=self.clock.now, render=self._render,
            give_up_after=cfg.give_up_after, late_after=timedelta(seconds=60) * self.clock.scale,
            on_sent=on_sent,
        )
        self.dispatcher.configure(self.loaded.schedule, self.loaded.senders)
        self.timeline = Timeline(self.loaded.schedule, self.clock.now(), self.clock.now())
        self._scheduler: object | None = None
        self._last_alive_write = 0.0

    # -- loading ------------------------------------------------------------

    def _prepare(self, cfg: config.Config, now: datetime) -> Loaded:
        load_plugin_paths(list(cfg.plugin_paths))
        seen = self.ledger.record_first_seen(config.first_seen_ids(cfg.schedule), now)
        schedule = config.with_first_seen(cfg.schedule, seen)
        renderer = Renderer({k: TemplateSource(v.title, v.body) for k, v in cfg.templates.items()})
        timeout = cfg.send_timeout.total_seconds()
        senders = {name: ChannelSender(ch, timeout=timeout)
                   for name, ch in cfg.schedule.channels.items()}
        for name, sender in senders.items():
            log.info("channel %s: %s", name, ", ".join(sender.description()))
        return Loaded(cfg, schedule, renderer, senders)

    def _render(self, n: Notification, schedule: Schedule, sent_at: datetime) -> Message:
        return self.loaded.renderer.render(n, schedule, sent_at=sent_at)

    @staticmethod
    def _stat(path: Path) -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    # -- the loop -----------------------------------------------------------

    def run(self) -> int:
        from apscheduler.schedulers.background import (  # noqa: PLC0415 - slow import
            BackgroundScheduler,
        )

        now = self.clock.now()
        recovered = self.ledger.recover_in_flight(now)
        if recovered:
            log.warning("%d delivery(ies) were in flight at a crash; sending them again", recovered)
        self._catch_up_downtime(now)
        self.timeline = Timeline.build(self.loaded.schedule, now)
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._scheduler = scheduler
        scheduler.add_job(self.commands.put, "interval", args=["heartbeat"],
                          seconds=self.heartbeat, id="heartbeat")
        if self.watch_interval > 0:
            scheduler.add_job(self._watch, "interval", seconds=self.watch_interval, id="watch")
        scheduler.start()
        if self.install_signals:
            self._install_signals()
        self.commands.put("tick")
        self.ledger.touch_alive(now)
        self.sd.ready(self._status_text(now))
        log.info("ready: %s", self._status_text(now))
        try:
            while True:
                command = self.commands.get()
                if command == "stop":
                    break
                try:
                    if command == "reload":
                        self.reload()
                    elif command == "heartbeat":
                        self.sd.watchdog()
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
            try:
                self.ledger.touch_alive(self.clock.now())
            except LedgerError as e:
                log.error("ledger: %s", e)
        log.info("stopped")
        return 0

    def _install_signals(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # SimpleQueue.put is reentrant, so it is safe inside a signal handler.
            self.commands.put("reload" if signum == signal.SIGHUP else "stop")

        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def _watch(self) -> None:
        current = self._stat(self.loaded.cfg.path)
        if current is not None and current != self._tried_stat:
            # Wait until the file has stopped changing, so a half-written save is
            # not read; then reload once for this version of the file.
            time.sleep(min(0.2, self.watch_interval / 2))
            if self._stat(self.loaded.cfg.path) == current:
                self._tried_stat = current
                self.commands.put("reload")

    def _tick(self) -> None:
        now = self.clock.now()
        due = self.timeline.take_due(now)
        stale = [n for n in due if now - n.at > STALE_AFTER * self.clock.scale]
        if stale:
            fresh = [n for n in due if n not in stale]
            self._catch_up(stale, now, reason="late (suspend or clock jump)")
            due = fresh
        for n in due:
            self.dispatcher.submit(n)
        try:
            self._retry_and_touch(now)
        finally:
            self._schedule_wake(now)

    def _retry_and_touch(self, now: datetime) -> None:
        for rec in self.ledger.due_retries(now):
            found = find_notification(self.loaded.schedule, rec)
            if found is None:
                self.ledger.mark_failed(rec.key, rec.channel, now=now,
                                        error="no longer in the configuration")
                continue
            self.dispatcher.submit(found, channels=(rec.channel,), attempt=rec.attempts + 1)
        if time.monotonic() - self._last_alive_write >= min(10.0, self.heartbeat):
            self.ledger.touch_alive(now)
            self._last_alive_write = time.monotonic()

    def _schedule_wake(self, now: datetime) -> None:
        if self._scheduler is None:
            return
        targets = [self.timeline.next_at()]
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

    def _catch_up_downtime(self, now: datetime) -> None:
        since = self.ledger.last_alive()
        if since is None or since >= now:
            return
        missed = planning.plan(self.loaded.schedule, since - STALE_AFTER, now)
        self._catch_up(missed, now, reason=f"notifier was down since {since:%Y-%m-%d %H:%M} UTC")

    def _catch_up(self, candidates: list[Notification], now: datetime, *, reason: str) -> None:
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
        for n in decision.skip:
            for c in routes[n.key]:
                self.ledger.mark_skipped(n.key, c, deadline=n.deadline, kind=n.kind,
                                         planned_at=n.at, now=now, reason=reason)
        for n in decision.send:
            self.dispatcher.submit(n, channels=routes[n.key])
        self._send_summaries(decision, routes, now)

    def _send_summaries(self, decision: catchup.CatchUp, routes: dict[str, tuple[str, ...]],
                        now: datetime) -> None:
        channels = sorted({c for n in (*decision.skip, *decision.send) for c in routes[n.key]})
        for channel in channels:
            skipped = [n for n in decision.skip if channel in routes[n.key]]
            late = [n for n in decision.send if channel in routes[n.key]]
            if not skipped:
                continue
            message = self.loaded.renderer.render_summary(skipped, late, self.loaded.schedule,
                                                          now=now)
            summary = Notification(
                at=now, kind="summary", deadline=None, due=None, offset=None, seq=None,
                channels=(channel,), title=message.title,
                key=f"summary/{planning.utc_text(now)}",
            )
            self.dispatcher.submit(summary, fixed=message)

    # -- reload -------------------------------------------------------------

    def reload(self) -> None:
        self.sd.reloading()
        path = self.loaded.cfg.path
        self._tried_stat = self._stat(path)
        try:
            cfg = config.load(path)
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
            loaded = self._prepare(cfg, now)
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
        self._config_stat = self._tried_stat
        moves = describe_moves(old_schedule, loaded.schedule, now)
        log.info("reloaded: +%d / -%d notifications%s", len(new_keys - old_keys),
                 len(old_keys - new_keys), "".join(f", {m}" for m in moves))
        self.sd.ready(self._status_text(now))

    def _status_text(self, now: datetime) -> str:
        n = len(self.loaded.schedule.deadlines)
        nxt = self.timeline.items[0] if self.timeline.items else None
        if nxt is None:
            return f"{n} deadlines, nothing planned in the next {WINDOW.days} days"
        left = nxt.at - now
        from notifier.views import duration_text  # noqa: PLC0415

        return f"{n} deadlines, next: {nxt.deadline or nxt.kind} {nxt.kind} in " \
               f"{duration_text(left)}"


def run_daemon(cfg: config.Config, ledger: Ledger, **kwargs: object) -> int:
    """Entry for `notifier run` (kept here so the CLI stays a thin shell)."""
    os.umask(0o077)
    daemon = Daemon(cfg, ledger, **kwargs)  # type: ignore[arg-type]  # forwarded keywords
    return daemon.run()

"""The real Daemon run on a thread of the test process (real config, ledger and channels)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from notifier.config import loader as config
from notifier.daemon.clock import Clock
from notifier.daemon.loop import HEARTBEAT, Daemon
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.ledger import Ledger, open_ledger
from notifier.delivery.outcomes import OutgoingMessage
from support.waits import wait_until


@contextmanager
def apprise_logging_restored() -> Iterator[None]:
    """Undo what a Daemon does to the process-wide apprise logger.

    `Daemon.__init__` isolates it (no propagation, a NullHandler, level DEBUG),
    which is right for a daemon process but would leak into later tests of
    logging in this pytest process.
    """
    logger = logging.getLogger("apprise")
    saved = (logger.propagate, logger.level, list(logger.handlers))
    try:
        yield
    finally:
        logger.propagate, level, handlers = saved
        logger.setLevel(level)
        logger.handlers[:] = handlers


@dataclass
class Sent:
    """What the daemon's on_sent hook saw: (message, channel, sent at)."""

    items: list[tuple[OutgoingMessage, str, datetime]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, msg: OutgoingMessage, channel: str, at: datetime) -> None:
        with self.lock:
            self.items.append((msg, channel, at))

    def snapshot(self) -> list[tuple[OutgoingMessage, str, datetime]]:
        with self.lock:
            return list(self.items)


class RecordingNotifier(SystemdNotifier):
    """What the daemon tells systemd, recorded (with time.monotonic()) instead of sent."""

    def __init__(self) -> None:
        super().__init__({})
        self.lock = threading.Lock()
        self.messages: list[tuple[float, tuple[str, ...]]] = []

    def notify(self, *assignments: str) -> bool:
        with self.lock:
            self.messages.append((time.monotonic(), assignments))
        return True

    def times(self, assignment: str) -> list[float]:
        """When each message holding `assignment` (e.g. "WATCHDOG=1") was sent."""
        with self.lock:
            return [t for t, sent in self.messages if assignment in sent]

    def count(self, assignment: str) -> int:
        return len(self.times(assignment))


@dataclass
class RunningDaemon:
    daemon: Daemon
    ledger: Ledger
    sent: Sent
    notes: RecordingNotifier
    thread: threading.Thread
    result: list[int]

    def heartbeats(self, count: int = 1, timeout: float | None = None) -> None:
        """Return once `count` whole heartbeat rounds ran after the call: what the daemon
        would do for the wall clock as it is now (send, catch up, skip) it has done, or
        handed to the dispatcher. A round's WATCHDOG=1 goes out as it starts, so
        count + 1 pings mean count whole rounds."""
        if timeout is None:  # the rounds themselves, and room for a loaded machine
            timeout = (count + 1) * self.daemon.heartbeat + 20.0
        first = self.notes.count("WATCHDOG=1")
        wait_until(lambda: self.notes.count("WATCHDOG=1") >= first + count + 1, timeout,
                   f"{count} heartbeat round(s) of the daemon")

    def stop(self, timeout: float = 20.0) -> int:
        self.daemon.commands.put("stop")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        assert self.result, "the daemon's run() raised"
        return self.result[0]


@contextmanager
def daemon_thread(
    config_path: Path,
    *,
    clock: Clock | None = None,
    notifier: RecordingNotifier | None = None,
    heartbeat: float = HEARTBEAT,
    watch_interval: float = 0,
    first_backoff: timedelta | None = None,
    max_backoff: timedelta | None = None,
) -> Iterator[RunningDaemon]:
    """The real Daemon on a thread over the config's ledger file, up and scheduling for
    the block; then stopped and the ledger closed.

    The clock is the system's, the heartbeat the product's (30 s) and the file
    not watched (`watch_interval` 0) unless given;
    `first_backoff` and `max_backoff` replace the dispatcher's 30 s / 1 h so retries
    fit a test. What it would tell systemd is recorded in `notifier` (a fresh one unless
    given).
    """
    cfg = config.load(config_path)
    assert cfg.state is not None
    with apprise_logging_restored():
        ledger = open_ledger(cfg.state)
        sent = Sent()
        notes = notifier or RecordingNotifier()
        try:
            daemon = Daemon(cfg, ledger, clock=clock, notifier=notes,
                            heartbeat=heartbeat, watch_interval=watch_interval, install_signals=False,
                            on_sent=sent)
        except BaseException:
            ledger.close()
            raise
        if first_backoff is not None:
            daemon.dispatcher.first_backoff = first_backoff
        if max_backoff is not None:
            daemon.dispatcher.max_backoff = max_backoff
        with _on_thread(daemon, ledger, sent, notes) as running:
            yield running


@contextmanager
def _on_thread(daemon: Daemon, ledger: Ledger, sent: Sent,
               notes: RecordingNotifier) -> Iterator[RunningDaemon]:
    result: list[int] = []

    def main() -> None:
        result.append(daemon.run())

    thread = threading.Thread(target=main, name="daemon-under-test", daemon=True)
    running = RunningDaemon(daemon, ledger, sent, notes, thread, result)
    thread.start()
    try:
        wait_until(lambda: notes.count("READY=1") > 0 or not thread.is_alive(), 10,
                   "READY=1 from the daemon")
        yield running
    finally:
        if thread.is_alive():
            daemon.commands.put("stop")
            thread.join(20)
        ledger.close()
    assert not thread.is_alive(), "the daemon did not stop within 20 s"

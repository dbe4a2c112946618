"""`notifier replay`: the real daemon on a virtual clock, with a throw-away ledger.

Only the built-in local URLs (``console://``, ``jsonl://``) are sent to unless
`send_real`: every other URL gets a stand-in that records what it would have
received, and the delivery's line shows it (in privacy form, never a secret).
Claims, ledger, marks and retries run for it as for a real send.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from notifier.commands.common import (
    DEFAULT_SPAN,
    Result,
    instant,
    load_config,
    start_logging,
    writable_ledger,
)
from notifier.daemon.clock import VirtualClock
from notifier.daemon.loop import Daemon
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.ledger import daemon_has_owned
from notifier.delivery.outcomes import OutgoingMessage
from notifier.errors import UsageError
from notifier.text import rfc3339

SEND_REAL_NOTICE = ("replay: --send-real: sending past events to every channel URL for real, "
                    "not only console:// and jsonl://")


class Preview:
    """What the URLs that are not built-in would have received, per (key, channel),
    until the delivery's line shows it (the stand-in runs on the channel's send threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._urls: dict[tuple[str, str], list[str]] = {}
        self.deliveries = 0
        """Deliveries shown with at least one URL not sent to."""

    def record(self, channel: str, url_private: str, msg: OutgoingMessage) -> None:
        with self._lock:
            self._urls.setdefault((msg.key, channel), []).append(url_private)

    def take(self, key: str, channel: str) -> list[str]:
        with self._lock:
            urls = self._urls.pop((key, channel), [])
            self.deliveries += bool(urls)
        return sorted(urls)


def replay(config_path: Path | None, *, start: datetime | date, end: datetime | date | None,
           speed: float, ledger_file: Path | None, epoch: float | None, send_real: bool,
           say: Callable[[str], None], warn: Callable[[str], None]) -> Result:
    """Each delivery goes to `say` as it is made, once; the result is the count."""
    cfg = load_config(config_path, for_reload=True)
    zone = cfg.schedule.zone
    begin = instant(start, zone)
    finish = begin + DEFAULT_SPAN if end is None else instant(end, zone)
    if finish <= begin:
        raise UsageError("--until must be after --from")
    start_logging(cfg, "WARNING")

    preview = None if send_real else Preview()

    def show(msg: OutgoingMessage, channel: str, at: datetime) -> None:
        stamp = msg.planned_at.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
        line = f"{stamp}  {msg.kind:<11} -> {channel}: {msg.title}"
        shown = [] if preview is None else preview.take(msg.key, channel)
        if shown:
            line += f"  [not sent to {', '.join(shown)}; key {msg.key}]"
        say(line)

    if ledger_file is not None and daemon_has_owned(ledger_file):
        raise UsageError(f"--ledger {ledger_file}: `notifier run` has used this ledger; a "
                         "replay keeps its virtual deliveries in a ledger of its own")
    with tempfile.TemporaryDirectory(prefix="notifier-replay-") as tmp:
        book = writable_ledger(cfg, ledger_file or Path(tmp) / "replay.db")
        say(f"replay {rfc3339(begin)} -> {rfc3339(finish)} "
            f"at {speed:g}x ({zone.key})")
        if send_real:
            warn(SEND_REAL_NOTICE)
        try:
            daemon = Daemon(cfg, book, clock=VirtualClock(begin, speed, epoch),
                            notifier=SystemdNotifier({}), stop_at=finish, on_sent=show,
                            watch_interval=0, install_signals=True,
                            stand_in=None if preview is None else preview.record)
            status = daemon.run()
        finally:
            book.close()
    unsent = "" if preview is None or not preview.deliveries else (
        f" ({preview.deliveries} of them shown, not sent: --send-real sends them)")
    return Result(f"replay done: {daemon.dispatcher.sent} delivered, "
                  f"{daemon.dispatcher.failed} failed{unsent}\n", status=status)

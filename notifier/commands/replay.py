"""`notifier replay`: the real daemon on a virtual clock, with a throw-away ledger."""

from __future__ import annotations

import tempfile
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


def replay(config_path: Path | None, *, start: datetime | date, end: datetime | date | None,
           speed: float, ledger_file: Path | None, epoch: float | None,
           say: Callable[[str], None]) -> Result:
    """Each message sent goes to `say` as it is sent; the result is the count."""
    cfg = load_config(config_path, for_reload=True)
    zone = cfg.schedule.zone
    begin = instant(start, zone)
    finish = begin + DEFAULT_SPAN if end is None else instant(end, zone)
    if finish <= begin:
        raise UsageError("--until must be after --from")
    start_logging(cfg, "WARNING")

    def show(msg: OutgoingMessage, channel: str, at: datetime) -> None:
        stamp = msg.planned_at.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
        say(f"{stamp}  {msg.kind:<11} -> {channel}: {msg.title}")

    if ledger_file is not None and daemon_has_owned(ledger_file):
        raise UsageError(f"--ledger {ledger_file}: `notifier run` has used this ledger; a "
                         "replay keeps its virtual deliveries in a ledger of its own")
    with tempfile.TemporaryDirectory(prefix="notifier-replay-") as tmp:
        book = writable_ledger(cfg, ledger_file or Path(tmp) / "replay.db")
        say(f"replay {rfc3339(begin)} -> {rfc3339(finish)} "
            f"at {speed:g}x ({zone.key})")
        try:
            daemon = Daemon(cfg, book, clock=VirtualClock(begin, speed, epoch),
                            notifier=SystemdNotifier({}), stop_at=finish, on_sent=show,
                            watch_interval=0, install_signals=True)
            status = daemon.run()
        finally:
            book.close()
    return Result(f"replay done: {daemon.dispatcher.sent} delivered, "
                  f"{daemon.dispatcher.failed} failed\n", status=status)

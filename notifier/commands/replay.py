"""`notifier replay`: the real daemon on a virtual clock, with a throw-away ledger.

Only the built-in local URLs (``console://``, ``jsonl://``) are sent to unless
`send_real`: every other URL gets a stand-in that records what it would have
received, and the delivery's line shows it (in privacy form, never a secret).
Claims, ledger, marks and retries run for it as for a real send.

Each delivery is shown once: its line, and under it, for a delivery to a
channel with a ``console://`` URL, what that URL printed (the body's lines,
taken by `ConsoleShown` instead of going to stdout on their own).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from notifier.commands.common import (
    DEFAULT_SPAN,
    Result,
    instant,
    load_config,
    start_logging,
    until_after_from,
    writable_ledger,
)
from notifier.daemon.clock import VirtualClock
from notifier.daemon.loop import Daemon
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.ledger import daemon_has_owned
from notifier.delivery.outcomes import OutgoingMessage
from notifier.delivery.plugins import (
    ConsoleMessage,
    ConsoleWriter,
    console_writer,
    write_to_stdout,
)
from notifier.errors import UsageError
from notifier.logs import is_journal_stream
from notifier.text import escaped
from notifier.wording import Fmt

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


class ConsoleShown:
    """What ``console://`` URLs printed, per (key, channel), until the delivery's line
    shows it: a `ConsoleWriter` (called on the channel's send threads)."""

    def __init__(self, fallback: ConsoleWriter) -> None:
        self._fallback = fallback
        self._lock = threading.Lock()
        self._messages: dict[tuple[str, str], ConsoleMessage] = {}

    def __call__(self, message: ConsoleMessage) -> None:
        if message.key is None or message.channel is None:
            self._fallback(message)  # not a delivery of this replay's: printed as it comes
            return
        with self._lock:
            # Two console:// URLs in one channel print the same message: shown once.
            self._messages.setdefault((message.key, message.channel), message)

    def take(self, key: str, channel: str) -> ConsoleMessage | None:
        with self._lock:
            return self._messages.pop((key, channel), None)

    def flush(self) -> None:
        """Print, as console:// would have, what no delivery's line showed (a channel
        whose other URL still failed when the replay ended)."""
        with self._lock:
            left, self._messages = list(self._messages.values()), {}
        for message in left:
            self._fallback(message)


_EVER = datetime.max.replace(tzinfo=UTC)


def speed_text(speed: float) -> str:
    """"100,000" or "2.5", never "1e+06"."""
    return f"{speed:,.0f}" if speed == int(speed) else f"{speed:,g}"


def replay(config_path: Path | None, *, start: datetime | date, end: datetime | date | None,
           speed: float, ledger_file: Path | None, epoch: float | None, send_real: bool,
           say: Callable[[str], None], warn: Callable[[str], None]) -> Result:
    """Each delivery goes to `say` as it is made, once; the result is the count."""
    cfg = load_config(config_path, for_reload=True)
    zone = cfg.schedule.zone
    begin = instant(start, zone, "--from")
    finish = begin + DEFAULT_SPAN if end is None else instant(end, zone, "--until")
    until_after_from(begin, finish)
    start_logging(cfg, "WARNING")

    preview = None if send_real else Preview()

    console = ConsoleShown(write_to_stdout)
    # Under journald (as for console:// itself) one line per delivery: no bodies.
    bodies = not is_journal_stream(sys.stdout, os.environ)
    # The messages' date style; stamps padded to a common width as the replay goes.
    width = len(Fmt(zone, ref=begin).instant(begin.replace(day=10)))
    width_lock = threading.Lock()

    def show(msg: OutgoingMessage, channel: str, at: datetime) -> None:
        nonlocal width
        # A Fmt per line: one kept for the whole replay would remember every instant.
        stamp = Fmt(zone, ref=begin).instant(msg.planned_at)
        with width_lock:
            width = max(width, len(stamp))
            pad = width
        line = f"{stamp:<{pad}}  {msg.kind:<11} -> {channel}: {escaped(msg.title)}"
        shown = [] if preview is None else preview.take(msg.key, channel)
        if shown:
            line += f"  [not sent to {', '.join(shown)}; key {msg.key}]"
        printed = console.take(msg.key, channel)
        if printed is not None and bodies:
            line = "\n".join([line, *printed.body_lines()])
        say(line)

    if ledger_file is not None and daemon_has_owned(ledger_file):
        raise UsageError(f"--ledger {ledger_file}: `notifier run` has used this ledger; a "
                         "replay keeps its virtual deliveries in a ledger of its own")
    with tempfile.TemporaryDirectory(prefix="notifier-replay-") as tmp:
        book = writable_ledger(cfg, ledger_file or Path(tmp) / "replay.db")
        span = Fmt(zone, None)  # the year always: a replay is often of another year
        say(f"replay {span.moment(begin)} -> {span.moment(finish)} ({zone.key}), "
            f"{speed_text(speed)} times real speed")
        if send_real:
            warn(SEND_REAL_NOTICE)
        try:
            daemon = Daemon(cfg, book, clock=VirtualClock(begin, speed, epoch),
                            notifier=SystemdNotifier({}), stop_at=finish, on_sent=show,
                            watch_interval=0, install_signals=True,
                            stand_in=None if preview is None else preview.record)
            with console_writer(console):
                status = daemon.run()
            # Failed sends whose next attempt --until came before: neither delivered
            # nor given up, and not to be left out of the count.
            retrying = len(book.due_retries(_EVER))
        finally:
            book.close()
            console.flush()
    unsent = "" if preview is None or not preview.deliveries else (
        f" ({preview.deliveries} of them shown, not sent: --send-real sends them)")
    still = f", {retrying} still retrying at --until" if retrying else ""
    return Result(f"replay done: {daemon.dispatcher.sent} delivered, "
                  f"{daemon.dispatcher.failed} failed{still}{unsent}\n", status=status)

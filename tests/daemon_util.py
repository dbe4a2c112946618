"""Helpers for the delivery tests: config files, the real daemon in a thread, jsonl output.

Everything here drives the real product parts (config loading, the SQLite
ledger, apprise channels, the Daemon and its Dispatcher); nothing is mocked.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notifier.config import loader as config
from notifier.daemon.loop import HEARTBEAT, Daemon
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.channels import ChannelSender
from notifier.delivery.ledger import DeliveryRecord, Ledger, open_ledger
from notifier.delivery.outcomes import OutgoingMessage
from notifier.schedule.model import Schedule

TomlValue = str | int | bool | datetime | Sequence[str]


def utc_now() -> datetime:
    return datetime.now(UTC)


def toml_value(value: TomlValue) -> str:
    """A TOML literal (datetimes as offset datetimes with microseconds, in UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(json.dumps(v) for v in value) + "]"


def deadline(ident: str, due: datetime, *, announced: datetime | None = None,
             reminders: Sequence[str] = (), channels: Sequence[str] | None = None,
             title: str | None = None) -> dict[str, TomlValue]:
    """One [[deadlines]] table; `announced` defaults to an hour before the test."""
    d: dict[str, TomlValue] = {
        "id": ident,
        "title": title or f"Handover {ident}",
        "due": due,
        "announced": announced or utc_now() - timedelta(hours=1),
        "reminders": list(reminders),
    }
    if channels is not None:
        d["channels"] = list(channels)
    return d


def write_config(
    path: Path,
    *,
    state: Path,
    channels: Mapping[str, str | Sequence[str]],
    deadlines: Sequence[Mapping[str, TomlValue]],
    delivery: Mapping[str, str] | None = None,
    log_level: str = "INFO",
) -> Path:
    """Write a notifier config (mode 0600: it may hold channel secrets)."""
    lines = [
        "[notifier]",
        f"state = {toml_value(str(state))}",
        f"log_level = {toml_value(log_level)}",
        "",
        "[defaults]",
        'timezone = "Asia/Baku"',
        "reminders = []",
        "",
    ]
    if delivery:
        lines.append("[delivery]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in delivery.items())
        lines.append("")
    for name, url in channels.items():
        lines.append(f"[channels.{name}]")
        if isinstance(url, str):
            lines.append(f"url = {toml_value(url)}")
        else:
            lines.append(f"urls = {toml_value(list(url))}")
        lines.append("")
    for d in deadlines:
        lines.append("[[deadlines]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in d.items())
        lines.append("")
    path.write_text("\n".join(lines), "utf-8")
    path.chmod(0o600)
    return path


def senders(schedule: Schedule, *, timeout: float, parallel: int | None = None
            ) -> dict[str, ChannelSender]:
    """A ChannelSender per channel; `parallel` caps the sends in flight (default: what
    each channel allows)."""
    out = {name: ChannelSender(ch, timeout=timeout) for name, ch in schedule.channels.items()}
    if parallel is not None:
        for sender in out.values():
            sender.parallel = min(sender.parallel, parallel)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every parseable line of a jsonl:// file (a line torn by a crash is left out)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def rows(ledger_path: Path) -> list[DeliveryRecord]:
    """The ledger's rows, read through a separate read-only connection."""
    book = open_ledger(ledger_path, readonly=True)
    try:
        return book.history()
    finally:
        book.close()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@contextmanager
def apprise_logging_restored() -> Iterator[None]:
    """Undo what a Daemon does to the process-wide apprise logger.

    `Daemon.__init__` calls `isolate_apprise_logging()` (no propagation, a
    NullHandler, level WARNING), which is right for a daemon process but would
    leak into later tests of logging in this pytest process.
    """
    logger = logging.getLogger("apprise")
    saved = (logger.propagate, logger.level, list(logger.handlers))
    try:
        yield
    finally:
        logger.propagate, level, handlers = saved
        logger.setLevel(level)
        for h in list(logger.handlers):
            if h not in handlers:
                logger.removeHandler(h)


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


@dataclass
class RunningDaemon:
    daemon: Daemon
    ledger: Ledger
    sent: Sent
    thread: threading.Thread
    result: list[int]

    def stop(self, timeout: float = 20.0) -> int:
        self.daemon.commands.put("stop")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        assert self.result, "the daemon's run() raised"
        return self.result[0]


@contextmanager
def running_daemon(
    config_path: Path,
    *,
    heartbeat: float = HEARTBEAT,
    first_backoff: timedelta | None = None,
    max_backoff: timedelta | None = None,
) -> Iterator[RunningDaemon]:
    """The real Daemon (system clock) on a thread, over the config's ledger file.

    The heartbeat is the product's (30 s) unless given; `first_backoff` and
    `max_backoff` replace the dispatcher's 30 s / 1 h so retries fit a test.
    """
    cfg = config.load(config_path)
    assert cfg.state is not None
    with apprise_logging_restored():
        ledger = open_ledger(cfg.state)
        sent = Sent()
        try:
            daemon = Daemon(cfg, ledger, notifier=SystemdNotifier({}), heartbeat=heartbeat,
                            watch_interval=0, install_signals=False, on_sent=sent)
        except BaseException:
            ledger.close()
            raise
        with _run(daemon, ledger, sent, first_backoff, max_backoff) as running:
            yield running


@contextmanager
def _run(daemon: Daemon, ledger: Ledger, sent: Sent, first_backoff: timedelta | None,
         max_backoff: timedelta | None) -> Iterator[RunningDaemon]:
    if first_backoff is not None:
        daemon.dispatcher.first_backoff = first_backoff
    if max_backoff is not None:
        daemon.dispatcher.max_backoff = max_backoff
    result: list[int] = []

    def main() -> None:
        result.append(daemon.run())

    thread = threading.Thread(target=main, name="daemon-under-test", daemon=True)
    running = RunningDaemon(daemon, ledger, sent, thread, result)
    thread.start()
    try:
        yield running
    finally:
        if thread.is_alive():
            daemon.commands.put("stop")
            thread.join(20)
        ledger.close()

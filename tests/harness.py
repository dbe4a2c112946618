"""The real daemon in a subprocess, a real NOTIFY_SOCKET, and its outputs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier.daemon.loop import Daemon as InProcessDaemon
    from notifier.delivery.ledger import Ledger


def utc_now() -> datetime:
    return datetime.now(UTC)


def toml_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


class NotifySocket:
    """A Unix datagram socket bound where the daemon's NOTIFY_SOCKET points."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0,
                 after: int = 0) -> str:
        """The first message (at index >= after) satisfying predicate."""
        deadline = time.monotonic() + timeout
        while True:
            for _, message in self.messages[after:]:
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching sd_notify message; got {self.texts()}")
            self._drain()

    def texts(self) -> list[str]:
        self._drain()
        return [m for _, m in self.messages]

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """`python -m notifier run -c CONFIG` with its output in files."""

    def __init__(self, config: Path, env: dict[str, str], workdir: Path) -> None:
        self.config = config
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"daemon-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "notifier", "run", "-c", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir,
            )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def logs(self) -> str:
        return "".join((self.workdir / f"daemon-{i}.log").read_text(errors="replace")
                       for i in range(1, self.runs + 1))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def daemon_setup(tmp: Path, config_text: str) -> tuple[Path, NotifySocket, dict[str, str]]:
    """The config file, our NOTIFY_SOCKET, and the daemon's environment (none of
    the test runner's NOTIFIER_/systemd variables)."""
    config = tmp / "config.toml"
    config.write_text(config_text)
    config.chmod(0o600)
    notify = NotifySocket(tmp / "notify.sock")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NOTIFIER_", "WATCHDOG_", "JOURNAL_", "NOTIFY_"))}
    env.update({"NOTIFY_SOCKET": str(notify.path), "PYTHONUNBUFFERED": "1"})
    return config, notify, env


@contextmanager
def running_daemon(tmp: Path, config_text: str, *, extra_env: dict[str, str] | None = None,
                   ) -> Iterator[tuple[Daemon, NotifySocket]]:
    config, notify, env = daemon_setup(tmp, config_text)
    env.update(extra_env or {})
    daemon = Daemon(config, env, tmp)
    daemon.start()
    try:
        yield daemon, notify
    finally:
        daemon.stop()
        notify.close()


def config_text(tmp: Path, deadlines: str, *, head: str = "", channels: str = "") -> str:
    return f"""\
[notifier]
state = "{tmp / 'state.db'}"
log_level = "DEBUG"
{head}
[defaults]
timezone = "UTC"
reminders = []

[channels.out]
url = "jsonl://{tmp / 'out.jsonl'}"
{channels}
{deadlines}
"""


def deadline(ident: str, due: datetime, *, reminders: str = "[]",
             announced: datetime | None = None, extra: str = "") -> str:
    announced = announced or (due - timedelta(days=30))
    return f"""
[[deadlines]]
id = "{ident}"
title = "{ident.title()}"
due = {toml_time(due)}
announced = {toml_time(announced)}
reminders = {reminders}
{extra}
"""


@contextmanager
def running_in_thread(daemon: InProcessDaemon, book: Ledger) -> Iterator[InProcessDaemon]:
    """`daemon.run()` in a thread, up and scheduling, for the block; then stopped and
    `book` closed. For tests where the process's own clock must move."""
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: daemon._scheduler is not None, 10, "the daemon to start")
        time.sleep(0.3)
        yield daemon
    finally:
        daemon.commands.put("stop")
        thread.join(timeout=15)
        book.close()
    assert not thread.is_alive(), "the daemon did not stop within 15 s"

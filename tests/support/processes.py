"""`python -m notifier ...` in a subprocess, and the NOTIFY_SOCKET a daemon reports to."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from support.configs import write_config
from support.env import clean_env
from support.waits import wait_until


def notifier_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "notifier", *args]


def run_notifier(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One command to its end, its output captured."""
    return subprocess.run(notifier_cmd(*args), env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass
class Proc:
    """One `python -m notifier ...` subprocess with stdout+stderr appended to a file
    (each start() appends: a restarted daemon's log follows the last run's)."""

    args: list[str]
    log: Path
    env: dict[str, str]
    new_session: bool = False
    """A process group of its own, as a systemd unit's processes are."""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(notifier_cmd(*self.args), stdout=sink,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.log.parent,
                                         start_new_session=self.new_session)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def size(self) -> int:
        """The log's length in bytes: a mark for text(after=...)."""
        return self.log.stat().st_size if self.log.exists() else 0

    def text(self, after: int = 0) -> str:
        """The log from byte `after` on."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(after)
            return f.read().decode("utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_ready(p: Proc, timeout: float = 30, after: int = 0) -> None:
    """Until the daemon logs ` ready: ` (at or after byte `after` of its log)."""
    def ready() -> bool:
        assert p.alive(), p.text()[-3000:]
        return " ready: " in p.text(after)
    wait_until(ready, timeout, "the daemon to be ready")


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


def daemon_setup(tmp: Path, config_text: str) -> tuple[Path, NotifySocket, dict[str, str]]:
    """tmp/config.toml, our NOTIFY_SOCKET, and the daemon's environment pointing at it."""
    config = write_config(tmp / "config.toml", config_text)
    notify = NotifySocket(tmp / "notify.sock")
    return config, notify, clean_env(NOTIFY_SOCKET=str(notify.path))


@contextmanager
def daemon_process(tmp: Path, config_text: str, *, extra_env: dict[str, str] | None = None,
                   ) -> Iterator[tuple[Proc, NotifySocket]]:
    """`notifier run` on tmp/config.toml in a subprocess (log: tmp/daemon.log), reporting
    to a NOTIFY_SOCKET we hold; stopped at the end of the block."""
    config, notify, env = daemon_setup(tmp, config_text)
    env.update(extra_env or {})
    daemon = Proc(["run", "-c", str(config)], tmp / "daemon.log", env).start()
    try:
        yield daemon, notify
    finally:
        daemon.stop()
        notify.close()

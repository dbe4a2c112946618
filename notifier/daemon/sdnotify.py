"""The systemd notify protocol (sd_notify(3)), by hand and without a dependency.

systemd passes a Unix datagram socket in ``$NOTIFY_SOCKET`` (a file system path,
or an abstract socket written with a leading ``@``) to a ``Type=notify`` service;
the service reports its state by sending newline-separated ``KEY=VALUE``
assignments to it. ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, naming the process
it is meant for) asks for a ``WATCHDOG=1`` ping more often than that.

Notifying is best effort and must never hurt the daemon: every send is a single
non-blocking datagram, and any failure is logged at debug level and swallowed.
Without ``$NOTIFY_SOCKET`` every method does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

from notifier.text import one_line

__all__ = ["SystemdNotifier"]

log = logging.getLogger("notifier.sdnotify")  # the name operators filter on since 0.1


def _parse_address(value: str | None) -> bytes | None:
    """The socket address for `sendto`, or None if notifying is off or impossible."""
    if not value:
        return None
    if value.startswith("@"):
        # Abstract namespace: a leading NUL byte instead of the '@'.
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    # Other forms (e.g. "vsock:" from systemd >= 254) are not supported here.
    log.debug("NOTIFY_SOCKET has an unsupported address form; not notifying systemd")
    return None


def _parse_watchdog(environ: Mapping[str, str]) -> int | None:
    """The watchdog timeout in microseconds if it is meant for this process."""
    raw = environ.get("WATCHDOG_USEC", "").strip()
    if not raw:
        return None
    try:
        usec = int(raw, 10)
    except ValueError:
        log.debug("ignoring WATCHDOG_USEC that is not an integer")
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID", "").strip()
    if pid:
        try:
            if int(pid, 10) != os.getpid():
                return None
        except ValueError:
            log.debug("ignoring WATCHDOG_PID that is not an integer")
            return None
    return usec


class SystemdNotifier:
    """Sends state notifications to systemd; a silent no-op outside systemd.

    Created from the environment (``os.environ`` unless `environ` is given). Safe
    to share between threads: a heartbeat thread may ping while another reloads.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._address = _parse_address(env.get("NOTIFY_SOCKET"))
        self._watchdog_usec = _parse_watchdog(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Same as the constructor; reads ``os.environ`` unless `environ` is given."""
        return cls(environ)

    @property
    def enabled(self) -> bool:
        """True when ``$NOTIFY_SOCKET`` names a socket to notify."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the watchdog timeout), or None.

        None when ``$WATCHDOG_USEC`` is unset or invalid, or when ``$WATCHDOG_PID``
        names another process.
        """
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram.

        Returns True when the datagram was handed to the socket. Never raises and
        never blocks: failures are logged at debug level.
        """
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", errors="replace")
        try:
            with self._lock:
                if self._sock is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    sock.setblocking(False)
                    self._sock = sock
                self._sock.sendto(payload, self._address)
        except OSError as exc:
            # Includes a full queue (BlockingIOError), a missing socket file and
            # a refused connection: systemd may simply not be listening.
            log.debug("could not notify systemd (%s): %s", assignments[0], exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up or a reload is complete (with an optional status line)."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", f"STATUS={one_line(status)}")

    def reloading(self) -> bool:
        """``RELOADING=1`` with the ``MONOTONIC_USEC`` timestamp systemd requires."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """``STOPPING=1``: the daemon is shutting down."""
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """``STATUS=...``: a one-line status shown by ``systemctl status``."""
        return self.notify(f"STATUS={one_line(text)}")

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC``: ask for more time to start, reload or stop."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def close(self) -> None:
        """Close the socket; a later notification opens a new one."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

"""The daemon's side of the send helpers (see `notifier.delivery.sendhelper`).

`SendPool` is a channel's `Offload`: `submit` hands one delivery to the
helper with the fewest sends in flight and returns a wait for its report, or
None when no helper is up (not started yet, exited, or could not start),
and the channel then sends in its own process as it always can. A helper
that exits fails its sends in flight with `OffloadLost` (transient: the
dispatcher retries them, as after a crash) and is started again at most once
per `RESPAWN_GAP`.

Opt-in: `notifier run` makes a pool only for ``[delivery] helpers = N`` with
N > 0; by default no helper process is started and no wire protocol is used.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from notifier.delivery.channels import OffloadLost
from notifier.delivery.outcomes import NotifyReport
from notifier.delivery.sendhelper import decode_report
from notifier.wording import plural

__all__ = ["RESPAWN_GAP", "SendPool"]

RESPAWN_GAP: Final = 10.0
"""Seconds between two starts of one helper slot, so a helper that cannot live is not a loop."""

_COMMAND: Final = (sys.executable, "-m", "notifier.delivery.sendhelper")

log = logging.getLogger("notifier.sendpool")  # the name operators filter on since 0.1


class _Waiter:
    def __init__(self) -> None:
        self._done = threading.Event()
        self._report: NotifyReport | None = None
        self._lost: str | None = None

    def finish(self, report: NotifyReport | None, lost: str | None = None) -> None:
        self._report, self._lost = report, lost
        self._done.set()

    def wait(self) -> NotifyReport:
        self._done.wait()
        if self._report is None:
            raise OffloadLost(self._lost or "the send helper went away")
        return self._report


class _Helper:
    """One helper process, its socket, and the sends it has not answered yet."""

    def __init__(self, slot: int, command: Sequence[str]) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*command, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self._out = ours.makefile("wb")
        self.lock = threading.Lock()
        self.pending: dict[int, _Waiter] = {}
        self.ready = threading.Event()
        self.gone = False
        self.closing = False
        self.reader = threading.Thread(target=self._read, name=f"send-helper-{slot}",
                                       daemon=True)
        self.reader.start()

    def submit(self, ident: int, request: bytes) -> _Waiter | None:
        waiter = _Waiter()
        with self.lock:
            if self.gone:
                return None
            self.pending[ident] = waiter
            try:
                self._out.write(request)
                self._out.flush()
            except (OSError, ValueError):
                del self.pending[ident]
                return None  # the reader sees the end and says so
        return waiter

    def _read(self) -> None:
        why = "ended its socket"
        try:
            with self.sock.makefile("rb") as inbox:
                for line in inbox:
                    obj = json.loads(line)
                    if "ready" in obj:
                        log.debug("send helper ready (pid %d)", self.proc.pid)
                        self.ready.set()
                        continue
                    with self.lock:
                        waiter = self.pending.pop(int(obj["i"]), None)
                    if waiter is not None:
                        waiter.finish(decode_report(obj))
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = f"could not be read ({type(e).__name__})"
        with self.lock:
            self.gone = True
            lost, self.pending = list(self.pending.values()), {}
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self.proc.poll() is None and why != "ended its socket":
            self.proc.kill()
        code = self.proc.wait()
        text = f"send helper (pid {self.proc.pid}) {why}, exit status {code}"
        for waiter in lost:
            waiter.finish(None, f"{text}; not known whether it was delivered")
        if not self.ready.is_set() and not self.closing:
            log.warning("%s before it was ready; sending in the daemon", text)
        elif lost or not self.closing:
            log.warning("%s; %s in flight will be retried", text, plural(len(lost), "send"))

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class SendPool:
    """Up to `size` helper processes; a channel's `Offload` (see the module docstring)."""

    def __init__(self, size: int, *, command: Sequence[str] = _COMMAND,
                 respawn_gap: float = RESPAWN_GAP) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.respawn_gap = respawn_gap
        self._command = tuple(command)
        self._lock = threading.Lock()
        self._slots: list[_Helper | None] = [None] * size
        self._started: list[float | None] = [None] * size
        self._ids = itertools.count(1)
        self._closed = False

    def start(self) -> None:
        """Start every helper not running (each becomes useful once it says it is ready)."""
        with self._lock:
            for slot in range(self.size):
                self._start_slot(slot, time.monotonic(), force=True)

    def _start_slot(self, slot: int, now: float, *, force: bool) -> None:
        helper = self._slots[slot]
        if self._closed or (helper is not None and not helper.gone):
            return
        last = self._started[slot]
        if not force and last is not None and now - last < self.respawn_gap:
            return
        self._started[slot] = now
        try:
            self._slots[slot] = _Helper(slot, self._command)
        except OSError as e:
            self._slots[slot] = None
            log.warning("send helper could not start (%s); sending in the daemon", e)

    def submit(self, url: str, title: str, body: str, kind: str, /
               ) -> Callable[[], NotifyReport] | None:
        with self._lock:
            now = time.monotonic()
            live: list[_Helper] = []
            for slot, helper in enumerate(self._slots):
                if helper is None or helper.gone:
                    self._start_slot(slot, now, force=False)
                elif helper.ready.is_set():
                    live.append(helper)
            if not live:
                return None
            helper = min(live, key=lambda h: len(h.pending))
            ident = next(self._ids)
        request = json.dumps({"i": ident, "u": url, "t": title, "b": body, "k": kind})
        waiter = helper.submit(ident, request.encode() + b"\n")
        return None if waiter is None else waiter.wait

    def pids(self) -> list[int]:
        """The helpers that are up and ready."""
        with self._lock:
            return [h.proc.pid for h in self._slots
                    if h is not None and not h.gone and h.ready.is_set()]

    def close(self, timeout: float = 2.0) -> None:
        """End every helper: its socket first (sends still running there are lost)."""
        with self._lock:
            self._closed = True
            helpers = [h for h in self._slots if h is not None]
        for h in helpers:
            h.close()
        end = time.monotonic() + timeout
        for h in helpers:
            h.reader.join(max(0.0, end - time.monotonic()))
            if h.reader.is_alive():
                h.proc.kill()
                h.reader.join(1.0)

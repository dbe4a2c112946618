"""One daemon owns a SQLite ledger at a time: a kernel lock on a file beside it.

Two daemons on one ledger would each claim part of the deliveries, so the
second refuses to start. The lock is `flock(LOCK_EX | LOCK_NB)` on
`<ledger>.lock` (0600, like the ledger): the kernel drops it when the owner's
process ends, however it ends, so a crash never leaves a stale lock. The
file holds the owner's pid and host only for the refusal's message. It is
never deleted (a process that had opened the old file could then lock it
while another locks a new one), so it also marks a ledger that a daemon has
owned, which `notifier replay --ledger` refuses to write into.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import suppress
from pathlib import Path

from notifier.delivery.ledger.file import make_parent, os_reason
from notifier.errors import LedgerError
from notifier.text import one_line

_OWNER_CHARS = 300
"""Enough of the lock file for a pid and a host name; the rest is not read."""


def lock_path(ledger: Path) -> Path:
    """Where the owner lock of the ledger at `ledger` lives."""
    return ledger.with_name(ledger.name + ".lock")


class OwnerLock:
    """The ledger's owner lock, held from `take` until `release` (or the process ends)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, ledger: Path) -> OwnerLock:
        """Own `ledger`, or raise LedgerError naming the process that does."""
        path = lock_path(ledger)
        make_parent(ledger)
        fd = _open(ledger, path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise LedgerError(
                f"ledger {ledger}: in use by {owner}; one daemon owns a ledger at a time"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"ledger {ledger}: cannot lock {path}: "
                              f"{os_reason(exc)}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"ledger {ledger}: cannot write its lock file {path}: "
                              f"{os_reason(exc)}") from exc
        return cls(fd)

    def release(self) -> None:
        """Give the ledger up (emptying the file first, so it names no one)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # The lock goes with the close all the same; the name in the file is only a hint.
        with suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _open(ledger: Path, path: Path) -> int:
    """The lock file, opened for writing; created 0600 if missing (O_CLOEXEC: the
    daemon's helper processes must not hold the lock after it ends)."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return os.open(path, flags)
        except OSError as exc:
            raise LedgerError(f"ledger {ledger}: cannot open its lock file {path}: "
                              f"{os_reason(exc)}") from exc
    except OSError as exc:
        raise LedgerError(f"ledger {ledger}: cannot create its lock file {path}: "
                          f"{os_reason(exc)}") from exc
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed more than group/other bits
    except OSError as exc:
        os.close(fd)
        raise LedgerError(f"ledger {ledger}: cannot set the mode of its lock file {path}: "
                          f"{os_reason(exc)}") from exc
    return fd


def _owner(fd: int) -> str:
    """'pid 1234 on host web1', as the owner wrote it ('another process' until it has)."""
    try:
        text = os.pread(fd, _OWNER_CHARS, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    pid, _, host = one_line(text).partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"pid {pid} on host {host}" if host else f"pid {pid}"

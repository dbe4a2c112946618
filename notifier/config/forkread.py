"""Part of a large schedule read in a forked process, on the machine's other core.

Reading, validating and resolving 100,000 deadline tables is pure Python
under one GIL: about 2.7 s of a daemon's start. `config` hands part of the
tables to a child made by `os.fork()` (which has the file's text, the
defaults and every import already), reads the rest itself meanwhile, and
takes the child's deadlines back in a compact form (`encode`/`Decoder`):
flat tuples through `marshal` and a memfd, decoded in about 5 microseconds a
deadline, where unpickling the same deadlines took 15. `in_two` does the
same for other pure work on a list (`plan` renders a long plan in two
processes, each taking the next part as it finishes one).

Only a process with no other thread forks (`available`): `check`, `plan` and
the daemon's first load, never a reload. Anything that goes wrong in the
child (a crash, a signal, an exception) costs only time: `Forked.result`
returns None and the caller reads those tables itself. The child never
logs, prints, or runs exit handlers (`os._exit`).
"""

from __future__ import annotations

import marshal
import mmap
import os
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, time, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from notifier.schedule import timing
from notifier.schedule.model import Closure, Deadline, Offset, Stage

_EPOCH, _MICROSECOND = timing.EPOCH, timing.MICROSECOND
_T = TypeVar("_T")
_R = TypeVar("_R")
_SHARED = 0
"""Stands for "the same object as the defaults'" in an encoded deadline."""


def available() -> bool:
    """Whether forking is safe and worth it here: one thread, and a second core to run on."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores >= 2


class Forked:
    """`work()` run in a forked child; its result (marshal-able) comes back by `result`."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._fd = _scratch_fd()
        try:
            self._pid = os.fork()
        except OSError:
            os.close(self._fd)
            raise
        if self._pid == 0:  # pragma: no cover - the child; its result is what the tests check
            code = 1
            try:
                data = marshal.dumps(work())
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
                code = 0
            finally:
                os._exit(code)

    def cancel(self) -> None:
        """Stop the child (its result is not wanted) and reap it."""
        try:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        except OSError:
            pass
        finally:
            os.close(self._fd)

    def result(self) -> Any | None:
        """Wait for the child; its result, or None if it did not finish cleanly."""
        try:
            _, status = os.waitpid(self._pid, 0)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                return None
            size = os.lseek(self._fd, 0, os.SEEK_END)
            if size == 0:
                return None
            # Mapped, not read: the result is in memory once, as marshal builds it.
            with mmap.mmap(self._fd, size, prot=mmap.PROT_READ) as view:
                return marshal.loads(view)  # noqa: S302 - our own child's output
        except (OSError, ValueError, EOFError, TypeError):
            return None
        finally:
            os.close(self._fd)


def in_two(work: Callable[[Sequence[_T]], list[_R]], items: Sequence[_T], *,
           least: int, runs: int = 64) -> list[_R]:
    """`work(items)`, shared with a forked child where that pays.

    For pure work whose results are plain data that `marshal` carries
    (dicts, lists, tuples, str, int, float, None; no class instances), and
    that can be done part by part: the result is the parts' results one
    after another (`plan` sorts them again after). The items are cut into
    `runs` runs, and the two processes take them from a pipe, one at a time,
    until none is left: whichever runs faster does more. Halves fixed in
    advance left one process waiting for the other for up to 0.7 s of a
    4 s plan (a child's first writes copy the pages it shares with this
    process, and a VM's two cores are seldom equal). If the child fails,
    this process does the runs it took too.
    """
    if len(items) < least or not available():
        return work(items)
    count = min(runs, 255, len(items))
    cuts = [len(items) * k // count for k in range(count + 1)]
    try:
        queue, feed = os.pipe()
    except OSError:
        return work(items)
    try:
        os.write(feed, bytes(range(count)))  # one byte a run: far less than a pipe holds
    finally:
        os.close(feed)

    def take() -> dict[int, list[_R]]:
        done: dict[int, list[_R]] = {}
        while claimed := os.read(queue, 1):  # no two readers ever get the same byte
            k = claimed[0]
            done[k] = work(items[cuts[k]:cuts[k + 1]])
        return done

    try:
        try:
            helper = Forked(take)
        except OSError:
            return work(items)
        try:
            mine = take()
        except BaseException:
            helper.cancel()
            raise
    finally:
        os.close(queue)
    theirs = helper.result()
    if not isinstance(theirs, dict):
        theirs = {}
    out: list[_R] = []
    for k in range(count):
        part = mine.get(k)
        if part is None:
            part = theirs.get(k)
            if not isinstance(part, list):
                part = work(items[cuts[k]:cuts[k + 1]])
        out.extend(part)
    return out


def _scratch_fd() -> int:
    """An anonymous file for the child's result (memory, not disk, where Linux allows)."""
    if hasattr(os, "memfd_create"):
        try:
            return os.memfd_create("notifier-read", os.MFD_CLOEXEC)
        except OSError:
            pass
    import tempfile  # noqa: PLC0415 - rarely needed, and not cheap to import

    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


# --------------------------------------------------------------------------- the compact form


class Shared(NamedTuple):
    """What deadlines share with the defaults, by identity (kept shared when decoded)."""

    reminders: tuple[Offset, ...]
    channels: tuple[str, ...]
    overdue: Offset | None
    remind_at: time


def _offset(o: Offset) -> tuple[str, int, int]:
    return (o.text, o.days, o.exact // _MICROSECOND)


def encode(d: Deadline, shared: Shared) -> tuple[Any, ...]:
    """`d` as a tuple of str, int and None (what `marshal` carries); see `decode`."""
    if d.remind_at != shared.remind_at:
        raise ValueError("a deadline's remind_at is the default's")
    for t in (*(s.due for s in d.stages), *(s.announced for s in d.stages if s.announced),
              *((d.closure.at,) if d.closure is not None else ())):
        if t.tzinfo is not UTC:
            raise ValueError("instants are in UTC")
    stages = tuple(
        (timing.epoch_us(s.due), None if s.day is None else s.day.toordinal(),
         None if s.announced is None else timing.epoch_us(s.announced), s.reason, s.source)
        for s in d.stages
    )
    reminders = _SHARED if d.reminders is shared.reminders \
        else tuple(_offset(o) for o in d.reminders)
    channels = _SHARED if d.channels is shared.channels else d.channels
    overdue = _SHARED if d.overdue_every is shared.overdue \
        else None if d.overdue_every is None else _offset(d.overdue_every)
    closure = None if d.closure is None \
        else (d.closure.kind, timing.epoch_us(d.closure.at), d.closure.note)
    key = d.zone.key
    if key is None:
        raise ValueError("a zone without a key")
    return (d.id, d.title, key, stages, reminders, channels, overdue, d.overdue_limit,
            closure, d.notes, d.url, d.tags)


class Decoder:
    """Deadlines back from `encode`'s tuples; equal offsets come back as one object."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._offsets: dict[tuple[Any, ...], tuple[Offset, ...]] = {}
        self._zones: dict[str, ZoneInfo] = {}

    def _reminders(self, value: Any) -> tuple[Offset, ...]:
        if value == _SHARED:
            return self.shared.reminders
        found = self._offsets.get(value)
        if found is None:
            found = self._offsets[value] = tuple(
                Offset(text, days, timedelta(microseconds=exact)) for text, days, exact in value)
        return found

    def _stage(self, due: int, day: int | None, announced: int | None, reason: str | None,
               source: str | None) -> Stage:
        return Stage(_EPOCH + timedelta(microseconds=due),
                     None if day is None else date.fromordinal(day),
                     None if announced is None else _EPOCH + timedelta(microseconds=announced),
                     reason, source)

    def decode(self, t: tuple[Any, ...]) -> Deadline:
        (ident, title, key, stages, reminders, channels, overdue, limit, closure, notes, url,
         tags) = t
        shared = self.shared
        zone = self._zones.get(key)
        if zone is None:
            zone = self._zones[key] = ZoneInfo(key)
        return Deadline(
            ident, title, zone,
            (self._stage(*stages[0]),) if len(stages) == 1
            else tuple([self._stage(*s) for s in stages]),
            self._reminders(reminders),
            shared.channels if channels == _SHARED else channels,
            shared.remind_at,
            shared.overdue if overdue == _SHARED
            else None if overdue is None else self._reminders((overdue,))[0],
            limit,
            None if closure is None
            else Closure(closure[0], timing.from_epoch_us(closure[1]), closure[2]),
            notes, url, tags,
        )

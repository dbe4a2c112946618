"""Reloading: what a config needs to run, a new file read safely, what moved,
and when to reload (requests folded, the file watched for saves)."""

from __future__ import annotations

import hashlib
import logging
import queue
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from notifier.config import loader as config
from notifier.config import tomlread
from notifier.delivery.appriseset import load_plugin_paths, register_builtin_schemas
from notifier.delivery.channels import ChannelSender, StandIn
from notifier.delivery.ledger import Ledger
from notifier.delivery.sendpool import SendPool
from notifier.messages.render import Renderer
from notifier.schedule.model import Channel, Deadline, Schedule
from notifier.text import listed
from notifier.wording import Fmt

log = logging.getLogger("notifier.daemon")

RELOAD_GAP = 0.5
"""Seconds between the starts of two reloads; requests in between wait, folded into one."""


@dataclass
class Loaded:
    cfg: config.Config
    schedule: Schedule
    renderer: Renderer
    senders: dict[str, ChannelSender]


def prepare(cfg: config.Config, ledger: Ledger, now: datetime, *,
            sendpool: SendPool | None = None, previous: Loaded | None = None,
            stand_in: StandIn | None = None) -> Loaded:
    """Everything a config needs to run; with `previous` (a reload), deadlines
    taken unchanged from it keep their first-seen times (final once recorded);
    with `stand_in` (a replay's preview), URLs that are not built-in are not sent to.

    The schedule comes loaded with the ledger's first-seen times (one loaded
    without them, as a replay's and tests' are, is loaded again with them);
    what its load saw first is recorded here, at the instant the load used.
    """
    if cfg.first_seen_at is None:
        cfg = config.load(cfg.path, for_reload=True, first_seen=first_seen_in(ledger, now))
    seen_at = cfg.first_seen_at
    assert seen_at is not None  # loaded just above if it was not
    fresh: Iterable[Deadline] = cfg.schedule.deadlines
    if previous is not None:
        # Deadlines a reload took from the running config were recorded then.
        kept = {id(d) for d in previous.schedule.deadlines}
        fresh = [d for d in fresh if id(d) not in kept]
    ids = config.first_seen_ids(fresh)
    # SQLite does most of the recording with the GIL released (0.2 s of 0.3 s
    # at 100,000 deadlines): meanwhile apprise finds its plugins (0.3 s, the
    # first time) and the templates compile.
    with ThreadPoolExecutor(1, thread_name_prefix="first-seen") as pool:
        recording = pool.submit(ledger.record_first_seen, ids, seen_at)
        register_builtin_schemas()
        load_plugin_paths(list(cfg.plugin_paths))
        renderer = Renderer(cfg.templates)
        recording.result()
    schedule = cfg.schedule
    timeout = cfg.send_timeout.total_seconds()
    senders = {name: ChannelSender(ch, timeout=timeout, offload=sendpool, stand_in=stand_in)
               for name, ch in cfg.schedule.channels.items()}
    before = None if previous is None else previous.schedule.channels
    for line in channel_lines(before, schedule.channels, senders):
        log.info("%s", line)
    return Loaded(cfg, schedule, renderer, senders)


def channel_lines(before: Mapping[str, Channel] | None, after: Mapping[str, Channel],
                  senders: Mapping[str, ChannelSender]) -> list[str]:
    """The log's lines about channels: every channel at start (`before` None), its
    URLs in privacy form; at a reload only those added, changed or removed."""
    def said(name: str) -> str:
        kinds = after[name].kinds
        limit = "" if kinds is None else f" (kinds: {', '.join(sorted(kinds))})"
        return ", ".join(senders[name].description()) + limit

    if before is None:
        return [f"channel {name}: {said(name)}" for name in after]
    lines = []
    for name, channel in after.items():
        if name not in before:
            lines.append(f"channel {name} added: {said(name)}")
        elif before[name] != channel:
            lines.append(f"channel {name} changed: {said(name)}")
    lines.extend(f"channel {name} removed" for name in before if name not in after)
    return lines


def first_seen_in(ledger: Ledger, now: datetime) -> config.FirstSeenFrom:
    """The ledger's first-seen times for a load; what it does not know is seen `now`."""
    return lambda _: config.FirstSeen(ledger.first_seen(), now)


def reload_line(old: Schedule, new: Schedule, now: datetime, *, added: int,
                removed: int) -> str:
    """The one log line that says what a reload changed: the notifications planned
    (`added`, `removed`), the dues moved, the deadlines added and removed, by id
    (at most `LISTED` of each named, so a huge edit still gives a short line):
    `reloaded: +3 / -2 notifications, kalbajar: due moved 15 Nov -> 25 Nov;
    deadlines added: lachin; removed: aghdam`."""
    line = f"reloaded: +{added} / -{removed} notifications"
    moves = describe_moves(old, new, now)
    if moves:
        line += f", {listed(moves)}"
    old_ids = {d.id for d in old.deadlines}
    new_ids = {d.id for d in new.deadlines}
    changes = []
    if gained := [d.id for d in new.deadlines if d.id not in old_ids]:
        changes.append(f"added: {listed(gained)}")
    if lost := [d.id for d in old.deadlines if d.id not in new_ids]:
        changes.append(f"removed: {listed(lost)}")
    if changes:
        line += "; deadlines " + "; ".join(changes)
    return line


def describe_moves(old: Schedule, new: Schedule, now: datetime) -> list[str]:
    """`kalbajar: due moved 15 Nov -> 25 Nov` for every deadline whose effective due changed."""
    before = {d.id: d for d in old.deadlines}
    out = []
    for d in new.deadlines:
        prev = before.get(d.id)
        if prev is None:
            continue
        a = prev.stages[prev.stage_at(now)]
        b = d.stages[d.stage_at(now)]
        if a.due != b.due:
            # As the "rescheduled" message writes a move ("from 15 Nov to 25 Nov"): a date
            # due as its day, a time to the second where it has seconds.
            fmt = Fmt(d.zone, now)
            if fmt.is_date(a) == fmt.is_date(b):
                texts = fmt.stage_short(a), fmt.stage_short(b)
            else:
                # A day against a time ("5 Jan -> 6 Jan 00:00:30") would read as a day's
                # move for 30 s: both as the instants they are ("6 Jan 00:00 -> ...").
                texts = fmt.moment_short(a.due), fmt.moment_short(b.due)
            out.append(f"{d.id}: due moved {texts[0]} -> {texts[1]}")
    return out


class ReloadRequests:
    """Reload requests (SIGHUP, a save), folded: at most one waits at a time.

    A storm of SIGHUPs (or saves) then costs one reload per RELOAD_GAP,
    not one per signal, and deliveries are not starved of the CPU and the
    ledger. A request made while a reload runs queues another, for the
    newer file, so the last version saved is always the one read.
    """

    def __init__(self, commands: queue.SimpleQueue[str]) -> None:
        self._commands = commands
        self._queued = False
        self._last_start = -RELOAD_GAP
        self.deferred_until: float | None = None
        """The monotonic time a reload put off by RELOAD_GAP is due (None: none waits)."""

    def request(self) -> None:
        """Queue a reload unless one is already waiting (safe in a signal handler)."""
        if not self._queued:
            self._queued = True
            self._commands.put("reload")

    def may_start(self) -> bool:
        """Whether a queued reload may start now, or once RELOAD_GAP has passed
        since the last one began (then it stays queued, deferred)."""
        wait = self._last_start + RELOAD_GAP - time.monotonic()
        if wait > 0:
            self.deferred_until = time.monotonic() + wait
            return False
        self.deferred_until = None
        self._last_start = time.monotonic()
        return True

    def started(self) -> None:
        """The queued reload runs: a request from now on queues another."""
        self._queued = False


def fingerprint(path: Path) -> bytes | None:
    """What the file watch compares: a digest of the file's bytes (None if unreadable).

    Not its size and modification time: two saves of the same size within
    one tick of the file system's clock look the same by those.
    """
    try:
        with path.open("rb") as f:
            data = f.read(tomlread.MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


class FileWatch:
    """Notices a save of the config file that no reload has read yet.

    The daemon's loop looks every `interval` seconds (monotonic, at `due`). A
    new version is taken once it has stopped changing: seen, it is looked at
    again `settle` seconds later, so a half-written save is not read.
    """

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self.settle = min(0.2, interval / 2)
        self.due = time.monotonic() + interval
        """When to look next (time.monotonic())."""
        self._tried = fingerprint(path)
        self._candidate: bytes | None = None
        """A new version seen once, taken if it is still there at the next look."""
        self._hashed_stat: tuple[int, ...] | None = None

    def read_now(self) -> None:
        """A reload reads the file as it is now."""
        self._tried = fingerprint(self.path)

    def look(self) -> bool:
        """Whether the file holds a version not tried yet that has stopped changing;
        once true for a version, it is tried (one reload for each version of the file)."""
        try:
            if self._candidate is None and self.unchanged_since_hashed():
                return False
            current = fingerprint(self.path)
            if current is None or current == self._tried:
                self._candidate = None
                return False
            if current != self._candidate:
                self._candidate = current
                return False
            self._candidate = None
            self._tried = current
            return True
        finally:
            self.due = time.monotonic() + (self.interval if self._candidate is None
                                           else self.settle)

    def unchanged_since_hashed(self) -> bool:
        """Whether the file surely has not changed since the watch last hashed it.

        Hashing a 119 MB schedule every second would be a tenth of a core. A
        save changes size, mtime or ctime, except one within the same tick of
        the file system's clock as the previous write: so a file whose stat
        is unchanged and whose mtime is over 2 s old is not read again.
        """
        try:
            st = self.path.stat()
        except OSError:
            self._hashed_stat = None
            return False
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        settled = time.time() - st.st_mtime > 2.0
        if key == self._hashed_stat and settled:
            return True
        self._hashed_stat = key if settled else None
        return False

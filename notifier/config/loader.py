"""Load a config file into a resolved `Config`, or raise `ConfigError` with located problems.

Reading the file (tomlread.py), validating it (settings.py) and resolving
times (timing.py) happen here; nothing is applied anywhere until the whole
file is good.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import itertools
import marshal
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from notifier.config import forkread, tomlpos, tomlsplit
from notifier.config.schema import DeadlineSettings, Settings, load_settings
from notifier.config.tomlread import fast_read, parse_toml, read_text
from notifier.errors import ConfigError, Problem
from notifier.schedule import timing
from notifier.schedule.model import (
    Channel,
    Closure,
    Deadline,
    Digest,
    Offset,
    Schedule,
    Stage,
    fill_announced,
)

BUILTIN_SCHEMES = ("console://", "jsonl://")


@dataclass(frozen=True)
class TemplateText:
    title: str | None
    body: str | None


@dataclass(frozen=True)
class Config:
    path: Path
    schedule: Schedule
    state: str | None
    plugin_paths: tuple[str, ...]
    log_level: str
    templates: dict[str, TemplateText]
    give_up_after: timedelta
    catchup: timedelta
    send_timeout: timedelta
    warnings: tuple[Problem, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    tables: Tables | None = field(default=None, repr=False, compare=False)
    """For a reload: this load's deadline tables by their text (None if read whole)."""


def machine_zone() -> ZoneInfo:
    try:
        from tzlocal import get_localzone_name  # noqa: PLC0415 - only when no zone is configured

        name = get_localzone_name()
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except Exception:  # noqa: BLE001 - any failure to read the machine zone means UTC
        return ZoneInfo("UTC")


def default_config_path(env: Mapping[str, str]) -> Path:
    if env.get("NOTIFIER_CONFIG"):
        return Path(env["NOTIFIER_CONFIG"])
    if env.get("CONFIGURATION_DIRECTORY"):
        return Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
    return Path("/etc/notifier/config.toml")


class _Collector:
    """Gathers problems and turns dotted paths into file positions."""

    def __init__(self, file: str, text: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self._text = text
        self._positions: dict[tomlpos.Path, tuple[int, int]] | None = None
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def _where(self, path: tomlpos.Path) -> tuple[str, int, int]:
        if self._positions is None:
            self._positions = tomlpos.index_positions(self._text)
        found = tomlpos.locate(self._positions, path)
        if found is None:
            env_name = "NOTIFIER_" + "__".join(str(p).upper() for p in path if isinstance(p, str))
            for name in self.env:
                if env_name.startswith(name) and name.startswith("NOTIFIER_"):
                    return (f"${name}", 1, 1)
            return (self.file, 1, 1)
        return (self.file, *found)

    def add(self, path: tomlpos.Path, message: str, *, warning: bool = False) -> None:
        file, line, col = self._where(path)
        dotted = ".".join(str(p) for p in path)
        problem = Problem(file, line, col, dotted, message)
        (self.warnings if warning else self.problems).append(problem)


def load(
    path: Path, *, check_urls: bool = True, in_parts: bool = True,
    previous: Config | None = None, for_reload: bool = False,
) -> Config:
    """Read, validate and resolve `path`. Raises ConfigError; never half-applies.

    `for_reload` (the daemon): keep what a later `load(previous=...)` needs to
    take unchanged deadline tables over (a digest of each table: 0.2 s at
    100,000 deadlines, which `check` and `plan` need not pay).

    With `previous` (a reload), deadline tables whose text and inherited
    defaults are unchanged are taken from it instead of being read again.
    `in_parts=False` reads a large schedule whole (the same result, at twice
    the peak memory; for tests of `_load_in_parts`).

    NOTIFIER_* variables and $CREDENTIALS_DIRECTORY come from the process
    environment, as pydantic-settings reads them.
    """
    env = dict(os.environ)
    # A large schedule allocates millions of objects and no cycles: the cyclic
    # collector would only re-scan them, over and over (half the validation
    # time at 100,000 deadlines). It is back on, as it was, when this returns.
    collecting = gc.isenabled()
    gc.disable()
    try:
        text = read_text(path)
        if in_parts:
            fast = _load_in_parts(path, text, env, check_urls=check_urls, reuse=previous,
                                  remember=for_reload or previous is not None)
            if fast is not None:
                return fast
        data = parse_toml(str(path), text)
        # Taken now: `_load` frees the raw data once it is validated.
        secrets = raw_secrets(data, env)
        col = _Collector(str(path), text, env)
        try:
            return _load(path, data, col, env, check_urls=check_urls)
        except ConfigError as e:
            raise ConfigError([p.scrubbed(secrets) for p in e.problems]) from None
    finally:
        if collecting:
            gc.enable()


BATCH = 2000
"""Deadlines read, validated and resolved at a time by `_load_in_parts`."""
_DEADLINE_LIST: TypeAdapter[list[DeadlineSettings]] | None = None


@dataclass(frozen=True, slots=True)
class Tables:
    """A load's deadline tables by their text, for a reload to take unchanged ones from."""

    head: str
    base: _Inherited
    digests: bytes
    """`table_key` of every table's text, in file order, end to end: 1.6 MB at
    100,000 deadlines, where a dictionary of them took 10 MB of the daemon
    (and raised the peak of its start by 5)."""
    unclean: frozenset[int]
    """Tables that resolved with a warning: a reload reads them again (the
    warning is located)."""

    def by_text(self) -> dict[bytes, int]:
        """`table_key` of a table's text -> the index of its deadline in the config's
        schedule, for the tables without a warning (made by the reload that asks)."""
        size = DIGEST_SIZE
        return {self.digests[i * size:(i + 1) * size]: i
                for i in range(len(self.digests) // size) if i not in self.unclean}


DIGEST_SIZE = 16


def table_key(table: str) -> bytes:
    """A table's text as a 16-byte digest: the texts of 100,000 tables kept for the
    next reload would be 16 MiB of the daemon's memory, their digests 5."""
    return hashlib.blake2b(table.encode(), digest_size=DIGEST_SIZE).digest()


def _load_in_parts(
    path: Path, text: str, env: Mapping[str, str], *, check_urls: bool,
    reuse: Config | None = None, remember: bool = False,
) -> Config | None:
    """`_load` a batch of deadlines at a time (see tomlsplit), or None to load it whole.

    Only a file without a single problem is loaded this way: at the first
    sign of one (or of an unusual shape) this gives up, and the whole-file
    path reads it again and reports every problem, located. Warnings are
    the same either way. A table is a pure function of its text and of what
    it inherits, so with `reuse` only new or changed tables are read.
    """
    parts = tomlsplit.split(text)
    if parts is None or not len(parts) or _deadlines_from_elsewhere(env):
        return None
    try:
        return _read_parts(parts, path, env, check_urls=check_urls, reuse=reuse,
                           remember=remember)
    except _WholeFile:
        return None


def _read_parts(
    parts: tomlsplit.Parts, path: Path, env: Mapping[str, str], *, check_urls: bool,
    reuse: Config | None, remember: bool,
) -> Config:
    text = parts.text
    col = _Collector(str(path), text, env)
    settings = _validated(fast_read(parts.head), env)
    if settings.deadlines:
        raise _WholeFile  # from the environment: the whole-file path merges them
    base = _resolve_inherited(settings, col, check_urls=check_urls)
    _no_problem(col)
    known: dict[bytes, int] = {}
    kept: tuple[Deadline, ...] = ()
    if reuse is not None and reuse.tables is not None and reuse.tables.head == parts.head \
            and reuse.tables.base == base:
        known, kept = reuse.tables.by_text(), reuse.schedule.deadlines
    # With tables to take over, every table is digested first to find them; else
    # each is digested as it is read (the slice is there), if the memo is kept.
    keys = [table_key(parts.table(k)) for k in range(len(parts))] if known else []
    digests = bytearray(DIGEST_SIZE * len(parts) if remember else 0)
    slots: list[Deadline | None] = [
        None if (j := known.get(k)) is None else kept[j] for k in keys] if known \
        else [None] * len(parts)
    todo = [i for i, d in enumerate(slots) if d is None]
    groups = [todo[first:first + BATCH] for first in range(0, len(todo), BATCH)]
    batch = _Batch(parts, base, col, slots, digests if remember and not known else None)
    theirs: list[list[int]] = []
    helper: forkread.Forked | None = None
    if len(groups) >= FORK_GROUPS and forkread.available():
        # The child takes 40 %: it reads a third slower (its first writes to pages it
        # shares with this process copy them), and this process decodes its share after.
        mine = (len(groups) * 3 + 4) // 5
        later = groups[mine:]
        try:
            helper = forkread.Forked(lambda: batch.read_encoded(later))
        except OSError:  # no fork here (a seccomp filter, no memory): one process reads all
            helper = None
        else:
            groups, theirs = groups[:mine], later
    try:
        for group in groups:
            batch.read(group)
    except BaseException:
        if helper is not None:
            helper.cancel()
        raise
    if helper is not None:
        batch.take(helper.result(), theirs)
    unclean = batch.unclean
    deadlines = [d for d in slots if d is not None]
    if _repeats(sorted(d.id for d in deadlines)):
        raise _WholeFile  # a duplicate id: reported, located, by the whole-file path
    config = _resolve_rest(settings, path, col, env, base, deadlines)
    _no_problem(col)
    _warn_if_exposed(path, settings, col)
    packed = b"".join(keys) if known else bytes(digests)
    return replace(config, warnings=tuple(col.warnings),
                   tables=Tables(parts.head, base, packed, frozenset(unclean))
                   if remember else None)


FORK_GROUPS = 8
"""A file of at least this many batches (16,000 deadlines) is read by two processes
(see `forkread`) where the machine has a second core."""


class _Batch:
    """Reads groups of deadline tables into `slots` (one process's share of a file)."""

    def __init__(self, parts: tomlsplit.Parts, base: _Inherited, col: _Collector,
                 slots: list[Deadline | None], digests: bytearray | None) -> None:
        self.parts = parts
        self.base = base
        self.col = col
        self.slots = slots
        self.digests = digests
        """Where each table's `table_key` goes, when the memo is kept."""
        self.unclean: set[int] = set()

    def read(self, group: list[int]) -> None:
        """Tables `group` (file indexes) read, validated and resolved into `slots`."""
        parts, col, digests = self.parts, self.col, self.digests
        tables = [parts.table(i) for i in group]
        if digests is not None:
            for i, table in zip(group, tables, strict=True):
                digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE] = table_key(table)
        chunk = "".join(_line_ended(table) for table in tables)
        del tables
        items = _validated_deadlines(fast_read(chunk))
        if len(items) != len(group):
            raise _WholeFile
        for i, item in zip(group, items, strict=True):
            warned = len(col.warnings)
            resolved = _resolve_deadline(item, i, self.base, col)
            if resolved is None:
                raise _WholeFile
            self.slots[i] = resolved
            if len(col.warnings) != warned:
                self.unclean.add(i)

    def _shared(self) -> forkread.Shared:
        base = self.base
        return forkread.Shared(base.default_reminders, base.default_channels,
                               base.default_overdue, base.remind_at)

    def read_encoded(self, groups: list[list[int]]) -> tuple[object, ...]:
        """In the forked child: `groups` read, and what `take` needs, marshal-able.

        Each group's deadlines go as one marshal blob, made as soon as the group
        is read (and the deadlines dropped): neither process ever holds the
        share's deadlines twice, or all of it as tuples (40 MB at 100,000).
        """
        warned = len(self.col.warnings)
        shared = self._shared()
        slots = self.slots
        blobs: list[bytes] = []
        try:
            for group in groups:
                self.read(group)
                encoded = []
                for i in group:
                    d = slots[i]
                    assert d is not None  # read just above
                    encoded.append(forkread.encode(d, shared))
                    slots[i] = None
                blobs.append(marshal.dumps(encoded))
        except _WholeFile:
            return ("whole",)
        indexes = [i for group in groups for i in group]
        digests = b"" if self.digests is None else b"".join(
            bytes(self.digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE]) for i in indexes)
        return ("read", blobs, sorted(self.unclean.intersection(indexes)),
                [tuple(p) for p in self.col.warnings[warned:]], digests)

    def take(self, result: object, groups: list[list[int]]) -> None:
        """The child's `read_encoded` result for `groups`; read them here if it has none."""
        if not isinstance(result, tuple) or not result:
            for group in groups:
                self.read(group)
            return
        if result[0] == "whole":
            raise _WholeFile
        try:
            _, blobs, unclean, warnings, digests = result
            decoder = forkread.Decoder(self._shared())
            for group, blob in zip(groups, blobs, strict=True):
                for i, item in zip(group, marshal.loads(blob), strict=True):  # noqa: S302 - ours
                    self.slots[i] = decoder.decode(item)
        except (ValueError, TypeError, EOFError):
            # Not what read_encoded sends (a bug, not the user's file): read them here.
            for group in groups:
                self.read(group)
            return
        self.unclean.update(unclean)
        self.col.warnings.extend(Problem(*p) for p in warnings)
        if self.digests is not None:
            indexes = [i for group in groups for i in group]
            for n, i in enumerate(indexes):
                self.digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE] = \
                    digests[n * DIGEST_SIZE:(n + 1) * DIGEST_SIZE]


def _repeats(ordered: list[str]) -> bool:
    """Whether a sorted list holds an item twice. Sorting 100,000 ids takes a list of
    0.8 MiB at the peak of a load; a set of them took 4 MiB."""
    return any(a == b for a, b in itertools.pairwise(ordered))


def _no_problem(col: _Collector) -> None:
    if col.problems:
        raise _WholeFile


def _line_ended(piece: str) -> str:
    return piece if piece.endswith("\n") else piece + "\n"


class _WholeFile(Exception):
    """A part did not read or validate cleanly: load the whole file instead."""


def _validated(head: dict[str, Any] | None, env: Mapping[str, str]) -> Settings:
    if head is None or "deadlines" in head or any(k.startswith("_") for k in head):
        raise _WholeFile
    creds = env.get("CREDENTIALS_DIRECTORY")
    try:
        return load_settings(head, Path(creds) if creds else None)
    except (ValidationError, RecursionError):
        raise _WholeFile from None


def _validated_deadlines(raw: dict[str, Any] | None) -> list[DeadlineSettings]:
    global _DEADLINE_LIST  # noqa: PLW0603 - built on first use: pydantic takes a while
    if raw is None or list(raw) != ["deadlines"]:
        raise _WholeFile
    if _DEADLINE_LIST is None:
        _DEADLINE_LIST = TypeAdapter(list[DeadlineSettings])
    try:
        return _DEADLINE_LIST.validate_python(raw["deadlines"])
    except (ValidationError, RecursionError):
        raise _WholeFile from None


def _deadlines_from_elsewhere(env: Mapping[str, str]) -> bool:
    """Whether deadlines might also come from NOTIFIER_* variables or credentials."""
    if any(k.upper().startswith("NOTIFIER_DEADLINES") for k in env):
        return True
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            return any(n.lower().startswith("deadlines") for n in os.listdir(creds))
        except OSError:
            return True
    return False


def _load(
    path: Path, data: dict[str, Any], col: _Collector, env: Mapping[str, str], *,
    check_urls: bool,
) -> Config:
    """Validate and resolve `data`; it is emptied once validated (its memory is freed)."""
    for key in data:
        if key.startswith("_"):
            col.add((key,), "unknown key")
    if col.problems:
        raise ConfigError(col.problems)
    creds = env.get("CREDENTIALS_DIRECTORY")
    try:
        settings = load_settings(data, Path(creds) if creds else None)
    except ValidationError as e:
        for err in e.errors(include_input=False, include_url=False):
            col.add(tuple(err["loc"]), _clean(err["msg"]))
        raise ConfigError(col.problems) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), 1, 1, "", "nested too deeply")]) from None
    # The validated settings hold everything from here on; the raw tables of a
    # large schedule are as big again.
    data.clear()
    config = _resolve(settings, path, col, env, check_urls=check_urls)
    if col.problems:
        raise ConfigError(col.problems)
    _warn_if_exposed(path, settings, col)
    return replace(config, warnings=tuple(col.warnings))


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    if msg == "Extra inputs are not permitted":
        return "unknown key"
    return msg


def _zone(
    name: str | None, fallback: ZoneInfo | Callable[[], ZoneInfo], col: _Collector,
    where: tomlpos.Path,
) -> ZoneInfo:
    """The zone `name`, else (with a problem if `name` is bad) the fallback, called if callable."""
    if name is not None:
        try:
            return _find_zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            col.add(where, "unknown time zone (use an IANA name such as Asia/Baku)")
    return fallback if isinstance(fallback, ZoneInfo) else fallback()


@lru_cache(maxsize=1024)
def _find_zone(name: str) -> ZoneInfo:
    """ZoneInfo(name) for a plausible IANA name (cached: a schedule repeats a few zones)."""
    if not name or name.strip() != name or ".." in name or name.startswith("/"):
        raise ValueError("not a zone name")
    return ZoneInfo(name)


def _offset(text: str, col: _Collector, where: tomlpos.Path) -> Offset | None:
    try:
        return timing.parse_offset(text)
    except timing.OffsetError as e:
        col.add(where, str(e))
        return None


def _hhmm(text: str | None, col: _Collector, where: tomlpos.Path) -> time | None:
    if text is None:
        return None
    try:
        return timing.parse_hhmm(text)
    except ValueError as e:
        col.add(where, str(e))
        return None


def _instant(
    value: datetime | date, zone: ZoneInfo, col: _Collector, where: tomlpos.Path
) -> datetime | None:
    """A non-due datetime (announced, completed, ...): dates mean the start of that day."""
    if isinstance(value, datetime):
        return _datetime(value, zone, col, where)
    return timing.day_start(value, zone)


def _datetime(
    value: datetime, zone: ZoneInfo, col: _Collector, where: tomlpos.Path
) -> datetime | None:
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    instant = timing.local_instant(value, zone)
    if isinstance(instant, timing.LocalTimeProblem):
        col.add(where, instant.message(value, zone))
        return None
    return instant


def _due(
    value: datetime | date, zone: ZoneInfo, due_time: time | None,
    col: _Collector, where: tomlpos.Path,
) -> tuple[datetime, date | None] | None:
    if isinstance(value, datetime):
        instant = _datetime(value, zone, col, where)
        return None if instant is None else (instant, None)
    return timing.date_due(value, zone, due_time), value


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What every deadline takes from [defaults] and [channels]."""

    zone: ZoneInfo
    remind_at: time
    due_time: time | None
    channels: dict[str, Channel]
    default_channels: tuple[str, ...]
    default_reminders: tuple[Offset, ...]
    default_overdue: Offset | None
    default_overdue_limit: int
    defaults_known: bool
    """Every default channel exists (else each deadline using them gets a problem)."""


def _resolve(
    s: Settings, path: Path, col: _Collector, env: Mapping[str, str], *, check_urls: bool
) -> Config:
    base = _resolve_inherited(s, col, check_urls=check_urls)
    deadlines = _resolve_deadlines(s.deadlines, base, col)
    return _resolve_rest(s, path, col, env, base, deadlines)


def _resolve_inherited(s: Settings, col: _Collector, *, check_urls: bool) -> _Inherited:
    zone = _zone(s.defaults.timezone, machine_zone, col, ("defaults", "timezone"))
    remind_at = _hhmm(s.defaults.remind_at, col, ("defaults", "remind_at")) or time(9)
    due_time = _hhmm(s.defaults.due_time, col, ("defaults", "due_time"))
    if check_urls and s.notifier.plugin_paths:
        # Third-party schemas must be known before their URLs are checked.
        from notifier.delivery.appriseset import load_plugin_paths  # noqa: PLC0415 - apprise is slow

        for i, path_text in enumerate(s.notifier.plugin_paths):
            for problem in load_plugin_paths([path_text]):
                col.add(("notifier", "plugin_paths", i), problem)
    channels = _channels(s, col, check_urls=check_urls)
    default_channels = tuple(s.defaults.channels) if s.defaults.channels is not None \
        else tuple(channels)
    _known_channels(default_channels, channels, col, ("defaults", "channels"))
    default_reminders = tuple(
        o for i, text in enumerate(s.defaults.reminders)
        if (o := _offset(text, col, ("defaults", "reminders", i))) is not None
    )
    default_overdue = None
    if s.defaults.overdue_every is not None:
        default_overdue = _offset(s.defaults.overdue_every, col, ("defaults", "overdue_every"))
    return _Inherited(zone, remind_at, due_time, channels, default_channels, default_reminders,
                      default_overdue, s.defaults.overdue_limit,
                      all(c in channels for c in default_channels))


def _resolve_deadlines(
    items: Iterable[DeadlineSettings], base: _Inherited, col: _Collector,
) -> list[Deadline]:
    """Resolve every deadline of the file, in order; duplicate ids are problems."""
    out: list[Deadline] = []
    seen: set[str] = set()
    for i, d in enumerate(items):
        if d.id in seen:
            col.add(("deadlines", i, "id"), "duplicate id")
        seen.add(d.id)
        resolved = _resolve_deadline(d, i, base, col)
        if resolved is not None:
            out.append(resolved)
    return out


def _resolve_deadline(
    d: DeadlineSettings, i: int, base: _Inherited, col: _Collector,
) -> Deadline | None:
    """Deadline `i` of the file, or None after adding its problems to `col`.

    This runs for every deadline of the file (100,000: a third of a large
    schedule's load time), so the common case takes no detour: paths for
    problems are only built when there is one.
    """
    at: tomlpos.Path = ("deadlines", i)
    before = len(col.problems)
    dzone = base.zone if d.timezone is None else _zone(d.timezone, base.zone, col,
                                                       (*at, "timezone"))
    reminders = base.default_reminders if d.reminders is None else tuple(
        o for j, text in enumerate(d.reminders)
        if (o := _offset(text, col, (*at, "reminders", j))) is not None
    )
    if d.channels is None and base.defaults_known:
        chans = base.default_channels
    else:
        chans = _deadline_channels(d, base.channels, base.default_channels, col, at)
    if not chans:
        col.add((*at, "channels"), "no channel to send to")
    overdue = base.default_overdue if d.overdue_every is None \
        else _offset(d.overdue_every, col, (*at, "overdue_every"))
    limit = base.default_overdue_limit if d.overdue_limit is None else d.overdue_limit
    announced = None if d.announced is None \
        else _instant(d.announced, dzone, col, (*at, "announced"))
    due = _due(d.due, dzone, base.due_time, col, (*at, "due"))
    stages: list[Stage] = [] if due is None else [Stage(due[0], due[1], announced)]
    if d.extensions:
        _extensions(d, dzone, base.due_time, col, at, announced, stages)
    closure = None if d.completed is None and d.cancelled is None \
        else _closure(d, dzone, col, at)
    if len(col.problems) > before or not stages:
        return None
    deadline = Deadline(
        d.id, d.title, dzone, tuple(stages), reminders, chans, base.remind_at, overdue, limit,
        closure, d.notes, d.url, tuple(d.tags) if d.tags else (),
    )
    remind_at = base.remind_at
    for st in stages:
        unsure = timing.unsure_offsets(reminders, dzone, st.day is not None, remind_at)
        # Mostly empty: only an offset a zone's UTC offsets could undo is computed.
        if unsure and not all(timing.lands_before(st.due, st.day, o, dzone, remind_at)
                              for o in unsure):
            _warn_unplanned(deadline, d, i, col)
            break
    return deadline


def _extensions(
    d: DeadlineSettings, dzone: ZoneInfo, due_time: time | None, col: _Collector,
    at: tomlpos.Path, announced: datetime | None, stages: list[Stage],
) -> None:
    last_announced = announced
    for k, ext in enumerate(d.extensions):
        where = (*at, "extensions", k)
        ext_due = _due(ext.due, dzone, due_time, col, (*where, "due"))
        ext_announced = None if ext.announced is None \
            else _instant(ext.announced, dzone, col, (*where, "announced"))
        if ext_announced is not None and last_announced is not None \
                and ext_announced < last_announced:
            col.add((*where, "announced"),
                    "extensions out of order: announced before the previous one")
        if ext_announced is not None:
            last_announced = ext_announced
        if ext_due is not None:
            stages.append(Stage(due=ext_due[0], day=ext_due[1], announced=ext_announced,
                                reason=ext.reason, source=ext.source))


def _closure(
    d: DeadlineSettings, dzone: ZoneInfo, col: _Collector, at: tomlpos.Path
) -> Closure | None:
    closure = None
    if d.completed is not None and d.cancelled is not None:
        col.add((*at, "cancelled"), "a deadline is either completed or cancelled, not both")
    for kind in ("completed", "cancelled"):
        value = getattr(d, kind)
        if value is not None:
            when = _instant(value, dzone, col, (*at, kind))
            if when is not None:
                closure = Closure(kind=kind, at=when, note=d.note)
    return closure


def _resolve_rest(
    s: Settings, path: Path, col: _Collector, env: Mapping[str, str], base: _Inherited,
    deadlines: list[Deadline],
) -> Config:
    zone, channels = base.zone, base.channels
    digest = None
    if s.digest is not None:
        digest = _digest(s, zone, channels, base.default_channels, col)
    durations = {
        name: _offset(getattr(s.delivery, name), col, ("delivery", name))
        for name in ("give_up_after", "catchup", "timeout")
    }
    schedule = Schedule(deadlines=tuple(deadlines), channels=channels, digest=digest, zone=zone)
    _check_templates(s, schedule, col)
    return Config(
        path=path,
        schedule=schedule,
        state=s.notifier.state,
        plugin_paths=tuple(s.notifier.plugin_paths),
        log_level=s.notifier.log_level,
        templates={k: TemplateText(v.title, v.body) for k, v in s.templates.items()},
        give_up_after=_as_delta(durations["give_up_after"], timedelta(hours=24)),
        catchup=_as_delta(durations["catchup"], timedelta(hours=24)),
        send_timeout=_as_delta(durations["timeout"], timedelta(seconds=60)),
        secrets=_secrets(s, env),
    )


def _as_delta(offset: Offset | None, fallback: timedelta) -> timedelta:
    return fallback if offset is None else timedelta(days=offset.days) + offset.exact


def _channels(s: Settings, col: _Collector, *, check_urls: bool) -> dict[str, Channel]:
    out: dict[str, Channel] = {}
    for name, ch in s.channels.items():
        if not tomlpos_id(name):
            col.add(("channels", name), "channel names use a-z, 0-9, - and _")
        urls = ch.all_urls
        if check_urls:
            for j, url in enumerate(urls):
                where: tomlpos.Path = ("channels", name, "url") if ch.url is not None \
                    else ("channels", name, "urls", j)
                message = _url_problem(url)
                if message:
                    col.add(where, message)
        kinds = frozenset(ch.kinds) if ch.kinds is not None else None
        out[name] = Channel(name=name, urls=tuple(urls), kinds=kinds)
    return out


def tomlpos_id(name: str) -> bool:
    from notifier.config.schema import _ID  # noqa: PLC0415 - shared pattern

    return bool(_ID.match(name))


def _url_problem(url: str) -> str | None:
    if url.startswith(BUILTIN_SCHEMES):
        # Checked here without apprise, so `check` stays fast.
        if url.startswith("console://") and url.rstrip("/") != "console:":
            return "console:// takes no host or path"
        if url.startswith("jsonl://") and (not url.startswith("jsonl:///") or url.endswith("/")):
            return "jsonl:// needs an absolute file path: jsonl:///var/lib/notifier/out.jsonl"
        return None
    from notifier.delivery.urls import validate_url  # noqa: PLC0415 - apprise is slow to import

    return validate_url(url)


def _known_channels(
    names: tuple[str, ...] | list[str], channels: dict[str, Channel],
    col: _Collector, where: tomlpos.Path,
) -> None:
    for j, name in enumerate(names):
        if name not in channels:
            col.add((*where, j), f"unknown channel {name!r} (not in [channels])")


def _deadline_channels(
    d: DeadlineSettings, channels: dict[str, Channel], default_channels: tuple[str, ...],
    col: _Collector, at: tomlpos.Path,
) -> tuple[str, ...]:
    if d.channels is not None:
        chans = tuple(d.channels)
    else:
        chans = default_channels
        if all(c in channels for c in chans):
            return chans  # checked once for [defaults]; nothing to repeat per deadline
    _known_channels(chans, channels, col, (*at, "channels"))
    return chans


@lru_cache(maxsize=1)
def _planning() -> ModuleType:
    """notifier.schedule.planning, imported on first use (it imports this module)."""
    return importlib.import_module("notifier.schedule.planning")


def _warn_unplanned(deadline: Deadline, d: DeadlineSettings, i: int, col: _Collector) -> None:
    bad = _planning().unplanned_reminders(deadline)
    if not bad:
        return
    texts = [o.text for o in deadline.reminders]
    for text, k in bad:
        where: tomlpos.Path = ("deadlines", i, "reminders", texts.index(text)) \
            if d.reminders is not None else ("deadlines", i, "due")
        which = "the due" if k == 0 else f"extension {k}'s due"
        col.add(where, f"reminder {text!r} lands at or after {which}; it is not planned",
                warning=True)


def _digest(
    s: Settings, zone: ZoneInfo, channels: dict[str, Channel],
    default_channels: tuple[str, ...], col: _Collector,
) -> Digest | None:
    assert s.digest is not None
    chans = tuple(s.digest.channels) if s.digest.channels is not None else default_channels
    _known_channels(chans, channels, col, ("digest", "channels"))
    expr = s.digest.schedule
    if len(expr.split()) != 5:
        col.add(("digest", "schedule"), "need a 5-field cron expression, e.g. '0 8 * * 1-5'")
        return None
    from notifier.schedule.planning import cron_trigger  # noqa: PLC0415 - apscheduler is slow to import

    try:
        cron_trigger(expr, zone)
    except (ValueError, KeyError, TypeError) as e:
        col.add(("digest", "schedule"), f"bad cron expression: {e}")
        return None
    return Digest(schedule=expr, zone=zone, channels=chans, always=s.digest.always)


def _check_templates(s: Settings, schedule: Schedule, col: _Collector) -> None:
    if not s.templates:
        return
    from notifier.messages.checks import template_problems  # noqa: PLC0415
    from notifier.messages.render import Renderer, TemplateProblem  # noqa: PLC0415
    from notifier.messages.templates import TemplateSource  # noqa: PLC0415

    overrides: dict[str, TemplateSource] = {
        k: TemplateSource(v.title, v.body) for k, v in s.templates.items()}
    try:
        renderer = Renderer(overrides)
    except TemplateProblem as e:
        col.add(("templates", e.kind, e.part), e.message)
        return
    from notifier.schedule.planning import plan  # noqa: PLC0415

    horizon_start = min((d.stages[0].due for d in schedule.deadlines),
                        default=datetime(2000, 1, 1, tzinfo=UTC)) - timedelta(days=400)
    samples = plan(schedule, horizon_start, horizon_start + timedelta(days=1200))
    for problem in template_problems(renderer, schedule, samples, now=horizon_start):
        col.add(("templates", problem.kind, problem.part), problem.message)


def _secrets(s: Settings, env: Mapping[str, str]) -> tuple[str, ...]:
    """Values that must never be printed: passwords and tokens in channel URLs."""
    urls = [url for ch in s.channels.values() for url in ch.all_urls]
    return url_secrets(urls, env)


def url_secrets(urls: list[str], env: Mapping[str, str]) -> tuple[str, ...]:
    from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

    found: set[str] = set()
    for url in urls:
        if url.startswith(BUILTIN_SCHEMES):
            continue
        try:
            parts = urlsplit(url)
            found.update(x for x in (parts.password, parts.username) if x)
            found.update(v for _, v in parse_qsl(parts.query))
            found.update(seg for seg in [parts.hostname or "", *parts.path.split("/")]
                         if len(seg) >= 16)
        except ValueError:
            found.add(url)
        # Whatever the URL's shape (even a broken one), long tokens may be keys.
        found.update(t for t in re.split(r"[/:@?&=#\[\]\s,;]+", url) if len(t) >= 12)
    found.update(v for k, v in env.items() if k.startswith("NOTIFIER_CHANNELS"))
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        with contextlib.suppress(OSError):
            for entry in Path(creds).iterdir():
                if entry.is_file() and entry.stat().st_size < 65536:
                    found.add(entry.read_text(errors="replace").strip())
    return tuple(sorted((x for x in found if len(x) >= 4), key=len, reverse=True))


def raw_secrets(data: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    """Secrets in a file that did not validate: every string under [channels]."""
    urls: list[str] = []
    channels = data.get("channels")

    def walk(value: object) -> None:
        if isinstance(value, str):
            urls.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(channels)
    return url_secrets(urls, env)


def _warn_if_exposed(path: Path, s: Settings, col: _Collector) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    holds_secrets = any(
        not url.startswith(BUILTIN_SCHEMES) for ch in s.channels.values() for url in ch.all_urls
    )
    if holds_secrets and mode & (stat.S_IRGRP | stat.S_IROTH):
        col.add(("channels",),
                "file is readable by group or others and holds channel URLs (secrets):"
                " chmod 600 it, or move the secrets to credentials", warning=True)


def first_seen_ids(deadlines: Iterable[Deadline]) -> list[str]:
    """Ids whose `announced` defaults to when a running daemon first saw them."""
    ids: list[str] = []
    for d in deadlines:
        ids.append(d.id)
        if len(d.stages) > 1:
            ids.extend(f"{d.id}/ext/{k}" for k in range(1, len(d.stages)))
    return ids


def fill_first_seen(deadlines: Iterable[Deadline], seen: Mapping[str, datetime]) -> None:
    """Fill every unset `announced` of `deadlines` from first-seen times, in place.

    Only for deadlines a load has just made, before anything else holds them
    (the daemon's `_prepare`, a command's `effective_schedule`): building a
    filled copy of 100,000 deadlines took about a second of the daemon's start,
    and held two schedules at once.
    """
    for d in deadlines:
        for k, stage in enumerate(d.stages):
            if stage.announced is None:
                at = seen.get(d.id if k == 0 else f"{d.id}/ext/{k}")
                if at is not None:
                    fill_announced(d, stage, at)

"""A large config read a batch of deadline tables at a time; a reload takes unchanged ones over.

Only a file without a single problem is read this way; at the first sign of
one, `load` reads the whole file again and reports every problem, located.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsError

from notifier.config import tomlsplit
from notifier.config.located import Collector, FileIndex
from notifier.config.overrides import NO_OVERRIDES, Overrides
from notifier.config.resolve import (
    NOT_SEEN,
    Config,
    FirstSeen,
    Inherited,
    resolve_deadline,
    resolve_inherited,
    resolve_rest,
)
from notifier.config.schema import DeadlineSettings, Settings, load_settings
from notifier.config.secrets import warn_if_exposed
from notifier.config.tomlread import fast_read
from notifier.errors import in_order
from notifier.schedule.model import Deadline

BATCH = 2000
"""Deadlines read, validated and resolved at a time by `load_in_parts`."""
_DEADLINE_LIST: TypeAdapter[list[DeadlineSettings]] | None = None


@dataclass(frozen=True, slots=True)
class Tables:
    """A load's deadline tables by their text, for a reload to take unchanged ones from."""

    head: str
    base: Inherited
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


def load_in_parts(
    path: Path, text: str | FileIndex, env: Mapping[str, str], *, check_urls: bool,
    overrides: Overrides = NO_OVERRIDES, reuse: Config | None = None, remember: bool = False,
    seen_for: Callable[[Settings], FirstSeen] = lambda _: NOT_SEEN,
) -> Config | None:
    """`_load` a batch of deadlines at a time (see tomlsplit), or None to load it whole.

    Only a file without a single problem is loaded this way: at the first
    sign of one (or of an unusual shape) this gives up, and the whole-file
    path reads it again and reports every problem, located. Warnings are
    the same either way. A table is a pure function of its text and of what
    it inherits, so with `reuse` only new or changed tables are read (a table
    taken over keeps its first-seen times: they never change once recorded).
    `seen_for` gives the first-seen times once the settings name the ledger.
    """
    index = text if isinstance(text, FileIndex) else FileIndex(text)
    parts = tomlsplit.split(index.text)
    if parts is None or not len(parts) or _deadlines_from_elsewhere(env):
        return None
    try:
        return _read_parts(parts, index, path, env, overrides, check_urls=check_urls, reuse=reuse,
                           remember=remember, seen_for=seen_for)
    except _WholeFile:
        return None


def _read_parts(
    parts: tomlsplit.Parts, index: FileIndex, path: Path, env: Mapping[str, str],
    overrides: Overrides, *,
    check_urls: bool, reuse: Config | None, remember: bool,
    seen_for: Callable[[Settings], FirstSeen],
) -> Config:
    col = Collector(str(path), index, overrides)
    head = fast_read(parts.head)
    settings = _validated(head, env)
    assert head is not None  # else _validated gives up
    col.warn_replaced(head)
    del head
    if settings.deadlines:
        raise _WholeFile  # from the environment: the whole-file path merges them
    base = resolve_inherited(settings, col, check_urls=check_urls)
    _no_problem(col)
    seen = seen_for(settings)
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
    batch = _Batch(parts, base, col, seen, slots, digests if remember and not known else None)
    for group in groups:
        batch.read(group)
    unclean = batch.unclean
    deadlines = [d for d in slots if d is not None]
    if _repeats(sorted(d.id for d in deadlines)):
        raise _WholeFile  # a duplicate id: reported, located, by the whole-file path
    config = resolve_rest(settings, path, col, env, base, deadlines, seen)
    _no_problem(col)
    warn_if_exposed(path, settings, col)
    packed = b"".join(keys) if known else bytes(digests)
    return replace(config, warnings=tuple(in_order(col.warnings)),
                   tables=Tables(parts.head, base, packed, frozenset(unclean))
                   if remember else None)


@dataclass
class _Batch:
    """Reads groups of deadline tables into `slots`."""

    parts: tomlsplit.Parts
    base: Inherited
    col: Collector
    seen: FirstSeen
    slots: list[Deadline | None]
    digests: bytearray | None
    """Where each table's `table_key` goes, when the memo is kept."""
    unclean: set[int] = field(default_factory=set)

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
            resolved = resolve_deadline(item, i, self.base, col, self.seen)
            if resolved is None:
                raise _WholeFile
            self.slots[i] = resolved
            if len(col.warnings) != warned:
                self.unclean.add(i)


def _repeats(ordered: list[str]) -> bool:
    """Whether a sorted list holds an item twice. Sorting 100,000 ids takes a list of
    0.8 MiB at the peak of a load; a set of them took 4 MiB."""
    return any(a == b for a, b in itertools.pairwise(ordered))


def _no_problem(col: Collector) -> None:
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
    except (ValidationError, RecursionError, SettingsError):
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


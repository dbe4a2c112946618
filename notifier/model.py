"""The resolved schedule: plain, immutable values that the pure core works on.

`config.py` turns the TOML file into these; nothing here knows about files,
clocks, channels or the ledger. All instants are timezone-aware and in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Kind = Literal[
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest", "summary"
]
"""The planner's kinds, plus "summary" (the catch-up summary the daemon sends after downtime)."""
KINDS: tuple[Kind, ...] = (  # the kinds a plan can hold
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest"
)


@dataclass(frozen=True)
class Offset:
    """A duration before a due: calendar days (wall clock, DST-aware) then exact time."""

    text: str
    days: int
    exact: timedelta

    @property
    def is_pure_days(self) -> bool:
        return self.exact == timedelta(0)


@dataclass(frozen=True)
class Stage:
    """One due of a deadline: the original (index 0) or an extension (index >= 1)."""

    due: datetime
    """The due instant (UTC)."""
    day: date | None
    """Set when the due was written as a date: "by the end of that day"."""
    announced: datetime | None
    """When this due became known; None means known from the start."""
    reason: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Closure:
    kind: Literal["completed", "cancelled"]
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class Deadline:
    id: str
    title: str
    zone: ZoneInfo
    stages: tuple[Stage, ...]
    """stages[0] is the original due (its `announced` is the deadline's)."""
    reminders: tuple[Offset, ...]
    channels: tuple[str, ...]
    remind_at: time
    overdue_every: Offset | None = None
    overdue_limit: int = 0
    closure: Closure | None = None
    notes: str | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def announced(self) -> datetime | None:
        return self.stages[0].announced

    def stage_at(self, t: datetime) -> int:
        """Index of the stage in effect at `t`: the last one announced at or before t."""
        current = 0
        for i, stage in enumerate(self.stages):
            if stage.announced is None or stage.announced <= t:
                current = i
        return current

    def closed_at(self, t: datetime) -> bool:
        return self.closure is not None and self.closure.at <= t


@dataclass(frozen=True)
class Digest:
    schedule: str
    """5-field cron, evaluated in `zone`."""
    zone: ZoneInfo
    channels: tuple[str, ...]
    always: bool = False


@dataclass(frozen=True)
class Channel:
    name: str
    urls: tuple[str, ...]
    kinds: frozenset[str] | None = None
    """None: every kind."""

    def accepts(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


@dataclass(frozen=True)
class Schedule:
    """Everything the planner needs, and nothing else."""

    deadlines: tuple[Deadline, ...]
    channels: dict[str, Channel] = field(default_factory=dict)
    digest: Digest | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


@dataclass(frozen=True)
class Notification:
    """One planned message. It goes to each of `channels`; `key` is stable."""

    at: datetime
    kind: Kind
    deadline: str | None
    due: datetime | None
    offset: str | None
    seq: int | None
    channels: tuple[str, ...]
    title: str
    key: str

"""The resolved schedule: plain, immutable values that the pure core works on.

`notifier.config` turns the TOML file into these; nothing here knows about files,
clocks, channels or the ledger. All instants are timezone-aware and in UTC.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an `__init__` that sets its slots directly.

    The generated one goes through `object.__setattr__` per field: a
    deadline took 3.5 microseconds to build, this one 1.2, and a large
    schedule builds hundreds of thousands of these values. Same signature,
    defaults and result, `__post_init__` included; still frozen afterwards.
    Fields with a default_factory are not supported.
    """
    names: dict[str, Any] = {}
    params: list[str] = []
    body: list[str] = []
    for f in fields(cls):  # type: ignore[arg-type]  # a dataclass, by the decorator order
        if f.default_factory is not MISSING:
            raise TypeError(f"quick_init: {cls.__name__}.{f.name} has a default_factory")
        names[f"set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is not MISSING:
            names[f"default_{f.name}"] = f.default
        if f.init:
            params.append(f.name if f.default is MISSING else f"{f.name}=default_{f.name}")
            body.append(f"    set_{f.name}(self, {f.name})")
        else:
            body.append(f"    set_{f.name}(self, default_{f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body)
    exec(source, names)  # noqa: S102 - code built above from field names only, as dataclasses does
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]  # replacing the generated one is the point
    return cls

Kind = Literal[
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest", "summary"
]
"""The planner's kinds, plus "summary" (the catch-up summary the daemon sends after downtime)."""
KINDS: tuple[Kind, ...] = (  # the kinds a plan can hold
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest"
)


@quick_init
@dataclass(frozen=True, slots=True)
class Offset:
    """A duration before a due: calendar days (wall clock, DST-aware) then exact time."""

    text: str
    days: int
    exact: timedelta

    @property
    def is_pure_days(self) -> bool:
        return not self.exact


@quick_init
@dataclass(frozen=True, slots=True)
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


@quick_init
@dataclass(frozen=True, slots=True)
class Closure:
    kind: Literal["completed", "cancelled"]
    at: datetime
    note: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
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
    span: tuple[datetime, datetime] = field(
        default=(datetime.min, datetime.max), init=False, repr=False, compare=False
    )
    """[first, last]: every notification of this deadline lies in it (see `_bounds`)."""

    def __post_init__(self) -> None:
        # Computed as the deadline is made: a value is never written after that.
        _SET_SPAN(self, _bounds(self))

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


_SET_SPAN = Deadline.__dict__["span"].__set__


_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_SLACK = timedelta(days=3)
"""More than any wall-clock effect: two UTC offsets of one zone differ by less than 48 h
(each is within +-24 h), and a date due's day reminders sit within a day of their wall time."""


def _bounds(d: Deadline) -> tuple[datetime, datetime]:
    """A cheap, safe bound on every instant the planner can yield for `d`.

    Reminders lie before their stage's due, by at most the longest offset plus
    `_SLACK` (calendar days move by wall-clock days; a date due's day reminders
    land on D-N at `remind_at`); a `rescheduled` is at an extension's
    `announced`; overdue messages follow the latest due by at most
    `overdue_limit` times `overdue_every`, plus `_SLACK`; a closure is at its
    instant. The planner skips a deadline whose span misses the interval asked for.
    """
    stages = d.stages
    if len(stages) == 1:
        first = last = stages[0].due
    else:
        first = min(s.due for s in stages)
        last = max(s.due for s in stages)
    try:
        if d.reminders:
            first = first - reach(d.reminders) - _SLACK
        if d.overdue_every is not None and d.overdue_limit > 0:
            step = timedelta(days=d.overdue_every.days) + d.overdue_every.exact
            last = last + step * d.overdue_limit + _SLACK
    except OverflowError:
        # Offsets run to ten years: near year 1 or 9999 the bound is the whole range.
        first, last = _FIRST, _LAST
    if len(stages) > 1 or d.closure is not None:
        extra = [s.announced for s in stages[1:] if s.announced is not None]
        if d.closure is not None:
            extra.append(d.closure.at)
        if extra:
            first, last = min(first, *extra), max(last, *extra)
    return (first, last)


_REACH: dict[int, tuple[tuple[Offset, ...], timedelta]] = {}


def reach(offsets: tuple[Offset, ...]) -> timedelta:
    """The longest of `offsets` (days taken as 24 h), remembered for the last few tuples.

    A schedule's deadlines mostly share one tuple (the default reminders), so
    this is a dictionary hit keyed by identity (the entry keeps the tuple alive,
    so the identity cannot be reused while it is remembered).
    """
    hit = _REACH.get(id(offsets))
    if hit is not None and hit[0] is offsets:
        return hit[1]
    value = max((timedelta(days=o.days) + o.exact for o in offsets), default=timedelta(0))
    if len(_REACH) >= 64:
        _REACH.clear()
    _REACH[id(offsets)] = (offsets, value)
    return value


@dataclass(frozen=True, slots=True)
class Digest:
    schedule: str
    """5-field cron, evaluated in `zone`."""
    zone: ZoneInfo
    channels: tuple[str, ...]
    always: bool = False


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    urls: tuple[str, ...]
    kinds: frozenset[str] | None = None
    """None: every kind."""

    def accepts(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


@dataclass(frozen=True, slots=True)
class Schedule:
    """Everything the planner needs, and nothing else."""

    deadlines: tuple[Deadline, ...]
    channels: dict[str, Channel] = field(default_factory=dict)
    digest: Digest | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    _by_id: dict[str, Deadline] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Built as the schedule is made: a value is never written after that.
        index = self._by_id
        for d in self.deadlines:
            index.setdefault(d.id, d)

    def deadline(self, deadline_id: str | None) -> Deadline | None:
        """The deadline with this id (the first one, should ids repeat), or None."""
        return None if deadline_id is None else self._by_id.get(deadline_id)


@quick_init
@dataclass(frozen=True, slots=True)
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
    stage: int | None
    """The index in its deadline's `stages` of the due it was planned for (the
    extension a `rescheduled` announces); None for a digest or a summary."""

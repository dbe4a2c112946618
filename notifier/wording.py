"""Dates, times, durations and counts as people read them: the one style of messages,
tables, `check` and the logs' reasons. Pure.

English whatever the locale ("Wed 25 Nov 17:00, Baku"); the year only when it
differs from a reference instant's; durations in calendar days of the zone, then
the exact rest ("2 days 4 h"); "1 deadline", "2 deadlines". Every stage uses it
(config's checks, schedule's reasons, messages, output), so it sits beside
`notifier.text` and depends on no stage: a due is anything `Dated`.
`notifier.messages.render` puts these texts in a message's context (its
docstring lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo


class Dated(Protocol):
    """A due as `Fmt` reads it (`notifier.schedule.model.Stage` is one)."""

    @property
    def due(self) -> datetime: ...

    @property
    def day(self) -> date | None:
        """The written date of a date due, else None."""


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def zone_name(zone: tzinfo) -> str:
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) and key else str(zone)


@lru_cache(maxsize=512)
def zone_city(zone: tzinfo) -> str:
    """"Baku" for Asia/Baku, "Buenos Aires" for America/Argentina/Buenos_Aires, "UTC".

    Cached: every message asks, and a schedule has a few zones.
    """
    name = zone_name(zone)
    if name.startswith("Etc/"):
        name = name[4:]
    return name.rsplit("/", 1)[-1].replace("_", " ")


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 deadline`, `2 deadlines`; `many` where an s is not the plural (`deliveries`)."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def days_text(days: int) -> str:
    return plural(days, "day")


def span_text(days: int, rest: timedelta, *, precise: bool = False) -> str:
    """`days` calendar days plus an exact remainder: "2 days 4 h", "3 h 20 min", "45 s".

    Coarse by default (the largest unit and the next if non-zero, seconds only
    under a minute); `precise` lists every non-zero unit.
    """
    seconds = int(rest.total_seconds())
    extra, seconds = divmod(seconds, 86400)
    days += extra
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    values = (days, hours, minutes, seconds)
    if precise:
        shown = [i for i in range(4) if values[i]]
    elif days or hours or minutes:
        first = 0 if days else 1 if hours else 2
        shown = [i for i in range(first, min(first + 2, 3)) if values[i]]
    else:
        shown = [3] if seconds else []
    # Only the units shown are written out: this runs for most messages of a plan.
    return " ".join(_UNITS[i](values[i]) for i in shown) if shown else "0 s"


_UNITS: tuple[Callable[[int], str], ...] = (
    days_text, lambda n: f"{n} h", lambda n: f"{n} min", lambda n: f"{n} s")


def move_verb(old_due: datetime, new_due: datetime) -> str:
    """How a message names a move of the due: "extended", "brought forward" or
    "rescheduled" (to the same instant)."""
    if new_due == old_due:
        return "rescheduled"
    return "extended" if new_due > old_due else "brought forward"


def duration_text(delta: timedelta, *, precise: bool = False) -> str:
    """An exact duration for people: "3 h", "1 day 2 h" (1 day = 24 h here)."""
    return span_text(0, abs(delta), precise=precise)


def _wall_add(local: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time `days` calendar days later, as an aware instant."""
    wall = local.replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=zone, fold=0)


_NO_TIME = timedelta(0)


def calendar_split(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[int, timedelta]:
    """Whole calendar days from start to end in `zone`, then the exact rest (start <= end)."""
    # Exact arithmetic below (most instants come in UTC already).
    start = start if start.tzinfo is UTC else start.astimezone(UTC)
    end = end if end.tzinfo is UTC else end.astimezone(UTC)
    local = start.astimezone(zone)
    end_local = end.astimezone(zone)
    days = (end_local.date() - local.date()).days
    if days > 0 and end_local.fold == 0 and end_local.time() == local.time():
        # The same wall time `days` days on, as most reminders are ("7d" before a
        # due): that is `end` itself, so there is nothing to search for below.
        return days, _NO_TIME
    while days > 0:
        later = _wall_add(local, days, zone)
        if later <= end:
            return days, end - later.astimezone(UTC)
        days -= 1
    return 0, end - start


class Fmt:
    """Dates and times in one zone, for people; the year only when it differs from
    `ref`'s. With no `ref` (a config check, which has no "now"), every date has its year."""

    def __init__(self, zone: ZoneInfo, ref: datetime | None) -> None:
        self.zone = zone
        self.ref_year = None if ref is None else ref.astimezone(zone).year
        self.city = zone_city(zone)
        self._locals: dict[datetime, datetime] = {}

    def local(self, t: datetime) -> datetime:
        # A message's few instants (due, at, sent_at) are asked for a dozen times.
        local = self._locals.get(t)
        if local is None:
            local = self._locals[t] = t.astimezone(self.zone)
        return local

    def day_short(self, d: date) -> str:
        text = f"{d.day} {_MONTHS[d.month - 1]}"
        return text if d.year == self.ref_year else f"{text} {d.year}"

    def day_long(self, d: date) -> str:
        return f"{_WEEKDAYS[d.weekday()]} {self.day_short(d)}"

    @staticmethod
    def clock(t: datetime) -> str:
        # Not f"{t:%H:%M}": strftime costs several times more, on every render.
        text = f"{t.hour:02d}:{t.minute:02d}"
        return text if t.second == 0 else f"{text}:{t.second:02d}"

    def moment(self, t: datetime) -> str:
        """"Tue 24 Nov 09:00" (no city: a table's title names its zone)."""
        local = self.local(t)
        return f"{self.day_long(local.date())} {self.clock(local)}"

    def instant(self, t: datetime) -> str:
        """"Tue 24 Nov 09:00, Baku"."""
        return f"{self.moment(t)}, {self.city}"

    def is_date(self, stage: Dated) -> bool:
        """A date due meaning "by the end of the day" (not one with a due_time)."""
        return stage.day is not None and self.local(stage.due).date() > stage.day

    def stage_long(self, stage: Dated) -> str:
        """"Wed 25 Nov" or "Wed 25 Nov 17:00" (no city)."""
        if stage.day is not None and self.is_date(stage):
            return self.day_long(stage.day)
        return self.moment(stage.due)

    def due_long(self, stage: Dated, *, city: bool = True) -> str:
        """"by the end of Wed 25 Nov, Baku" (a date due) or "Wed 25 Nov 17:00, Baku";
        without `city` where the zone goes without saying (a table in that zone)."""
        text = self.stage_text(stage) if city else self.stage_long(stage)
        return f"by the end of {text}" if self.is_date(stage) else text

    def stage_short(self, stage: Dated) -> str:
        """"25 Nov" or "25 Nov 17:00"."""
        if stage.day is not None and self.is_date(stage):
            return self.day_short(stage.day)
        return self.moment_short(stage.due)

    def moment_short(self, t: datetime) -> str:
        """"26 Nov 00:00": an instant without its weekday."""
        local = self.local(t)
        return f"{self.day_short(local.date())} {self.clock(local)}"

    def stage_text(self, stage: Dated) -> str:
        return f"{self.stage_long(stage)}, {self.city}"

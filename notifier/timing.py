"""Offsets, zones, date dues and DST rules. Pure: no clock is read here.

Rules (SPEC section 1):
- Days and weeks are calendar units: the same wall-clock time N days earlier in
  the deadline's zone, across DST. Hours and smaller are exact elapsed time. In
  a sum the calendar part is applied first, then the exact part.
- A date due D means "by the end of D": 00:00 local on D+1, or `due_time` on D.
- Wall-clock times that the computation lands on inside a DST gap are moved
  forward by the gap; inside a fold the first (earlier) reading is used. Times
  written by the user in the config are never resolved silently: see
  `check_local`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from notifier.model import Offset

_SIMPLE_PART = re.compile(r"(\d+)([wdhms])")
_SIMPLE = re.compile(r"^(?:\d+[wdhms])+$")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_MAX_DAYS = 3660
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


class OffsetError(ValueError):
    """An offset string that cannot be read."""


def parse_offset(text: str) -> Offset:
    """Read `7d`, `1d12h`, `90m`, `2w`, or ISO 8601 `P1D`, `PT2H`, `P1DT12H`."""
    s = text.strip()
    days = 0
    seconds = 0
    if _SIMPLE.match(s):
        for number, unit in _SIMPLE_PART.findall(s):
            n = int(number)
            if unit == "w":
                days += 7 * n
            elif unit == "d":
                days += n
            else:
                seconds += n * _UNIT_SECONDS[unit]
    elif (m := _ISO.match(s)) and s not in ("P", "PT") and not s.endswith("T"):
        parts = {k: int(v) for k, v in m.groupdict().items() if v is not None}
        days = 7 * parts.get("w", 0) + parts.get("d", 0)
        seconds = 3600 * parts.get("h", 0) + 60 * parts.get("m", 0) + parts.get("s", 0)
    else:
        raise OffsetError(
            "not an offset: use a sum of Nw, Nd, Nh, Nm, Ns (e.g. 1d12h) or ISO 8601 (P1D, PT2H)"
        )
    if days > _MAX_DAYS or seconds > _MAX_DAYS * 86400:
        raise OffsetError("offset is longer than ten years")
    return Offset(text=text, days=days, exact=timedelta(seconds=seconds))


def resolve_wall(wall: datetime, zone: ZoneInfo) -> datetime:
    """A computed naive wall-clock time in `zone` as a UTC instant.

    In a DST gap the time is moved forward by the gap (02:30 -> 03:30), the
    reading a person setting a clock would pick; in a fold the first reading.
    """
    # fold=0 is the first reading in a fold; in a gap it uses the offset from
    # before the transition, which lands "gap length later" in the new offset.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _exists(aware: datetime) -> bool:
    back = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


@dataclass(frozen=True)
class LocalTimeProblem:
    """A user-written local time that is missing or doubled in its zone."""

    kind: str  # "nonexistent" or "ambiguous"
    readings: tuple[datetime, datetime]

    def message(self, wall: datetime, zone: ZoneInfo) -> str:
        a, b = (r.isoformat() for r in self.readings)
        if self.kind == "nonexistent":
            return (
                f"{wall.isoformat()} does not exist in {zone.key} (clocks skip it);"
                f" write {a} or {b}"
            )
        return (
            f"{wall.isoformat()} is ambiguous in {zone.key} (clocks repeat it);"
            f" write {a} (first) or {b} (second)"
        )


def check_local(wall: datetime, zone: ZoneInfo) -> LocalTimeProblem | None:
    """Whether a naive wall time written by the user is nonexistent or ambiguous.

    The two readings are the same wall time with each explicit UTC offset, which
    is exactly what the user can write instead to say which one they mean.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    off1, off2 = first.utcoffset(), second.utcoffset()
    if off1 is None or off2 is None or off1 == off2:
        return None
    kind = "ambiguous" if _exists(first) else "nonexistent"
    readings = (wall.replace(tzinfo=timezone(off1)), wall.replace(tzinfo=timezone(off2)))
    return LocalTimeProblem(kind=kind, readings=readings)


def local_instant(wall: datetime, zone: ZoneInfo) -> datetime | LocalTimeProblem:
    """A user-written wall time as UTC, or its problem: `check_local` and `local_to_utc` in one."""
    first = wall.replace(tzinfo=zone, fold=0)
    off1 = first.utcoffset()
    off2 = wall.replace(tzinfo=zone, fold=1).utcoffset()
    if off1 is None or off2 is None or off1 == off2:
        return first.astimezone(UTC)
    problem = check_local(wall, zone)
    assert problem is not None  # the two readings differ
    return problem


def local_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A user-written wall time known to be valid (see `check_local`) as UTC."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


def date_due(day: date, zone: ZoneInfo, due_time: time | None) -> datetime:
    """The due instant of "by the end of `day`" (or `due_time` on it)."""
    if due_time is None:
        return resolve_wall(datetime.combine(day + timedelta(days=1), time(0)), zone)
    return resolve_wall(datetime.combine(day, due_time), zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone` (used for `announced = 2020-11-10`)."""
    return resolve_wall(datetime.combine(day, time(0)), zone)


def minus_days(instant: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time `days` calendar days earlier in `zone`."""
    if days == 0:
        return instant
    wall = instant.astimezone(zone).replace(tzinfo=None) - timedelta(days=days)
    return resolve_wall(wall, zone)


def plus_days(instant: datetime, days: int, zone: ZoneInfo) -> datetime:
    return minus_days(instant, -days, zone)


def reminder_instant(
    due: datetime, day: date | None, offset: Offset, zone: ZoneInfo, remind_at: time
) -> datetime:
    """When a reminder `offset` before a due fires.

    For a date due and a pure day/week offset the reminder lands on D-N at
    `remind_at`, so "0d" means "on the day".
    """
    if day is not None and offset.is_pure_days:
        return resolve_wall(datetime.combine(day - timedelta(days=offset.days), remind_at), zone)
    return minus_days(due, offset.days, zone) - offset.exact


_ZERO = timedelta(0)
_SURELY_BEFORE = timedelta(days=3)
"""An offset this long cannot land at or after its due, whatever the zone: two UTC
offsets of a zone differ by less than 48 h, and a date due's day reminder is less than
a day off its wall-clock distance (N days - 24 h - 48 h >= 0 for N >= 3)."""


def surely_before(offset: Offset) -> bool:
    """Whether every reminder `offset` lands before its due, in any zone (see `_SURELY_BEFORE`)."""
    return timedelta(days=offset.days) + offset.exact >= _SURELY_BEFORE


def lands_before(
    due: datetime, day: date | None, offset: Offset, zone: ZoneInfo, remind_at: time
) -> bool:
    """`reminder_instant(...) < due`, without the zone arithmetic where it cannot matter.

    The caller may have checked `surely_before(offset)` already (it is then False).
    """
    days, exact = offset.days, offset.exact
    if days >= 3:
        return True
    # `reminder_instant` inlined: this runs for every deadline of a schedule at load.
    if day is not None and not exact:
        wall = datetime.combine(day - timedelta(days=days), remind_at)
    elif days == 0:
        return exact > _ZERO  # reminder_instant is then `due - exact`
    else:
        wall = due.astimezone(zone).replace(tzinfo=None) - timedelta(days=days)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC) - exact < due


def after(instant: datetime, offset: Offset, zone: ZoneInfo, times: int = 1) -> datetime:
    """`times` x `offset` after `instant` (calendar part first, then exact)."""
    return plus_days(instant, offset.days * times, zone) + offset.exact * times


def parse_hhmm(text: str) -> time:
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise ValueError("not a time of day: use HH:MM, e.g. 09:00")
    return time(int(m.group(1)), int(m.group(2)))

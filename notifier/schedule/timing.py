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

import contextlib
import importlib.resources
import re
import struct
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from notifier.redact import from_input
from notifier.schedule.model import Offset

_SIMPLE_PART = re.compile(r"(\d+)([wdhms])")
_SIMPLE = re.compile(r"^(?:\d+[wdhms])+$")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_CALENDAR = re.compile(r"^P[^T]*\d[YM]|^[0-9wdhms]*\d(?:y|mo)", re.IGNORECASE)
"""An offset in months or years (`P1M`, `P1Y`, `1y`), refused: their length depends on
the date they are counted from."""
_MAX_DAYS = 3660
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def epoch_us(t: datetime) -> int:
    """An aware instant as whole microseconds since the Unix epoch (exact, plain int)."""
    return (t - EPOCH) // MICROSECOND


def from_epoch_us(us: int) -> datetime:
    """The UTC instant `epoch_us` gave `us` for."""
    return EPOCH + timedelta(microseconds=us)


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
    elif _CALENDAR.match(s):
        raise OffsetError(
            "months and years are refused as ambiguous (a month is 28 to 31 days): use days"
            " or weeks, e.g. 30d, 4w, P30D"
        )
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
    # `wall.replace(tzinfo=zone, fold=0).astimezone(UTC)`, at a fifth of the cost
    # (datetime.replace takes microseconds; a schedule resolves 100,000s of these):
    # ZoneInfo reads the offset from a naive time's fields and fold.
    if wall.fold:
        wall = wall.replace(fold=0)
    offset = zone.utcoffset(wall)
    if offset is None:  # not for a ZoneInfo; any other tzinfo takes the long way
        return wall.replace(tzinfo=zone).astimezone(UTC)
    return as_utc(wall - offset)


def as_utc(naive: datetime) -> datetime:
    """A naive UTC reading as an aware instant (`naive.replace(tzinfo=UTC)`, faster)."""
    return datetime.combine(naive.date(), naive.time(), UTC)


def wall_of(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of `instant` in `zone`, its fold kept."""
    local = instant.astimezone(zone)
    return datetime.combine(local.date(), local.time())


def _exists(aware: datetime) -> bool:
    back = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


@dataclass(frozen=True)
class LocalTimeProblem:
    """A user-written local time that is missing or doubled in its zone."""

    kind: str  # "nonexistent" or "ambiguous"
    readings: tuple[datetime, datetime]

    def message(self, wall: datetime, zone: ZoneInfo) -> str:
        # Each reading shows the value: marked, so that one from a variable is hidden.
        a, b = (from_input(r.isoformat()) for r in self.readings)
        if self.kind == "nonexistent":
            return (
                f"{from_input(wall.isoformat())} does not exist in {zone.key} (clocks skip it);"
                f" write {a} or {b}"
            )
        return (
            f"{from_input(wall.isoformat())} is ambiguous in {zone.key} (clocks repeat it);"
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
    first = wall if not wall.fold else wall.replace(fold=0)
    off1 = zone.utcoffset(first)
    off2 = zone.utcoffset(datetime.combine(first.date(), _second_reading(first.time())))
    if off1 is None or off2 is None or off1 == off2:
        return resolve_wall(first, zone)
    problem = check_local(wall, zone)
    assert problem is not None  # the two readings differ
    return problem


def _second_reading(t: time) -> time:
    """`t` with fold=1, remembered: a schedule repeats a few times of day."""
    second = _FOLD_1.get(t)
    if second is None:
        if len(_FOLD_1) >= 4096:
            _FOLD_1.clear()
        second = _FOLD_1[t] = t.replace(fold=1)
    return second


_FOLD_1: dict[time, time] = {}


def local_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A user-written wall time known to be valid (see `check_local`) as UTC."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0)


def date_due(day: date, zone: ZoneInfo, due_time: time | None) -> datetime:
    """The due instant of "by the end of `day`" (or `due_time` on it)."""
    if due_time is None:
        return resolve_wall(datetime.combine(day + _ONE_DAY, _MIDNIGHT), zone)
    return resolve_wall(datetime.combine(day, due_time), zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone` (used for `announced = 2020-11-10`)."""
    return resolve_wall(datetime.combine(day, _MIDNIGHT), zone)


def minus_days(instant: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time `days` calendar days earlier in `zone`."""
    if days == 0:
        return instant
    return resolve_wall(wall_of(instant, zone) - timedelta(days=days), zone)


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


def offset_span(zone: ZoneInfo) -> timedelta:
    """The largest UTC offset `zone` ever uses minus its smallest (`_SURELY_BEFORE` if unknown).

    Read once per zone from its TZif file (every offset of its history) and
    its rule for the future (probed far ahead).
    """
    span = _SPANS.get(zone)
    if span is None:
        offsets = tzif_offsets(zone.key) if zone.key else None
        if offsets is None:
            span = _SURELY_BEFORE
        else:
            for year in (2200, 3000, 9000):
                for month in (1, 7):
                    probe = datetime(year, month, 1, tzinfo=zone).utcoffset()
                    if probe is not None:
                        offsets.add(int(probe.total_seconds()))
            span = timedelta(seconds=max(offsets) - min(offsets))
        _SPANS[zone] = span
    return span


_SPANS: dict[ZoneInfo, timedelta] = {}


def tzif_offsets(key: str) -> set[int] | None:
    """Every UTC offset (seconds) in the TZif file zoneinfo reads for `key`, or None."""
    data = _tzif_bytes(key)
    if data is None or len(data) < 44 or data[:4] != b"TZif":
        return None
    try:
        header = struct.unpack(">6l", data[20:44])
        if data[4] >= 0x32:  # version 2+: skip the 32-bit block to the 64-bit one
            data = data[44 + _block_size(header, 4):]
            if data[:4] != b"TZif":
                return None
            header = struct.unpack(">6l", data[20:44])
            time_size = 8
        else:
            time_size = 4
        _isut, _isstd, _leap, timecnt, typecnt, _chars = header
        start = 44 + timecnt * (time_size + 1)
        types = data[start:start + 6 * typecnt]
        if typecnt < 1 or len(types) != 6 * typecnt:
            return None
        return {struct.unpack(">l", types[i:i + 4])[0] for i in range(0, len(types), 6)}
    except struct.error:
        return None


def _block_size(header: tuple[int, ...], time_size: int) -> int:
    isut, isstd, leap, timecnt, typecnt, chars = header
    return (timecnt * (time_size + 1) + typecnt * 6 + chars + leap * (time_size + 4)
            + isstd + isut)


def _tzif_bytes(key: str) -> bytes | None:
    """The file `ZoneInfo(key)` was read from: the first on zoneinfo.TZPATH, else tzdata's."""
    if not key or key.startswith("/") or ".." in key.split("/"):
        return None
    for root in zoneinfo.TZPATH:
        with contextlib.suppress(OSError):
            return (Path(root) / key).read_bytes()
    package, _, name = f"tzdata.zoneinfo/{key}".rpartition("/")
    try:
        return importlib.resources.files(package.replace("/", ".")).joinpath(name).read_bytes()
    except (ImportError, OSError, ValueError):
        return None


Pairs = tuple[tuple[int, int], ...]


def reminder_doubts(
    offsets: tuple[Offset, ...], zone: ZoneInfo, dated: bool, remind_at: time,
) -> tuple[tuple[Offset, ...], Pairs]:
    """`unsure_offsets` and `coinciding_candidates` in one look-up (a load asks both of
    every deadline). Remembered for the last few tuples by identity (a schedule's
    deadlines mostly share one) and zone."""
    key = (id(offsets), zone, dated, remind_at)
    hit = _DOUBTS.get(key)
    if hit is not None and hit[0] is offsets:
        return hit[1], hit[2]
    span = offset_span(zone)
    unsure = tuple(o for o in offsets if not (
        timedelta(days=o.days) + o.exact >= _SURELY_BEFORE
        or _wall_gap(o, dated, remind_at) > span))
    pairs = _coinciding(offsets, span, dated, remind_at)
    if len(_DOUBTS) >= 256:
        _DOUBTS.clear()
    _DOUBTS[key] = (offsets, unsure, pairs)
    return unsure, pairs


_DOUBTS: dict[tuple[int, ZoneInfo, bool, time],
              tuple[tuple[Offset, ...], tuple[Offset, ...], Pairs]] = {}


def unsure_offsets(
    offsets: tuple[Offset, ...], zone: ZoneInfo, dated: bool, remind_at: time,
) -> tuple[Offset, ...]:
    """Those of `offsets` that might land a reminder at or after a due in `zone` (a date
    due if `dated`); the others surely land before it.

    A reminder and its due are a wall-clock distance apart (`_wall_gap`) that
    their two UTC offsets can shorten by at most `offset_span(zone)`.
    """
    return reminder_doubts(offsets, zone, dated, remind_at)[0]


def coinciding_candidates(
    offsets: tuple[Offset, ...], zone: ZoneInfo, dated: bool, remind_at: time,
) -> Pairs:
    """Pairs (i, j), i < j, of `offsets` that might land on one instant before some due in
    `zone` (a date due if `dated`); the others never do."""
    return reminder_doubts(offsets, zone, dated, remind_at)[1]


def _coinciding(offsets: tuple[Offset, ...], span: timedelta, dated: bool,
                remind_at: time) -> Pairs:
    """Two reminders are their wall-clock distances from the due apart, give or take
    what the zone's UTC offsets (`span`) can shift on each side. A date due's day
    reminders sit at `remind_at` on D-N, a wall distance from the due that depends on
    its time of day: somewhere in 24 hours."""
    slack = 2 * span
    at_day = datetime.combine(date.min, remind_at) - datetime.min

    def spread(o: Offset) -> tuple[timedelta, timedelta]:
        if dated and o.is_pure_days:
            low = timedelta(days=o.days) - at_day
            return low, low + _ONE_DAY
        exact = timedelta(days=o.days) + o.exact
        return exact, exact

    spans = [spread(o) for o in offsets]
    pairs = []
    for j in range(1, len(offsets)):
        for i in range(j):
            a, b = offsets[i], offsets[j]
            if dated and a.is_pure_days and b.is_pure_days:
                close = abs(a.days - b.days) * _ONE_DAY <= slack  # one remind_at, whole days apart
            else:
                close = spans[i][0] - slack <= spans[j][1] and spans[j][0] - slack <= spans[i][1]
            if close:
                pairs.append((i, j))
    return tuple(pairs)


def _wall_gap(offset: Offset, dated: bool, remind_at: time) -> timedelta:
    """The least wall-clock distance from a reminder `offset` to its due.

    A date due D is due on D at `due_time` or at the end of D, not before D
    00:00; its day reminders fall on D-N at `remind_at`. Otherwise the
    reminder is N wall-clock days and then `exact` before the due.
    """
    if dated and offset.is_pure_days:
        return timedelta(days=offset.days) - (
            datetime.combine(date.min, remind_at) - datetime.min)
    return timedelta(days=offset.days) + offset.exact


def lands_before(
    due: datetime, day: date | None, offset: Offset, zone: ZoneInfo, remind_at: time
) -> bool:
    """`reminder_instant(...) < due`, without the zone arithmetic where it cannot matter.

    Callers skip the offsets that `unsure_offsets` clears (for those it is True).
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
        wall = wall_of(due, zone) - timedelta(days=days)
    return resolve_wall(wall, zone) - exact < due


def after(instant: datetime, offset: Offset, zone: ZoneInfo, times: int = 1) -> datetime:
    """`times` x `offset` after `instant` (calendar part first, then exact)."""
    return plus_days(instant, offset.days * times, zone) + offset.exact * times


def parse_hhmm(text: str) -> time:
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise ValueError("not a time of day: use HH:MM, e.g. 09:00")
    return time(int(m.group(1)), int(m.group(2)))

"""Digests on the days clocks change, in every zone, against the zones' real transitions.

SPEC 2 and the README: a digest's cron names a local wall time; a time the
clocks skip is moved forward by the gap, a time they repeat is its first
reading, and each local day has one digest, keyed by its date. So the instant
for day D at cron time T is D T read with fold=0 (PEP 495: in a gap, the
offset before it, which is the wall time plus the gap; in a fold, the first
reading). The transitions are found by stepping UTC instants through each
zone of the tz database and comparing offsets, not taken from a list.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from notifier.schedule.model import Channel, Digest, Schedule
from notifier.schedule.planning import plan_digest

YEARS = (2019, 2025)
STEP = timedelta(days=1)
CHANNELS = {"console": Channel("console", ("console://",))}


@dataclass(frozen=True)
class Transition:
    zone: str
    at: datetime
    """The first UTC instant of the new offset."""
    before: timedelta
    after: timedelta

    @property
    def wall_start(self) -> datetime:
        """First wall time (naive) of the skipped or repeated stretch."""
        return (self.at + min(self.before, self.after)).replace(tzinfo=None)

    @property
    def length(self) -> timedelta:
        return abs(self.after - self.before)


def _offset(zone: ZoneInfo, t: datetime) -> timedelta:
    offset = t.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _transitions_of(name: str) -> Iterator[Transition]:
    zone = ZoneInfo(name)
    t = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    stop = datetime(YEARS[1] + 1, 1, 1, tzinfo=UTC)
    offset = _offset(zone, t)
    while t < stop:
        nxt = t + STEP
        if _offset(zone, nxt) == offset:
            t = nxt
            continue
        lo, hi = t, nxt  # offset(lo) is the old one, offset(hi) another
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if _offset(zone, mid) == offset:
                lo = mid
            else:
                hi = mid
        at = hi.replace(microsecond=0)
        if _offset(zone, at - timedelta(seconds=1)) != offset:
            at -= timedelta(seconds=1)
        new = _offset(zone, at)
        yield Transition(name, at, offset, new)
        # On from the change itself: a second change within the same step is found too.
        offset, t = new, at


@cache
def transitions() -> tuple[Transition, ...]:
    """Every change of UTC offset in YEARS of every zone (a rename of the zone's
    abbreviation alone does not move wall clocks and is not one)."""
    return tuple(t for name in sorted(zoneinfo.available_timezones())
                 for t in _transitions_of(name) if t.before != t.after)


def cron_times(tr: Transition) -> list[time]:
    """Whole minutes inside the skipped or repeated stretch: its first, its middle."""
    first = tr.wall_start
    if first.second:
        first += timedelta(seconds=60 - first.second)
    middle = (tr.wall_start + tr.length / 2).replace(second=0)
    inside = [w for w in (first, middle) if tr.wall_start <= w < tr.wall_start + tr.length]
    return sorted({w.time() for w in inside})


def expected(
    zone: ZoneInfo, at: time, start: datetime, end: datetime
) -> list[tuple[str, datetime]]:
    """The oracle: each local date's cron time read with fold=0, inside [start, end)."""
    out = []
    day = start.astimezone(zone).date() - timedelta(days=2)
    while day <= end.astimezone(zone).date() + timedelta(days=2):
        instant = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
        if start <= instant < end:
            out.append((f"digest/{day.isoformat()}", instant))
        day += timedelta(days=1)
    return out


def planned(
    zone: ZoneInfo, cron: str, start: datetime, end: datetime
) -> list[tuple[str, datetime]]:
    digest = Digest(cron, zone, ("console",), always=True)
    schedule = Schedule(deadlines=(), zone=zone, channels=CHANNELS, digest=digest)
    return [(n.key, n.at) for n in plan_digest(schedule, digest, start, end)]


def test_the_transitions_include_changes_at_local_midnight() -> None:
    found = {(t.zone, t.wall_start.time()) for t in transitions()}
    for name in ("America/Santiago", "America/Havana", "Asia/Beirut", "America/Asuncion"):
        assert (name, time(0, 0)) in found or (name, time(23, 0)) in found, name
    assert len(transitions()) > 1000


def test_digest_on_every_dst_day_of_every_zone() -> None:
    wrong: list[str] = []
    checked = 0
    for tr in transitions():
        zone = ZoneInfo(tr.zone)
        start, end = tr.at - timedelta(days=3), tr.at + timedelta(days=3)
        for at in cron_times(tr):
            want = expected(zone, at, start, end)
            got = planned(zone, f"{at.minute} {at.hour} * * *", start, end)
            checked += 1
            if got != want:
                missing = [k for k in want if k not in got]
                extra = [k for k in got if k not in want]
                wrong.append(f"{tr.zone} {tr.at:%Y-%m-%d %H:%M}Z ({tr.before} -> {tr.after}), "
                             f"cron {at:%H:%M}: missing {missing}, unexpected {extra}")
    assert checked > 2000
    assert not wrong, f"{len(wrong)} of {checked}:\n" + "\n".join(wrong[:40])


def test_a_plan_window_starting_mid_day_agrees_with_the_whole_day() -> None:
    # Two cron times a day: the day's first is its digest, whichever window plans it.
    zone = ZoneInfo("Europe/Berlin")
    cron = "0 8,20 * * *"
    whole = planned(zone, cron, datetime(2021, 3, 27, tzinfo=UTC),
                    datetime(2021, 3, 30, tzinfo=UTC))
    from_noon = planned(zone, cron, datetime(2021, 3, 28, 12, tzinfo=UTC),
                        datetime(2021, 3, 30, tzinfo=UTC))
    assert from_noon == [k for k in whole if k[1] >= datetime(2021, 3, 28, 12, tzinfo=UTC)]
    assert [k for k, _ in whole] == ["digest/2021-03-27", "digest/2021-03-28", "digest/2021-03-29"]


def test_each_date_in_the_range_is_checked_once() -> None:
    # The oracle itself: one entry per local date.
    zone = ZoneInfo("America/Santiago")
    rows = expected(zone, time(0, 30), datetime(2022, 9, 8, tzinfo=UTC),
                    datetime(2022, 9, 14, tzinfo=UTC))
    assert len({k for k, _ in rows}) == len(rows) == 6
    assert date(2022, 9, 11).isoformat() in {k.split("/")[1] for k, _ in rows}

"""Offsets and local-time checks as tables of plain values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.schedule import timing

OFFSETS = [
    ("7d", 7, timedelta(0)),
    ("2w", 14, timedelta(0)),
    ("0d", 0, timedelta(0)),
    ("2h", 0, timedelta(hours=2)),
    ("90m", 0, timedelta(minutes=90)),
    ("45s", 0, timedelta(seconds=45)),
    ("1d12h", 1, timedelta(hours=12)),
    ("1w2d3h4m5s", 9, timedelta(hours=3, minutes=4, seconds=5)),
    ("P1D", 1, timedelta(0)),
    ("PT2H", 0, timedelta(hours=2)),
    ("P1DT12H", 1, timedelta(hours=12)),
    ("P2W", 14, timedelta(0)),
    ("PT1H30M", 0, timedelta(minutes=90)),
]


@pytest.mark.parametrize(("text", "days", "exact"), OFFSETS)
def test_parse_offset(text: str, days: int, exact: timedelta) -> None:
    offset = timing.parse_offset(text)
    assert (offset.days, offset.exact, offset.text) == (days, exact, text)


@pytest.mark.parametrize("text", ["", "d", "3", "3 days", "-1d", "1.5d", "P", "PT", "P1M", "P1Y",
                                  "1D", "P1DT", "999999d", "1d 2h"])
def test_bad_offsets(text: str) -> None:
    with pytest.raises(timing.OffsetError):
        timing.parse_offset(text)


LOCAL = [
    ("Europe/Berlin", "2021-03-28T02:30", "nonexistent"),
    ("Europe/Berlin", "2021-10-31T02:30", "ambiguous"),
    ("Europe/Berlin", "2021-10-31T03:30", None),
    ("America/New_York", "2021-03-14T02:00", "nonexistent"),
    ("America/New_York", "2021-11-07T01:59", "ambiguous"),
    ("Australia/Lord_Howe", "2021-10-03T02:15", "nonexistent"),
    ("Australia/Lord_Howe", "2021-10-03T02:30", None),
    ("Australia/Lord_Howe", "2021-04-04T01:45", "ambiguous"),
    ("Asia/Baku", "2020-11-15T18:54", None),
]


@pytest.mark.parametrize(("zone", "wall", "kind"), LOCAL)
def test_check_local(zone: str, wall: str, kind: str | None) -> None:
    problem = timing.check_local(datetime.fromisoformat(wall), ZoneInfo(zone))
    assert (problem.kind if problem else None) == kind


def test_lord_howe_readings_differ_by_thirty_minutes() -> None:
    problem = timing.check_local(datetime(2021, 4, 4, 1, 45), ZoneInfo("Australia/Lord_Howe"))
    assert problem is not None
    a, b = problem.readings
    assert [r.isoformat() for r in problem.readings] == [
        "2021-04-04T01:45:00+11:00", "2021-04-04T01:45:00+10:30"]
    assert b - a == timedelta(minutes=30)


@pytest.mark.parametrize(("text", "ok"), [("09:00", True), ("23:59", True), ("24:00", False),
                                          ("9:00", False), ("09:60", False), ("nine", False)])
def test_parse_hhmm(text: str, ok: bool) -> None:
    if ok:
        assert timing.parse_hhmm(text).strftime("%H:%M") == text
    else:
        with pytest.raises(ValueError, match="HH:MM"):
            timing.parse_hhmm(text)


ZONES_WITH_ODD_RULES = ["Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia", "Pacific/Chatham",
                        "America/Santiago", "Asia/Kathmandu", "UTC", "Pacific/Kiritimati"]


@settings(max_examples=3000, deadline=None, database=None)
# Samoa skipped 30 Dec 2011: a day back from the 31st is no time at all.
@example(instant=datetime(2011, 12, 30, 20, 0, tzinfo=UTC), as_date=False, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(9), due_time=None)
@example(instant=datetime(2011, 12, 31, 3, 0, tzinfo=UTC), as_date=False, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(9), due_time=None)
@example(instant=datetime(2011, 12, 30, 22, 0, tzinfo=UTC), as_date=True, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(23, 30), due_time=None)
@example(instant=datetime(2011, 12, 31, 12, 0, tzinfo=UTC), as_date=True, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(9), due_time=time(0, 0))
@given(
    instant=st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1),
                         timezones=st.just(UTC)),
    as_date=st.booleans(),
    zone=st.sampled_from(ZONES_WITH_ODD_RULES),
    days=st.integers(0, 4),
    minutes=st.sampled_from([0, 0, 1, 30, 120, 1439, 1440, 1500]),
    remind_at=st.times(),
    due_time=st.none() | st.times(),
)
def test_lands_before_is_reminder_instant_before_due(
        instant: datetime, as_date: bool, zone: str, days: int, minutes: int,
        remind_at: time, due_time: time | None) -> None:
    """The fast checks agree with the reminder's instant, in zones that skipped a day
    (Apia, Kiritimati), shift by 30 minutes (Lord Howe) or sit at +5:45 (Kathmandu):
    `lands_before` exactly, and an offset `unsure_offsets` clears surely lands before."""
    tz = ZoneInfo(zone)
    offset = timing.parse_offset(f"{days}d{minutes}m" if minutes else f"{days}d")
    if as_date:
        day = instant.astimezone(tz).date()
        due = timing.date_due(day, tz, due_time)
    else:
        day, due = None, instant
    expected = timing.reminder_instant(due, day, offset, tz, remind_at) < due
    assert timing.lands_before(due, day, offset, tz, remind_at) == expected
    if offset not in timing.unsure_offsets((offset,), tz, as_date, remind_at):
        assert expected


def _sampled_offsets(zone: ZoneInfo, start: int, end: int) -> set[timedelta]:
    """The zone's UTC offsets at noon UTC on every day of the years [start, end)."""
    day, last = datetime(start, 1, 1, 12, tzinfo=UTC), datetime(end, 1, 1, tzinfo=UTC)
    seen: set[timedelta] = set()
    while day < last:
        off = day.astimezone(zone).utcoffset()
        assert off is not None
        seen.add(off)
        day += timedelta(days=1)
    return seen


@pytest.mark.parametrize(("zone", "at_least"), [
    ("UTC", timedelta(0)),
    ("Europe/Berlin", timedelta(hours=1)),
    ("Australia/Lord_Howe", timedelta(minutes=30)),
    # Samoa went from UTC-10 (summer) to UTC+14 (summer) across the skipped day.
    ("Pacific/Apia", timedelta(hours=24)),
    ("Pacific/Kiritimati", timedelta(hours=24)),
    ("Asia/Kathmandu", timedelta(minutes=15)),
    ("America/Santiago", timedelta(hours=1)),
])
def test_offset_span_covers_every_offset_the_zone_uses(zone: str, at_least: timedelta) -> None:
    tz = ZoneInfo(zone)
    span = timing.offset_span(tz)
    seen = _sampled_offsets(tz, 1850, 2100)
    assert max(seen) - min(seen) <= span
    assert span >= at_least
    assert span < timedelta(hours=48)


def test_offset_span_reads_the_zones_history_and_future_rule() -> None:
    offsets = timing.tzif_offsets("Europe/Berlin")
    assert offsets is not None
    # Local mean time (+0:53:28), CET, CEST, and the double summer time of 1945/47.
    assert {3208, 3600, 7200, 10800} <= offsets
    assert timing.tzif_offsets("No/Such_Zone") is None
    assert timing.tzif_offsets("../../etc/passwd") is None


def test_unsure_offsets_keeps_only_those_the_zone_can_push_past_the_due() -> None:
    one_day, two_hours, week = (timing.parse_offset(t) for t in ("1d", "2h", "7d"))
    offsets = (week, one_day, two_hours)
    berlin, apia = ZoneInfo("Europe/Berlin"), ZoneInfo("Pacific/Apia")
    # Berlin's offsets span 2 h: a 1-day reminder is a day of wall clock before its due.
    assert timing.unsure_offsets(offsets, berlin, False, time(9)) == (two_hours,)
    # A date due D is due no earlier than D 00:00; its 1-day reminder is D-1 at 23:30.
    assert timing.unsure_offsets(offsets, berlin, True, time(23, 30)) == (one_day, two_hours)
    assert timing.unsure_offsets(offsets, berlin, True, time(9)) == (two_hours,)
    # Samoa's offsets span a whole day: only the week is sure.
    assert timing.unsure_offsets(offsets, apia, False, time(9)) == (one_day, two_hours)


def _oracle_local_instant(wall: datetime, zone: ZoneInfo) -> datetime | str:
    """What `local_instant` computed before its fast path: the readings by `replace`."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    return "problem"


@settings(max_examples=3000, deadline=None, database=None)
# Berlin's gap and fold of 2021, Lord Howe's half-hour fold, Samoa's skipped day.
@example(wall=datetime(2021, 3, 28, 2, 30), zone="Europe/Berlin", days=1)
@example(wall=datetime(2021, 10, 31, 2, 30), zone="Europe/Berlin", days=-1)
@example(wall=datetime(2021, 4, 4, 1, 45), zone="Australia/Lord_Howe", days=1)
@example(wall=datetime(2011, 12, 30, 12, 0), zone="Pacific/Apia", days=1)
@example(wall=datetime(1, 1, 1, 0, 0), zone="Asia/Tokyo", days=0)
@example(wall=datetime(9999, 12, 31, 23, 0), zone="America/Santiago", days=0)
@given(
    wall=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
    | st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1)),
    zone=st.sampled_from(ZONES_WITH_ODD_RULES),
    days=st.integers(-3, 3),
)
def test_wall_clock_conversions_agree_with_datetime_replace(
        wall: datetime, zone: str, days: int) -> None:
    """The conversions skip `datetime.replace` (microseconds each, 100,000s per schedule);
    they must give what `replace` and `astimezone` give, errors included."""
    tz = ZoneInfo(zone)

    def outcome(f: Callable[..., object], *args: object) -> object:
        try:
            return f(*args)
        except OverflowError:
            return OverflowError

    assert outcome(timing.resolve_wall, wall, tz) == outcome(
        lambda w, z: w.replace(tzinfo=z, fold=0).astimezone(UTC), wall, tz)
    got = outcome(timing.local_instant, wall, tz)
    assert (got if not isinstance(got, timing.LocalTimeProblem) else "problem") == outcome(
        _oracle_local_instant, wall, tz)
    instant = outcome(lambda w, z: w.replace(tzinfo=z).astimezone(UTC), wall, tz)
    if isinstance(instant, datetime):
        assert outcome(timing.wall_of, instant, tz) == outcome(
            lambda i, z: i.astimezone(z).replace(tzinfo=None), instant, tz)
        assert outcome(timing.minus_days, instant, days, tz) == outcome(
            lambda i, n, z: instant if n == 0 else
            (i.astimezone(z).replace(tzinfo=None) - timedelta(days=n))
            .replace(tzinfo=z, fold=0).astimezone(UTC), instant, days, tz)


@pytest.mark.parametrize(("instant", "us"), [
    (datetime(1970, 1, 1, tzinfo=UTC), 0),
    (datetime(1970, 1, 1, 4, 0, 0, 1, tzinfo=ZoneInfo("Asia/Baku")), 1),
    (datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), -1),
    (datetime(2020, 11, 25, 20, 0, 0, 250_000, tzinfo=UTC), 1_606_334_400_250_000),
])
def test_epoch_microseconds_are_exact_both_ways(instant: datetime, us: int) -> None:
    # Ledger rows and the plan's order use them.
    assert timing.epoch_us(instant) == us
    assert timing.from_epoch_us(us) == instant
    assert timing.from_epoch_us(us).tzinfo is UTC

"""Offsets and local-time checks as tables of plain values."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier import timing

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
         days=1, minutes=0, remind_at=time(9))
@example(instant=datetime(2011, 12, 31, 3, 0, tzinfo=UTC), as_date=False, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(9))
@example(instant=datetime(2011, 12, 30, 22, 0, tzinfo=UTC), as_date=True, zone="Pacific/Apia",
         days=1, minutes=0, remind_at=time(23, 30))
@given(
    instant=st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1),
                         timezones=st.just(UTC)),
    as_date=st.booleans(),
    zone=st.sampled_from(ZONES_WITH_ODD_RULES),
    days=st.integers(0, 4),
    minutes=st.sampled_from([0, 0, 1, 30, 120, 1439, 1440, 1500]),
    remind_at=st.times(),
)
def test_lands_before_is_reminder_instant_before_due(
        instant: datetime, as_date: bool, zone: str, days: int, minutes: int,
        remind_at: time) -> None:
    """The fast check agrees with the reminder's instant, in zones that skipped a day
    (Apia, Kiritimati), shift by 30 minutes (Lord Howe) or sit at +5:45 (Kathmandu)."""
    tz = ZoneInfo(zone)
    offset = timing.parse_offset(f"{days}d{minutes}m" if minutes else f"{days}d")
    if as_date:
        day = instant.astimezone(tz).date()
        due = timing.date_due(day, tz, None)
    else:
        day, due = None, instant
    expected = timing.reminder_instant(due, day, offset, tz, remind_at) < due
    assert timing.lands_before(due, day, offset, tz, remind_at) == expected

"""The shortcuts taken for large schedules give exactly what the plain computation gives.

Random deadlines (zones with DST, Lord Howe's half hour, date and datetime
dues, extensions, closures, overdue repeats, offsets up to weeks): every
candidate lies inside `Deadline.span`, so `plan` skipping deadlines by span
loses nothing; `next_notification`'s widening windows find `plan(...)[0]`;
`unplanned_reminders` (which skips offsets that cannot land late) matches
computing every reminder.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifier.schedule import planning, timing
from notifier.schedule.model import Channel, Closure, Deadline, Schedule, Stage

ZONES = [ZoneInfo(z) for z in ("UTC", "Europe/Berlin", "America/New_York",
                               "Australia/Lord_Howe", "Pacific/Apia", "America/Santiago")]
OFFSETS = ["0d", "1d", "2d", "3d", "7d", "2w", "2h", "90m", "1d12h", "2d23h", "P1DT2H", "0h"]
BASE = datetime(2021, 1, 1, tzinfo=UTC)


def random_deadline(rng: random.Random, i: int) -> Deadline:
    zone = rng.choice(ZONES)
    stages: list[Stage] = []
    at = BASE + timedelta(hours=rng.randrange(0, 24 * 700))
    announced = at - timedelta(days=rng.randrange(0, 60)) if rng.random() < 0.5 else None
    for k in range(rng.choice([1, 1, 2, 3])):
        if rng.random() < 0.5:
            day = at.astimezone(zone).date()
            due = timing.date_due(day, zone, rng.choice([None, time(17), time(0, 30)]))
            stages.append(Stage(due, day, announced if k == 0 else at - timedelta(days=3)))
        else:
            stages.append(Stage(at, None, announced if k == 0 else at - timedelta(days=2)))
        at += timedelta(days=rng.randrange(-5, 20))
    overdue = timing.parse_offset(rng.choice(["1d", "6h", "1w"])) if rng.random() < 0.3 else None
    closure = None
    if rng.random() < 0.2:
        closure = Closure(rng.choice(["completed", "cancelled"]),
                          stages[0].due + timedelta(hours=rng.randrange(-200, 200)))
    return Deadline(
        id=f"d{i}", title=f"D{i}", zone=zone, stages=tuple(stages),
        reminders=tuple(timing.parse_offset(o) for o in rng.sample(OFFSETS, rng.randrange(0, 5))),
        channels=("out",), remind_at=rng.choice([time(9), time(23, 45), time(0)]),
        overdue_every=overdue, overdue_limit=rng.randrange(0, 4) if overdue else 0,
        closure=closure,
    )


@pytest.fixture(scope="module")
def deadlines() -> list[Deadline]:
    rng = random.Random(1120)
    return [random_deadline(rng, i) for i in range(400)]


ALL_TIME = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def test_every_candidate_lies_in_the_span(deadlines: list[Deadline]) -> None:
    for d in deadlines:
        first, last = d.span
        for n in planning._candidates(d, *ALL_TIME):
            assert first <= n.at <= last, (d, n)


def test_candidates_in_a_window_are_all_time_candidates_in_it(
        deadlines: list[Deadline]) -> None:
    """`_candidates` builds only the notifications inside its window: the same ones,
    in the same order, as filtering every candidate of all time."""
    rng = random.Random(11)
    for d in deadlines:
        everything = list(planning._candidates(d, *ALL_TIME))
        for _ in range(5):
            start = BASE + timedelta(hours=rng.randrange(-24 * 30, 24 * 760))
            end = start + timedelta(hours=rng.choice([1, 24, 48, 24 * 30]))
            assert list(planning._candidates(d, start, end)) == [
                n for n in everything if start <= n.at < end], (d, start, end)


def test_plan_skipping_by_span_loses_nothing(deadlines: list[Deadline]) -> None:
    schedule = Schedule(deadlines=tuple(deadlines), channels={"out": Channel("out", ("x",))})
    rng = random.Random(7)
    for _ in range(60):
        start = BASE + timedelta(hours=rng.randrange(-24 * 30, 24 * 760))
        end = start + timedelta(hours=rng.choice([1, 24, 48, 24 * 30, 24 * 400]))
        brute = sorted(
            (n for d in deadlines
             for n in planning.plan_deadline(d, schedule.channels, start, end)),
            key=planning.order_key,
        )
        assert planning.plan(schedule, start, end) == brute


def test_next_notification_is_the_first_of_the_plan(deadlines: list[Deadline]) -> None:
    schedule = Schedule(deadlines=tuple(deadlines[:60]),
                        channels={"out": Channel("out", ("x",))})
    for days in (-40, 0, 100, 300, 900):
        now = BASE + timedelta(days=days, hours=5)
        items = planning.plan(schedule, now, now + timedelta(days=400))
        assert planning.next_notification(schedule, now) == (items[0] if items else None)


def test_unplanned_reminders_match_the_full_computation(deadlines: list[Deadline]) -> None:
    for d in deadlines:
        full = [(o.text, k) for k, s in enumerate(d.stages) for o in d.reminders
                if timing.reminder_instant(s.due, s.day, o, d.zone, d.remind_at) >= s.due]
        assert planning.unplanned_reminders(d) == full


def test_schedule_finds_deadlines_by_id(deadlines: list[Deadline]) -> None:
    schedule = Schedule(deadlines=tuple(deadlines))
    assert schedule.deadline("d17") is deadlines[17]
    assert schedule.deadline("nope") is None
    assert schedule.deadline(None) is None


def test_local_instant_is_check_local_then_local_to_utc() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    problems = 0
    for start in (datetime(2021, 4, 4), datetime(2021, 10, 3)):  # its fold and its gap
        for minutes in range(0, 24 * 60, 7):
            t = start + timedelta(minutes=minutes)
            got = timing.local_instant(t, zone)
            problem = timing.check_local(t, zone)
            if problem is None:
                assert got == timing.local_to_utc(t, zone)
            else:
                problems += 1
                assert got == problem
    assert problems >= 4

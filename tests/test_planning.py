"""The planner as tables of plain values: no clock, no files, no patching."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from notifier import text
from notifier.schedule import timing
from notifier.schedule.model import Channel, Closure, Deadline, Digest, Schedule, Stage
from notifier.schedule.planning import coinciding_reminders, plan
from notifier.schedule.standing import stale_reason, standing_at
from notifier.text import rfc3339

BAKU = ZoneInfo("Asia/Baku")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def day_stage(day: str, zone: ZoneInfo, announced: str | None = None, due_time: time | None = None,
              reason: str | None = None) -> Stage:
    d = date.fromisoformat(day)
    return Stage(due=timing.date_due(d, zone, due_time), day=d,
                 announced=utc(announced) if announced else None, reason=reason)


def at_stage(when: str, announced: str | None = None) -> Stage:
    return Stage(due=utc(when), day=None, announced=utc(announced) if announced else None)


def deadline(*stages: Stage, zone: ZoneInfo = BAKU, reminders: tuple[str, ...] = ("3d", "1d", "0d"),
             remind_at: time = time(9), closure: Closure | None = None,
             overdue_every: str | None = None, overdue_limit: int = 0,
             channels: tuple[str, ...] = ("console",)) -> Deadline:
    return Deadline(
        id="d", title="D", zone=zone, stages=stages,
        reminders=tuple(timing.parse_offset(r) for r in reminders), channels=channels,
        remind_at=remind_at, closure=closure,
        overdue_every=timing.parse_offset(overdue_every) if overdue_every else None,
        overdue_limit=overdue_limit,
    )


def timeline(d: Deadline, zone: ZoneInfo | None = None) -> list[tuple[str, str, str | None]]:
    z = zone or d.zone
    items = plan(Schedule(deadlines=(d,)), *EVER)
    return [(n.at.astimezone(z).isoformat(), n.kind, n.offset) for n in items]


def test_spec_worked_example_kalbajar() -> None:
    kalbajar = deadline(
        day_stage("2020-11-15", BAKU, announced="2020-11-10T01:00+04:00"),
        day_stage("2020-11-25", BAKU, announced="2020-11-15T20:24+05:30"),
    )
    assert timeline(kalbajar) == [
        ("2020-11-12T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-14T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-15T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-15T18:54:00+04:00", "rescheduled", None),
        ("2020-11-22T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-24T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-25T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-26T00:00:00+04:00", "due", None),
    ]
    keys = [n.key for n in plan(Schedule(deadlines=(kalbajar,)), *EVER)]
    assert keys[0] == "d/reminder/2020-11-15T20:00:00Z/3d"
    assert keys[3] == "d/rescheduled/2020-11-25T20:00:00Z/ext1"
    assert keys[-1] == "d/due/2020-11-25T20:00:00Z/"



def test_each_notification_carries_the_stage_it_was_planned_for() -> None:
    # Kalbajar extended, then brought forward, closed: messages read the stage from here.
    d = deadline(
        day_stage("2020-11-15", BAKU, announced="2020-11-10T01:00+04:00"),
        day_stage("2020-11-25", BAKU, announced="2020-11-15T20:24+05:30"),
        day_stage("2020-11-20", BAKU, announced="2020-11-18T10:00+04:00"),
        closure=Closure(kind="completed", at=utc("2020-11-22T12:00+04:00")),
        overdue_every="1d", overdue_limit=2,
    )
    items = plan(Schedule(deadlines=(d,)), *EVER)
    assert [(n.kind, n.stage) for n in items] == [
        ("reminder", 0), ("reminder", 0), ("reminder", 0), ("rescheduled", 1),
        ("rescheduled", 2), ("reminder", 2), ("reminder", 2), ("due", 2), ("overdue", 2),
        ("completed", 2)]
    assert all(n.stage is not None and d.stages[n.stage].due == n.due for n in items)

# Day offsets are calendar days (same wall clock), hour offsets are exact time.
DST_OFFSETS = [
    # zone, due (local), offset, expected reminder (with offset)
    (BERLIN, "2021-03-29T10:00", "1d", "2021-03-28T10:00:00+02:00"),
    (BERLIN, "2021-03-29T10:00", "2d", "2021-03-27T10:00:00+01:00"),
    (BERLIN, "2021-03-29T10:00", "48h", "2021-03-27T09:00:00+01:00"),
    (BERLIN, "2021-03-29T10:00", "1d12h", "2021-03-27T21:00:00+01:00"),
    (BERLIN, "2021-11-01T10:00", "2d", "2021-10-30T10:00:00+02:00"),
    (BERLIN, "2021-11-01T10:00", "48h", "2021-10-30T11:00:00+02:00"),
    (BERLIN, "2021-03-29T02:30", "1d", "2021-03-28T03:30:00+02:00"),  # lands in the gap
    (BERLIN, "2021-11-01T02:30", "1d", "2021-10-31T02:30:00+02:00"),  # lands in the fold
    (NEW_YORK, "2021-03-15T09:00", "2d", "2021-03-13T09:00:00-05:00"),
    (NEW_YORK, "2021-03-15T09:00", "48h", "2021-03-13T08:00:00-05:00"),
    (NEW_YORK, "2021-11-08T09:00", "2d", "2021-11-06T09:00:00-04:00"),
    (NEW_YORK, "2021-11-08T09:00", "48h", "2021-11-06T10:00:00-04:00"),
    (NEW_YORK, "2021-11-08T09:00", "P1W", "2021-11-01T09:00:00-04:00"),
    (LORD_HOWE, "2021-10-04T12:00", "2d", "2021-10-02T12:00:00+10:30"),
    (LORD_HOWE, "2021-10-04T12:00", "48h", "2021-10-02T11:30:00+10:30"),
    (LORD_HOWE, "2021-04-05T12:00", "2d", "2021-04-03T12:00:00+11:00"),
    (LORD_HOWE, "2021-04-05T12:00", "48h", "2021-04-03T12:30:00+11:00"),
    (LORD_HOWE, "2021-10-04T02:15", "1d", "2021-10-03T02:45:00+11:00"),  # 30-minute gap
]


@pytest.mark.parametrize(("zone", "due", "offset", "expected"), DST_OFFSETS)
def test_offsets_across_dst(zone: ZoneInfo, due: str, offset: str, expected: str) -> None:
    instant = datetime.fromisoformat(due).replace(tzinfo=zone).astimezone(UTC)
    d = deadline(Stage(due=instant, day=None, announced=None), zone=zone, reminders=(offset,))
    assert timeline(d)[0] == (expected, "reminder", offset)


# Date dues: day offsets land on D-N at remind_at in local time, whatever DST does.
REMIND_AT = [
    (BERLIN, "2021-03-29", time(9), "1d", "2021-03-28T09:00:00+02:00"),
    (BERLIN, "2021-03-29", time(9), "2d", "2021-03-27T09:00:00+01:00"),
    (BERLIN, "2021-03-28", time(2, 30), "0d", "2021-03-28T03:30:00+02:00"),
    (BERLIN, "2021-10-31", time(2, 30), "0d", "2021-10-31T02:30:00+02:00"),
    (NEW_YORK, "2021-03-14", time(2, 30), "0d", "2021-03-14T03:30:00-04:00"),
    (NEW_YORK, "2021-11-07", time(1, 30), "0d", "2021-11-07T01:30:00-04:00"),
    (LORD_HOWE, "2021-10-03", time(2, 10), "0d", "2021-10-03T02:40:00+11:00"),
    (LORD_HOWE, "2021-04-04", time(1, 45), "0d", "2021-04-04T01:45:00+11:00"),
    # A pure hour offset on a date due counts back from the end of the day.
    (BERLIN, "2021-03-27", time(9), "2h", "2021-03-27T22:00:00+01:00"),
    (BERLIN, "2021-03-28", time(9), "2h", "2021-03-28T22:00:00+02:00"),
]


@pytest.mark.parametrize(("zone", "day", "remind_at", "offset", "expected"), REMIND_AT)
def test_remind_at_on_date_dues(
    zone: ZoneInfo, day: str, remind_at: time, offset: str, expected: str
) -> None:
    d = deadline(day_stage(day, zone), zone=zone, reminders=(offset,), remind_at=remind_at)
    assert timeline(d)[0] == (expected, "reminder", offset)


DATE_DUES = [
    (BERLIN, "2021-03-27", None, "2021-03-28T00:00:00+01:00"),
    (BERLIN, "2021-03-28", None, "2021-03-29T00:00:00+02:00"),
    (BERLIN, "2021-03-28", time(17), "2021-03-28T17:00:00+02:00"),
    (LORD_HOWE, "2021-10-02", None, "2021-10-03T00:00:00+10:30"),
]


@pytest.mark.parametrize(("zone", "day", "due_time", "expected"), DATE_DUES)
def test_date_due_is_end_of_day_or_due_time(
    zone: ZoneInfo, day: str, due_time: time | None, expected: str
) -> None:
    d = deadline(day_stage(day, zone, due_time=due_time), zone=zone, reminders=())
    assert timeline(d) == [(expected, "due", None)]


def digest_days(zone: ZoneInfo, cron: str, start: str, end: str) -> list[str]:
    d = deadline(at_stage("2030-01-01T00:00+00:00"), zone=zone, reminders=())
    schedule = Schedule(
        deadlines=(d,), zone=zone,
        channels={"console": Channel("console", ("console://",))},
        digest=Digest(schedule=cron, zone=zone, channels=("console",)),
    )
    items = plan(schedule, utc(start), utc(end))
    return [n.at.astimezone(zone).isoformat() for n in items if n.kind == "digest"]


DIGESTS = [
    # A cron time in the repeated hour fires once that day.
    (BERLIN, "30 2 * * *", "2021-10-30T00:00+00:00", "2021-11-01T00:00+00:00",
     ["2021-10-30T02:30:00+02:00", "2021-10-31T02:30:00+02:00"]),
    (NEW_YORK, "30 1 * * *", "2021-11-06T12:00+00:00", "2021-11-08T12:00+00:00",
     ["2021-11-07T01:30:00-04:00", "2021-11-08T01:30:00-05:00"]),
    (LORD_HOWE, "45 1 * * *", "2021-04-03T00:00+00:00", "2021-04-05T00:00+00:00",
     ["2021-04-04T01:45:00+11:00", "2021-04-05T01:45:00+10:30"]),
    # A cron time in the skipped hour fires once, moved forward by the gap.
    (BERLIN, "30 2 * * *", "2021-03-27T00:00+00:00", "2021-03-29T12:00+00:00",
     ["2021-03-27T02:30:00+01:00", "2021-03-28T03:30:00+02:00", "2021-03-29T02:30:00+02:00"]),
    (LORD_HOWE, "15 2 * * *", "2021-10-02T00:00+00:00", "2021-10-04T00:00+00:00",
     ["2021-10-03T02:45:00+11:00", "2021-10-04T02:15:00+11:00"]),
    # Plain days keep the local wall-clock time across the change.
    (BERLIN, "0 8 * * *", "2021-03-27T00:00+00:00", "2021-03-29T12:00+00:00",
     ["2021-03-27T08:00:00+01:00", "2021-03-28T08:00:00+02:00", "2021-03-29T08:00:00+02:00"]),
]


@pytest.mark.parametrize(("zone", "cron", "start", "end", "expected"), DIGESTS)
def test_digest_once_per_local_day(
    zone: ZoneInfo, cron: str, start: str, end: str, expected: list[str]
) -> None:
    assert digest_days(zone, cron, start, end) == expected


def test_digest_keys_are_local_dates() -> None:
    zone = BERLIN
    d = deadline(at_stage("2030-01-01T00:00+00:00"), zone=zone, reminders=())
    schedule = Schedule(deadlines=(d,), zone=zone,
                        channels={"console": Channel("console", ("console://",))},
                        digest=Digest("30 2 * * *", zone, ("console",)))
    keys = [n.key for n in plan(schedule, utc("2021-10-30T12:00+00:00"),
                                utc("2021-11-01T12:00+00:00"))]
    assert keys == ["digest/2021-10-31", "digest/2021-11-01"]


def test_digest_skipped_when_nothing_open_unless_always() -> None:
    closed = deadline(at_stage("2021-01-10T00:00+00:00"), reminders=(),
                      closure=Closure("completed", utc("2021-01-05T00:00+00:00")))
    chans = {"console": Channel("console", ("console://",))}
    for always, expected in ((False, 4), (True, 9)):
        schedule = Schedule(deadlines=(closed,), channels=chans, zone=BAKU,
                            digest=Digest("0 8 * * *", BAKU, ("console",), always=always))
        items = plan(schedule, utc("2021-01-01T00:00+04:00"), utc("2021-01-10T00:00+04:00"))
        assert sum(n.kind == "digest" for n in items) == expected


# Extensions relative to the reminders of the due they replace.
EXTENSIONS = [
    # announced before any reminder of the old due: only the new due's reminders
    ("2020-11-01T00:00+04:00", [
        ("2020-11-01T00:00:00+04:00", "rescheduled", None),
        ("2020-11-22T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-24T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-25T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-26T00:00:00+04:00", "due", None),
    ]),
    # between the old due's reminders
    ("2020-11-13T12:00+04:00", [
        ("2020-11-12T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-13T12:00:00+04:00", "rescheduled", None),
        ("2020-11-22T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-24T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-25T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-26T00:00:00+04:00", "due", None),
    ]),
    # after the old due passed (a late extension): old due fired, then the new plan
    ("2020-11-17T10:00+04:00", [
        ("2020-11-12T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-14T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-15T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-16T00:00:00+04:00", "due", None),
        ("2020-11-17T10:00:00+04:00", "rescheduled", None),
        ("2020-11-22T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-24T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-25T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-26T00:00:00+04:00", "due", None),
    ]),
]


@pytest.mark.parametrize(("announced", "expected"), EXTENSIONS)
def test_extension_timing(announced: str, expected: list[tuple[str, str, str | None]]) -> None:
    d = deadline(day_stage("2020-11-15", BAKU, announced="2020-10-01T00:00+04:00"),
                 day_stage("2020-11-25", BAKU, announced=announced))
    assert timeline(d) == expected


def test_extension_that_brings_the_deadline_forward() -> None:
    d = deadline(day_stage("2020-11-25", BAKU, announced="2020-11-01T00:00+04:00"),
                 day_stage("2020-11-20", BAKU, announced="2020-11-18T12:00+04:00"))
    assert timeline(d) == [
        ("2020-11-18T12:00:00+04:00", "rescheduled", None),
        ("2020-11-19T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-20T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-21T00:00:00+04:00", "due", None),
    ]


def test_extension_without_announced_is_known_from_the_start() -> None:
    d = deadline(day_stage("2020-11-15", BAKU), day_stage("2020-11-25", BAKU), reminders=("1d",))
    assert timeline(d) == [
        ("2020-11-24T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-26T00:00:00+04:00", "due", None),
    ]


def test_nothing_before_announced() -> None:
    d = deadline(day_stage("2020-11-15", BAKU, announced="2020-11-13T12:00+04:00"))
    assert [k for _, k, _ in timeline(d)] == ["reminder", "reminder", "due"]
    assert timeline(d)[0][0] == "2020-11-14T09:00:00+04:00"


CLOSURES = [
    # completed before the due: reminders stop, no due, one completed message
    ("completed", "2020-11-14T12:00+04:00", [
        ("2020-11-12T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-14T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-14T12:00:00+04:00", "completed", None),
    ]),
    # completed after the due: overdue repeats stop at completion
    ("completed", "2020-11-17T12:00+04:00", [
        ("2020-11-12T09:00:00+04:00", "reminder", "3d"),
        ("2020-11-14T09:00:00+04:00", "reminder", "1d"),
        ("2020-11-15T09:00:00+04:00", "reminder", "0d"),
        ("2020-11-16T00:00:00+04:00", "due", None),
        ("2020-11-17T00:00:00+04:00", "overdue", None),
        ("2020-11-17T12:00:00+04:00", "completed", None),
    ]),
    ("cancelled", "2020-11-11T00:00+04:00", [
        ("2020-11-11T00:00:00+04:00", "cancelled", None),
    ]),
]


@pytest.mark.parametrize(("kind", "at", "expected"), CLOSURES)
def test_closure(kind: str, at: str, expected: list[tuple[str, str, str | None]]) -> None:
    closure = Closure(kind, utc(at))  # type: ignore[arg-type]  # table values are the two kinds
    d = deadline(day_stage("2020-11-15", BAKU, announced="2020-11-10T00:00+04:00"),
                 closure=closure, overdue_every="1d", overdue_limit=5)
    assert timeline(d) == expected


def test_overdue_repeats_respect_limit_and_calendar_days() -> None:
    d = deadline(Stage(due=utc("2021-03-26T12:00+01:00"), day=None, announced=None),
                 zone=BERLIN, reminders=(), overdue_every="1d", overdue_limit=3)
    assert timeline(d) == [
        ("2021-03-26T12:00:00+01:00", "due", None),
        ("2021-03-27T12:00:00+01:00", "overdue", None),
        ("2021-03-28T12:00:00+02:00", "overdue", None),
        ("2021-03-29T12:00:00+02:00", "overdue", None),
    ]


def test_overdue_stops_when_extended() -> None:
    d = deadline(day_stage("2020-11-15", BAKU),
                 day_stage("2020-11-25", BAKU, announced="2020-11-17T12:00+04:00"),
                 reminders=(), overdue_every="1d", overdue_limit=5)
    assert timeline(d) == [
        ("2020-11-16T00:00:00+04:00", "due", None),
        ("2020-11-17T00:00:00+04:00", "overdue", None),
        ("2020-11-17T12:00:00+04:00", "rescheduled", None),
        ("2020-11-26T00:00:00+04:00", "due", None),
        ("2020-11-27T00:00:00+04:00", "overdue", None),
        ("2020-11-28T00:00:00+04:00", "overdue", None),
        ("2020-11-29T00:00:00+04:00", "overdue", None),
        ("2020-11-30T00:00:00+04:00", "overdue", None),
        ("2020-12-01T00:00:00+04:00", "overdue", None),
    ]


def test_reminder_at_or_after_due_is_not_planned() -> None:
    d = deadline(at_stage("2021-01-10T12:00+00:00"), zone=ZoneInfo("UTC"), reminders=("0d", "1h"))
    assert timeline(d) == [
        ("2021-01-10T11:00:00+00:00", "reminder", "1h"),
        ("2021-01-10T12:00:00+00:00", "due", None),
    ]


# Offsets that land on one instant remind once: the first in list order, with its key.
# (zone, due, reminders) -> (offset, local time) of each reminder planned
COINCIDING = [
    ("UTC", "2021-01-10T12:00+00:00", ("7d", "1w", "168h", "P7D"),
     [("7d", "2021-01-03T12:00:00+00:00")]),
    ("UTC", "2021-01-10T12:00+00:00", ("1d12h", "36h"), [("1d12h", "2021-01-09T00:00:00+00:00")]),
    ("UTC", "2021-01-10T12:00+00:00", ("36h", "1d12h"), [("36h", "2021-01-09T00:00:00+00:00")]),
    ("UTC", "2021-01-10T12:00+00:00", ("1w", "1d", "7d"),
     [("1w", "2021-01-03T12:00:00+00:00"), ("1d", "2021-01-09T12:00:00+00:00")]),
    # across a DST change a calendar day is 23 h: "1d" and "24h" are two reminders there
    ("Europe/Berlin", "2021-03-28T12:00+02:00", ("1d", "24h"),
     [("1d", "2021-03-27T12:00:00+01:00"), ("24h", "2021-03-27T11:00:00+01:00")]),
    ("Europe/Berlin", "2021-03-29T12:00+02:00", ("1d", "24h"),
     [("1d", "2021-03-28T12:00:00+02:00")]),
    # a date due's "0d" is 09:00 on the day, 15 h before its end
    ("Asia/Baku", "day:2020-11-15", ("0d", "15h", "PT15H"), [("0d", "2020-11-15T09:00:00+04:00")]),
]


@pytest.mark.parametrize(("zone", "due", "reminders", "expected"), COINCIDING)
def test_offsets_that_land_together_remind_once(
        zone: str, due: str, reminders: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    z = ZoneInfo(zone)
    stage = day_stage(due[4:], z) if due.startswith("day:") else at_stage(due)
    d = deadline(stage, zone=z, reminders=reminders)
    items = [n for n in plan(Schedule(deadlines=(d,)), *EVER) if n.kind == "reminder"]
    assert sorted((n.offset, n.at.astimezone(z).isoformat()) for n in items) == sorted(expected)
    assert all(n.key.endswith(f"/{n.offset}") for n in items)
    # `check`'s warning names the same pairs: each dropped offset with the one kept.
    dropped = {reminders[j]: reminders[i] for j, (i, _, _) in coinciding_reminders(d).items()}
    kept = {offset for offset, _ in expected}
    assert set(dropped) == set(reminders) - kept


def test_interval_is_half_open_and_plan_is_sorted() -> None:
    a = deadline(at_stage("2021-01-10T12:00+00:00"), reminders=("1d", "2h"))
    items = plan(Schedule(deadlines=(a,)), utc("2021-01-09T12:00+00:00"),
                 utc("2021-01-10T12:00+00:00"))
    assert [n.kind for n in items] == ["reminder", "reminder"]
    assert items == sorted(items, key=lambda n: n.at)


def test_channel_kinds_filter_routes() -> None:
    d = deadline(at_stage("2021-01-10T12:00+00:00"), reminders=("1d",),
                 channels=("console", "pager"))
    chans = {"console": Channel("console", ("console://",)),
             "pager": Channel("pager", ("json://x",), frozenset({"due"}))}
    items = plan(Schedule(deadlines=(d,), channels=chans), *EVER)
    assert [(n.kind, n.channels) for n in items] == [
        ("reminder", ("console",)), ("due", ("console", "pager"))]


def test_state_at() -> None:
    d = deadline(day_stage("2020-11-15", BAKU, announced="2020-11-10T00:00+04:00"),
                 day_stage("2020-11-25", BAKU, announced="2020-11-15T18:54+04:00"))
    rows = [(t, standing_at(d, utc(t))) for t in (
        "2020-11-09T00:00+04:00", "2020-11-12T00:00+04:00", "2020-11-16T00:00+04:00",
        "2020-11-27T00:00+04:00")]
    assert [(s.state, s.stage) for _, s in rows] == [
        ("not-announced", 0), ("open", 0), ("open", 1), ("overdue", 1)]
    assert rows[2][1].effective_due - rows[2][1].original_due == timedelta(days=10)


# Kalbajar: due 15 Nov (end of day, Baku), extended to 25 Nov on 15 Nov 18:54,
# completed 27 Nov 12:00. (planned kind and due, when a retry would go) -> why dropped
STALE = [
    ("due", "2020-11-25", "2020-11-26T00:00:30+04:00", None),  # overdue, not closed: stands
    ("due", "2020-11-25", "2020-11-27T12:00+04:00", "deadline completed"),  # at the closure
    ("overdue", "2020-11-25", "2020-11-28T00:00+04:00", "deadline completed"),
    ("reminder", "2020-11-15", "2020-11-15T18:53+04:00", None),
    ("reminder", "2020-11-15", "2020-11-15T18:54+04:00", "due moved to Wed 25 Nov, Baku"),
    ("reminder", "2020-11-25", "2020-11-20T00:00+04:00", None),
    # status messages are never stale
    ("rescheduled", "2020-11-25", "2020-11-28T00:00+04:00", None),
    ("completed", "2020-11-25", "2020-11-28T00:00+04:00", None),
]


@pytest.mark.parametrize(("kind", "day", "at", "reason"), STALE)
def test_a_retry_stands_while_its_deadline_is_open_and_its_due_effective(
        kind: str, day: str, at: str, reason: str | None) -> None:
    d = deadline(day_stage("2020-11-15", BAKU, announced="2020-11-10T00:00+04:00"),
                 day_stage("2020-11-25", BAKU, announced="2020-11-15T18:54+04:00"),
                 closure=Closure("completed", utc("2020-11-27T12:00+04:00")),
                 overdue_every="1d", overdue_limit=1)
    stage = 0 if day == "2020-11-15" else 1
    n = next(n for n in plan(Schedule(deadlines=(d,)), *EVER)
             if n.kind == kind and n.stage == stage)
    assert stale_reason(d, n, utc(at)) == reason


WEEKDAYS = [
    ("1", "mon"), ("0", "sun"), ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"),
    ("5-7", "fri,sat,sun"), ("*/2", "sun,tue,thu,sat"), ("mon-fri", "mon-fri"), ("*", "*"),
    ("1,3", "mon,wed"),
]


@pytest.mark.parametrize(("field", "expected"), WEEKDAYS)
def test_crontab_weekdays_follow_standard_cron(field: str, expected: str) -> None:
    from notifier.schedule.planning import crontab_weekdays  # noqa: PLC0415

    assert crontab_weekdays(field) == expected


def test_weekly_digest_fires_on_monday() -> None:
    days = digest_days(BAKU, "0 8 * * 1", "2020-11-08T00:00+04:00", "2020-11-24T00:00+04:00")
    assert days == ["2020-11-09T08:00:00+04:00", "2020-11-16T08:00:00+04:00",
                    "2020-11-23T08:00:00+04:00"]


@pytest.mark.parametrize(("instant", "text"), [
    (datetime(2020, 11, 15, 20, 0, tzinfo=UTC), "2020-11-15T20:00:00Z"),
    (datetime(2020, 11, 15, 20, 0, 59, 999_999, tzinfo=UTC), "2020-11-15T20:00:59Z"),
    (datetime(2020, 11, 15, 20, 0, tzinfo=timezone(timedelta(0), "Z")), "2020-11-15T20:00:00Z"),
    (datetime(2020, 11, 16, 0, 0, 0, 999_999, tzinfo=ZoneInfo("Asia/Baku")),
     "2020-11-15T20:00:00Z"),
    (datetime(2021, 3, 28, 1, 30, 5, tzinfo=ZoneInfo("Europe/Berlin")), "2021-03-28T00:30:05Z"),
    (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "999-01-02T03:04:05Z"),
])
def test_rfc3339_is_rfc3339_utc_to_the_second(instant: datetime, text: str) -> None:
    # Keys in existing ledgers hold this text: it must never change.
    assert rfc3339(instant) == text


@pytest.mark.parametrize("fold_first", [0, 1])
def test_rfc3339_tells_the_two_readings_of_a_repeated_hour_apart(fold_first: int) -> None:
    # 02:30 on 25 Oct 2026 happens twice in Berlin; the two compare (and hash) equal,
    # so a remembered answer for one must never be given for the other.
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=fold_first)
    second = first.replace(fold=1 - fold_first)
    texts = {0: "2026-10-25T00:30:00Z", 1: "2026-10-25T01:30:00Z"}
    for _ in range(2):
        assert rfc3339(first) == texts[fold_first]
        assert rfc3339(second) == texts[1 - fold_first]
        assert rfc3339(first.astimezone(UTC)) == texts[fold_first]


def test_rfc3339_remembers_a_bounded_number_of_instants() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(text._SECONDS_MAX + 10):
        instant = start + timedelta(seconds=i)
        assert rfc3339(instant) == instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(text._SECONDS) <= text._SECONDS_MAX

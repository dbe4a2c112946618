"""The plan: what a daemon running throughout [start, end) would send. Pure.

`plan(schedule, start, end)` depends on nothing but its arguments: no clock, no
ledger, no channels. The daemon, `plan`, `status` and `replay` all use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from notifier.schedule import timing
from notifier.schedule.model import Channel, Deadline, Digest, Kind, Notification, Schedule
from notifier.schedule.standing import is_open, known
from notifier.text import rfc3339

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_KIND_ORDER = {
    "rescheduled": 0, "reminder": 1, "due": 2, "overdue": 3,
    "completed": 4, "cancelled": 5, "digest": 6, "summary": 7,
}


def notification_key(deadline: str, kind: str, due: datetime, tail: str = "") -> str:
    return f"{deadline}/{kind}/{rfc3339(due)}/{tail}"


def plan(schedule: Schedule, start: datetime, end: datetime) -> list[Notification]:
    """Every notification with `start <= at < end`, ordered by time."""
    items = plan_deadlines(touching(schedule.deadlines, start, end), schedule.channels,
                           start, end)
    if schedule.digest is not None:
        items.extend(plan_digest(schedule, schedule.digest, start, end))
    items.sort(key=order_key)
    return items


def touching(deadlines: Iterable[Deadline], start: datetime, end: datetime) -> list[Deadline]:
    """The deadlines that may have a notification in [start, end)."""
    # Most deadlines have nothing in a short interval: they are skipped unexpanded.
    return [d for d in deadlines if (span := d.span)[1] >= start and span[0] < end]


def plan_deadlines(
    deadlines: Iterable[Deadline], channels: dict[str, Channel], start: datetime, end: datetime,
) -> list[Notification]:
    """The notifications of `deadlines` in [start, end), unsorted (no digests)."""
    items: list[Notification] = []
    for deadline in deadlines:
        items.extend(plan_deadline(deadline, channels, start, end))
    return items


def order_key(n: Notification) -> tuple[int, int, str]:
    """A notification's place in a plan: time (in microseconds), kind, key.

    Plain values, so the plan's order is total and the same in every process.
    """
    return (timing.epoch_us(n.at), _KIND_ORDER[n.kind], n.key)


def _routes(names: tuple[str, ...], channels: dict[str, Channel], kind: str) -> tuple[str, ...]:
    return tuple(c for c in names if c not in channels or channels[c].accepts(kind))


def plan_deadline(
    d: Deadline, channels: dict[str, Channel], start: datetime, end: datetime
) -> list[Notification]:
    """One deadline's notifications in [start, end), unsorted."""
    out: list[Notification] = []
    for instant in _instants(d, start, end):
        routes = _routes(d.channels, channels, instant[1])
        if routes:
            out.append(_built(d, instant, d.channels if routes == d.channels else routes))
    return out


def _active(d: Deadline, stage: int, t: datetime) -> bool:
    """Stage `stage` is the effective due at t, the deadline is known and not closed."""
    return is_open(d, t) and d.stage_at(t) == stage


_Instant = tuple[datetime, Kind, int, str, "str | None", "int | None"]
"""A notification before it is built: at, kind, stage, key tail, offset, seq."""


def _built(d: Deadline, instant: _Instant, channels: tuple[str, ...]) -> Notification:
    at, kind, stage, tail, offset, seq = instant
    due = d.stages[stage].due
    return Notification(
        at=at, kind=kind, deadline=d.id, due=due, offset=offset, seq=seq,
        channels=channels, title=d.title, key=notification_key(d.id, kind, due, tail),
        stage=stage,
    )


def _candidates(d: Deadline, start: datetime, end: datetime) -> Iterator[Notification]:
    """The notifications of `d` with `start <= at < end`, to all of its channels."""
    for instant in _instants(d, start, end):
        yield _built(d, instant, d.channels)


def _instants(d: Deadline, start: datetime, end: datetime) -> Iterator[_Instant]:
    """The notifications of `d` with `start <= at < end` (bounded: reminders, stages,
    overdue limit), unbuilt: a key and a Notification cost more than the instant,
    and the daemon's window holds a few of a deadline's instants."""
    for k, stage in enumerate(d.stages):
        if k > 0 and stage.announced is not None and start <= stage.announced < end \
                and is_open(d, stage.announced):
            yield stage.announced, "rescheduled", k, f"ext{k}", None, k
        if stage.due >= start:  # reminders come before their due
            landed: list[datetime] = []
            for offset in d.reminders:
                at = timing.reminder_instant(stage.due, stage.day, offset, d.zone, d.remind_at)
                if start <= at < end and at < stage.due and _active(d, k, at) \
                        and at not in landed:
                    # Offsets that land together ("7d", "1w") remind once: the first listed.
                    landed.append(at)
                    yield at, "reminder", k, offset.text, offset.text, None
        if not _active(d, k, stage.due):
            continue
        if start <= stage.due < end:
            yield stage.due, "due", k, "", None, None
        if d.overdue_every is not None:
            for n in range(1, d.overdue_limit + 1):
                at = timing.after(stage.due, d.overdue_every, d.zone, n)
                if not _active(d, k, at):
                    break
                if start <= at < end:
                    yield at, "overdue", k, str(n), None, n
    if d.closure is not None and start <= d.closure.at < end and known(d, d.closure.at):
        yield d.closure.at, d.closure.kind, d.stage_at(d.closure.at), "", None, None


def coinciding_reminders(d: Deadline) -> dict[int, tuple[int, int, datetime]]:
    """Reminder index j -> (i, stage, instant): offset j lands on the same instant as the
    earlier offset i before a due of `d` (the first such due and i), so the planner
    sends i's reminder only."""
    found: dict[int, tuple[int, int, datetime]] = {}
    for k, stage in enumerate(d.stages):
        for i, j in timing.coinciding_candidates(d.reminders, d.zone, stage.day is not None,
                                                 d.remind_at):
            if j in found:
                continue
            at = timing.reminder_instant(stage.due, stage.day, d.reminders[i], d.zone,
                                         d.remind_at)
            if at < stage.due and at == timing.reminder_instant(
                    stage.due, stage.day, d.reminders[j], d.zone, d.remind_at):
                found[j] = (i, k, at)
    return found


def unplanned_reminders(d: Deadline) -> list[tuple[str, int]]:
    """(offset, stage) pairs whose reminder would land at or after its due."""
    bad: list[tuple[str, int]] = []
    for k, stage in enumerate(d.stages):
        for offset in timing.unsure_offsets(d.reminders, d.zone, stage.day is not None,
                                            d.remind_at):
            if not timing.lands_before(stage.due, stage.day, offset, d.zone, d.remind_at):
                bad.append((offset.text, k))
    return bad


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_weekdays(field: str) -> str:
    """Standard cron weekdays (0 or 7 = Sunday) as names for APScheduler.

    APScheduler 3.x reads weekday numbers with 0 = Monday, even in
    `CronTrigger.from_crontab`, so "0 8 * * 1" would fire on Tuesdays.
    Numbers, ranges and steps are expanded to names; names pass through.
    """
    out: list[str] = []
    for token in field.split(","):
        base, _, step_text = token.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if base == "*" and step is None:
            out.append("*")
            continue
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base and all(p.isdigit() for p in base.split("-", 1)):
            lo, hi = (int(p) for p in base.split("-", 1))
        elif base.isdigit():
            lo = hi = int(base)
            if step is not None:
                hi = 6
        else:
            out.append(token)
            continue
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
            raise ValueError(f"weekday out of range in {token!r} (0-7, 0 and 7 are Sunday)")
        out.extend(dict.fromkeys(_DAY_NAMES[d] for d in range(lo, hi + 1, step or 1)))
    return ",".join(dict.fromkeys(out))


_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minute", 0, 59, (), "0-59"),
    ("hour", 0, 23, (), "0-23"),
    ("day", 1, 31, (), "1-31"),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                      "nov", "dec"), "1-12 or jan-dec"),
    ("weekday", 0, 7, _DAY_NAMES[:7], "0-7 (0 and 7 are Sunday) or sun-sat"),
)
CRON_FORM = "need a 5-field cron expression (minute hour day month weekday), e.g. '0 8 * * 1-5'"


def cron_problem(expr: str) -> str | None:
    """What is wrong with a 5-field cron expression, in words that quote none of it."""
    fields = expr.split()
    if len(fields) != len(_CRON_FIELDS):
        return CRON_FORM
    for text, (field, lo, hi, names, allowed) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            base, slash, step = item.partition("/")
            if slash and not (step.isdigit() and int(step) >= 1):
                return f"{field} field: a step (/N) must be a whole number, 1 or more"
            if base == "*":
                continue
            values = [names.index(v.lower()) + lo if v.lower() in names else
                      int(v) if v.isdigit() else -1 for v in base.split("-", 1)]
            if any(not lo <= v <= hi for v in values):
                return f"{field} field: must be {allowed}"
            if values != sorted(values):
                return f"{field} field: a range goes from low to high (e.g. 1-5)"
    return None


@lru_cache(maxsize=64)
def cron_trigger(expr: str) -> CronTrigger:
    """The wall-clock times a 5-field cron names, on a clock without DST.

    Evaluated in UTC on local wall times written as UTC times, so every day has
    all its 24 hours; `digest_instants` reads each in the digest's zone. (Given
    the zone itself, APScheduler drops a wall time that the clocks skip when the
    change falls at the day's first cron time, e.g. at local midnight.)
    """
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 - slow import, digest only

    minute, hour, day, month, weekday = expr.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=crontab_weekdays(weekday), timezone=UTC)


_DIGEST_MARGIN = timedelta(days=2)
"""Wall days looked at beyond [start, end): an offset change moves an instant off its
wall date by at most a day (Samoa skipped a whole one)."""


def digest_instants(
    digest: Digest, start: datetime, end: datetime
) -> Iterator[tuple[date, datetime]]:
    """(local date, instant) of the digest in [start, end): each date's first cron time.

    A wall time the clocks skip is moved forward by the gap, a repeated one is its
    first reading (fold=0); either way it stays the digest of the date it names,
    even when a gap at the end of a day moves it past midnight.
    """
    trigger = cron_trigger(digest.schedule)
    zone = digest.zone
    day = start.astimezone(zone).date() - _DIGEST_MARGIN
    last = end.astimezone(zone).date() + _DIGEST_MARGIN
    while day <= last:
        wall = trigger.get_next_fire_time(None, datetime.combine(day, time(), tzinfo=UTC))
        if wall is None:
            return
        day = wall.date()
        if day > last:
            return
        at = datetime.combine(day, wall.time(), tzinfo=zone).astimezone(UTC)
        if start <= at < end:
            yield day, at
        day += timedelta(days=1)


def plan_digest(
    schedule: Schedule, digest: Digest, start: datetime, end: datetime
) -> list[Notification]:
    routes = _routes(digest.channels, schedule.channels, "digest")
    if not routes:
        return []
    out = []
    for day, at in digest_instants(digest, start, end):
        if digest.always or any(is_open(d, at) for d in schedule.deadlines):
            out.append(Notification(
                at=at, kind="digest", deadline=None, due=None, offset=None, seq=None,
                channels=routes, title="digest", key=f"digest/{day.isoformat()}", stage=None,
            ))
    return out


def next_notification(
    schedule: Schedule, now: datetime, horizon: timedelta = timedelta(days=400)
) -> Notification | None:
    """The first notification at or after `now`, looking at most `horizon` ahead."""
    # Widening steps (1 day, 2, 4, ...): the first non-empty one holds the answer,
    # and a large schedule is not expanded over the whole horizon to find it.
    end = now + horizon
    start, step = now, timedelta(days=1)
    while start < end:
        stop = min(start + step, end)
        items = plan(schedule, start, stop)
        if items:
            return items[0]
        start, step = stop, step * 2
    return None


def next_for_deadline(
    d: Deadline, channels: dict[str, Channel], now: datetime
) -> Notification | None:
    """`d`'s first notification from `now` on, in plan order, or None. Only the
    earliest instants are built (a deadline has a few dozen to come; status asks
    each deadline of the file)."""
    first: list[Notification] = []
    best: tuple[int, int] | None = None
    for instant in _instants(d, now, _FOREVER):
        at, kind = instant[0], instant[1]
        place = (timing.epoch_us(at), _KIND_ORDER[kind])
        if best is not None and place > best:
            continue
        routes = _routes(d.channels, channels, kind)
        if not routes:
            continue
        if best is None or place < best:
            best, first = place, []
        first.append(_built(d, instant, d.channels if routes == d.channels else routes))
    return min(first, key=order_key) if first else None


_FOREVER = datetime.max.replace(tzinfo=UTC)


"""A random year-long schedule over several zones, for replay-versus-plan tests."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from support.configs import toml_str
from support.times import D, S, rfc3339

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Baku",
         "America/Santiago", "Asia/Kolkata", "Pacific/Chatham")
REMINDER_SETS: tuple[list[str], ...] = (
    ["7d", "1d"], ["3d", "1d", "0d"], ["2h"], ["1w", "1d12h", "30m"], ["PT6H", "P2D"], [],
    ["14d", "7d", "3d", "1d", "2h"],
)
OVERDUE = ("12h", "1d", "1w", "2d6h")


@dataclass
class RandomSchedule:
    text: str
    deadlines: int
    extensions: int
    completed: int
    cancelled: int
    overdue: int
    zones: dict[str, int] = field(default_factory=dict)


def _local_ok(t: datetime, zone: ZoneInfo) -> bool:
    """A naive local time that exists once in `zone` (no DST gap, no fold)."""
    a, b = t.replace(tzinfo=zone, fold=0), t.replace(tzinfo=zone, fold=1)
    if a.utcoffset() != b.utcoffset():
        return False
    back = a.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == t


def _when_text(rng: random.Random, t: datetime, zone: ZoneInfo, *, allow_date: bool) -> str:
    """`t` written as a TOML date, local datetime or offset datetime, at random."""
    local = t.astimezone(zone)
    choice = rng.random()
    if allow_date and choice < 0.4:
        return local.date().isoformat()
    naive = local.replace(tzinfo=None, microsecond=0)
    if choice < 0.7 and _local_ok(naive, zone):
        return naive.isoformat()
    return local.replace(microsecond=0).isoformat()


def random_schedule(seed: int, *, start: datetime, end: datetime, count: int,
                    state: Path, channels: dict[str, str],
                    default_zone: str = "Australia/Lord_Howe") -> RandomSchedule:
    """A year-long schedule of `count` deadlines over several zones, with extensions
    announced at random times, completions, cancellations, overdue repeats and a
    weekly digest (Sundays 01:45 in Lord Howe: once a year inside the repeated
    half hour of its 30-minute DST change).

    Every deadline and extension carries an explicit `announced`, so `plan`
    and a daemon agree on what is known when without first-seen times.
    Channel "a" takes every kind; "b" only reminders, dues, overdues and digests.
    """
    rng = random.Random(seed)
    names = list(channels)
    out = [
        "[notifier]", f"state = {toml_str(str(state))}", 'log_level = "INFO"', "",
        "[defaults]", f"timezone = {toml_str(default_zone)}", 'reminders = ["1d"]',
        'remind_at = "09:00"', "",
        "[delivery]", 'catchup = "24h"', "",
        "[digest]", 'schedule = "45 1 * * 0"', f"channels = {json.dumps(names[:1])}", "",
    ]
    for name, url in channels.items():
        out += [f"[channels.{name}]", f"url = {toml_str(url)}"]
        if name != names[0]:
            out.append('kinds = ["reminder", "due", "overdue", "digest"]')
        out.append("")
    sched = RandomSchedule("", count, 0, 0, 0, 0)
    span = (end - start).total_seconds()
    for i in range(count):
        zone_name = rng.choice(ZONES)
        zone = ZoneInfo(zone_name)
        sched.zones[zone_name] = sched.zones.get(zone_name, 0) + 1
        # Dues over the year and a little beyond both ends, at odd times.
        due = start + timedelta(seconds=rng.uniform(-0.05 * span, 1.05 * span))
        due = due.replace(second=0, microsecond=0)
        announced = due - timedelta(hours=rng.uniform(6, 24 * 60))
        lines = ["[[deadlines]]", f'id = "d{i:04d}"',
                 f'title = "Deadline {i} ({zone_name})"',
                 f"timezone = {toml_str(zone_name)}",
                 f"due = {_when_text(rng, due, zone, allow_date=True)}",
                 f"announced = {rfc3339(announced.replace(microsecond=0))}"]
        if rng.random() < 0.85:
            lines.append(f"reminders = {json.dumps(rng.choice(REMINDER_SETS))}")
        pick = rng.random()
        if pick < 0.4:
            lines.append(f"channels = {json.dumps(names[:1])}")
        elif pick < 0.6:
            lines.append(f"channels = {json.dumps(names[1:2])}")
        if rng.random() < 0.3:
            sched.overdue += 1
            lines += [f"overdue_every = {toml_str(rng.choice(OVERDUE))}",
                      f"overdue_limit = {rng.randint(1, 4)}"]
        exts: list[str] = []
        last_due, last_announced = due, announced
        for k in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
            # Announced at a random moment between the last announcement and a
            # little after the current due (an extension after the due passed).
            when = last_announced + (last_due + 2 * D - last_announced) * rng.random()
            when = when.replace(microsecond=0) + S
            new_due = last_due + timedelta(hours=rng.uniform(-48, 24 * 20))
            if new_due <= when:
                new_due = when + timedelta(hours=rng.uniform(2, 200))
            new_due = new_due.replace(second=0, microsecond=0)
            local_due = new_due.astimezone(zone)
            if local_due.date() == last_due.astimezone(zone).date() or local_due.time() == time():
                # Either could be written as the same date (or as that date's end): an
                # extension to the due it replaces is a config error.
                new_due += D + timedelta(minutes=1)
            exts += ["[[deadlines.extensions]]",
                     f"due = {_when_text(rng, new_due, zone, allow_date=True)}",
                     f"announced = {rfc3339(when)}",
                     f'reason = "reason {i}.{k}: roads"', f'source = "source {i}.{k}"', ""]
            sched.extensions += 1
            last_due, last_announced = new_due, when
        closing = rng.random()
        if closing < 0.2:
            when = announced + (last_due + 3 * D - announced) * rng.random()
            kind = "completed" if closing < 0.15 else "cancelled"
            if kind == "completed":
                sched.completed += 1
            else:
                sched.cancelled += 1
            lines += [f"{kind} = {rfc3339(when.replace(microsecond=0))}", f'note = "closed {i}"']
        out += [*lines, "", *exts]
    sched.text = "\n".join(out) + "\n"
    return sched

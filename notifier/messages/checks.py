"""Template checks: what `notifier check` reports about templates, found by rendering samples.

Every template (built-in or overridden) is rendered against the plan's
notifications and a built-in reference schedule with every kind in it, on
time and late, so a misspelt variable or a failing expression is reported
before the daemon runs, located by kind and part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notifier.messages.context import (
    Context,
    counts_days,
    notification_context,
    summary_context,
    test_context,
)
from notifier.messages.render import Renderer, TemplateProblem
from notifier.schedule.model import Closure, Deadline, Notification, Schedule, Stage
from notifier.schedule.standing import state_at

_EMPTY_TITLE = "renders to an empty title"


def template_problems(
    renderer: Renderer, schedule: Schedule, notifications: Iterable[Notification], *,
    now: datetime,
) -> list[TemplateProblem]:
    """Render every template against samples; the problems found, one per (kind, part, message).

    Samples: `notifications` (e.g. the plan) on `schedule`, one of each
    distinct variant (kind, deadline, due, stage in effect; for digests the
    state of every deadline), each on time and late; one built-in sample of
    every kind (an extended, closed, overdue reference deadline with notes,
    link and history); a digest of `schedule` at `now`; summaries; a test
    message.
    """
    found: dict[tuple[str, str, str], TemplateProblem] = {}

    def attempt(kind: str, ctx: Context) -> None:
        for part in ("title", "body"):
            try:
                text = renderer.render_part(kind, part, ctx)
            except TemplateProblem as problem:
                found.setdefault((problem.kind, problem.part, problem.message), problem)
                continue
            if part == "title" and not text:
                found.setdefault((kind, "title", _EMPTY_TITLE),
                                 TemplateProblem(kind, "title", _EMPTY_TITLE))

    given = list(notifications)
    sample_schedule, samples = sample_notifications()
    distinct: dict[tuple[object, ...], Notification] = {}
    for n in given:
        distinct.setdefault(_variant(n, schedule), n)
    runs: list[tuple[Notification, Schedule]] = [(n, schedule) for n in distinct.values()]
    runs += [(n, sample_schedule) for n in samples]
    digest_now = Notification(at=now, kind="digest", deadline=None, due=None, offset=None,
                              seq=None, channels=(), title="digest", key="digest/check",
                              stage=None)
    runs.append((digest_now, schedule))
    for n, sched in runs:
        for sent_at in (n.at, n.at + timedelta(hours=3)):
            attempt(n.kind, notification_context(n, sched, sent_at=sent_at))
    late = [n for n in given if n.deadline is not None][:3] or samples[:2]
    attempt("summary", summary_context(given[:5], late, schedule, now=now))
    attempt("summary", summary_context(samples, samples[:1], sample_schedule, now=now))
    attempt("summary", summary_context([], samples[:1], sample_schedule, now=now))
    attempt("summary", summary_context([], [], schedule, now=now))
    attempt("test", test_context("example", now=now, zone=schedule.zone))
    return list(found.values())


def _variant(n: Notification, schedule: Schedule) -> tuple[object, ...]:
    """What can change which template branches run: notifications alike render alike."""
    if n.deadline is None:
        return (n.kind, tuple((d.id, state_at(d, n.at), d.stage_at(n.at))
                              for d in schedule.deadlines))
    return (n.kind, n.deadline, n.due, n.stage, counts_days(n.offset))


# --------------------------------------------------------------------------
# Samples for `check`: the reference schedule, with every kind represented
# --------------------------------------------------------------------------


def sample_notifications() -> tuple[Schedule, list[Notification]]:
    """A small schedule and one notification of every kind on it (for `check`)."""
    baku = ZoneInfo("Asia/Baku")

    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    kalbajar = Deadline(
        id="kalbajar", title="Kalbajar withdrawal", zone=baku,
        stages=(
            Stage(due=utc("2020-11-15T20:00"), day=date(2020, 11, 15),
                  announced=utc("2020-11-09T21:00")),
            Stage(due=utc("2020-11-25T20:00"), day=date(2020, 11, 25),
                  announced=utc("2020-11-15T14:54"),
                  reason="more time requested citing damaged roads",
                  source="presidential assistant"),
        ),
        reminders=(), channels=("ops",), remind_at=time(9),
        notes="sample notes", url="https://example.org/kalbajar", tags=("handover",),
    )
    aghdam = replace(
        kalbajar, id="aghdam", title="Aghdam withdrawal", url=None, notes=None, tags=(),
        stages=(Stage(due=utc("2020-11-20T20:00"), day=date(2020, 11, 20),
                      announced=utc("2020-11-09T21:00")),),
        closure=Closure(kind="completed", at=utc("2020-11-20T06:00"), note="handed over"),
    )
    lachin = replace(
        kalbajar, id="lachin", title="Lachin withdrawal", notes=None,
        stages=(Stage(due=utc("2020-12-01T14:00"), day=None, announced=None),
                Stage(due=utc("2020-11-28T14:00"), day=None, announced=utc("2020-11-16T10:00"),
                      reason=None, source=None)),
        closure=Closure(kind="cancelled", at=utc("2020-11-29T10:00")),
    )
    schedule = Schedule(deadlines=(kalbajar, aghdam, lachin), zone=baku)
    ext = kalbajar.stages[1]

    def make(at: datetime, kind: Any, d: Deadline | None, stage: int | None = None, *,
             offset: str | None = None, seq: int | None = None) -> Notification:
        return Notification(at=at, kind=kind, deadline=d.id if d else None,
                            due=d.stages[stage].due if d and stage is not None else None,
                            offset=offset, seq=seq, channels=("ops",),
                            title=d.title if d else "digest", key=f"sample/{kind}/{at}",
                            stage=stage)

    samples = [
        make(utc("2020-11-14T05:00"), "reminder", kalbajar, 0, offset="1d"),
        make(utc("2020-11-24T05:00"), "reminder", kalbajar, 1, offset="1d"),
        make(utc("2020-11-25T05:00"), "reminder", kalbajar, 1, offset="0d"),
        make(utc("2020-11-25T18:00"), "reminder", kalbajar, 1, offset="2h"),
        make(ext.announced or ext.due, "rescheduled", kalbajar, 1, seq=1),
        make(utc("2020-11-16T10:00"), "rescheduled", lachin, 1, seq=1),
        make(ext.due, "due", kalbajar, 1),
        make(utc("2020-11-26T20:00"), "overdue", kalbajar, 1, seq=1),
        make(utc("2020-11-20T06:00"), "completed", aghdam, 0),
        make(utc("2020-11-29T10:00"), "cancelled", lachin, 1),
        make(utc("2020-11-20T04:00"), "digest", None),
        make(utc("2020-11-27T04:00"), "digest", None),
    ]
    return schedule, samples

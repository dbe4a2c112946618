"""Messages as an operator sees them: exact titles and bodies from the reference schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.messages.checks import sample_notifications, template_problems
from notifier.messages.context import notification_context
from notifier.messages.render import Message, Renderer, TemplateProblem
from notifier.messages.templates import DEFAULT_TEMPLATES, TEMPLATE_KINDS, TemplateSource
from notifier.schedule.model import Closure, Deadline, Digest, Kind, Notification, Schedule, Stage
from notifier.schedule.standing import state_at
from notifier.wording import calendar_split, duration_text, zone_city

BAKU = ZoneInfo("Asia/Baku")
REASON = "Armenia requested more time citing damaged roads; granted as a humanitarian measure"
SOURCE = "Azerbaijani presidential assistant, 15 Nov 2020"
HISTORY_LINE = f"extended on 15 Nov from 15 Nov to 25 Nov (+10 days): {REASON}; {SOURCE}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ORIGINAL = Stage(due=utc("2020-11-15T20:00"), day=date(2020, 11, 15),
                 announced=utc("2020-11-09T21:00"))
EXTENSION = Stage(due=utc("2020-11-25T20:00"), day=date(2020, 11, 25),
                  announced=utc("2020-11-15T14:54"), reason=REASON, source=SOURCE)
KALBAJAR = Deadline(
    id="kalbajar", title="Kalbajar withdrawal", zone=BAKU, stages=(ORIGINAL, EXTENSION),
    reminders=(), channels=("ops",), remind_at=time(9),
)
AGHDAM = Deadline(
    id="aghdam", title="Aghdam withdrawal", zone=BAKU,
    stages=(Stage(due=utc("2020-11-20T20:00"), day=date(2020, 11, 20),
                  announced=utc("2020-11-09T21:00")),),
    reminders=(), channels=("ops",), remind_at=time(9),
)
LACHIN = Deadline(
    id="lachin", title="Lachin withdrawal", zone=BAKU,
    stages=(Stage(due=utc("2020-12-01T20:00"), day=date(2020, 12, 1),
                  announced=utc("2020-11-09T21:00")),),
    reminders=(), channels=("ops",), remind_at=time(9),
)
SCHEDULE = Schedule(deadlines=(KALBAJAR, AGHDAM, LACHIN), zone=BAKU)


def note(at: datetime, kind: Kind, d: Deadline | None = KALBAJAR, due: datetime | None = None,
         *, offset: str | None = None, seq: int | None = None) -> Notification:
    # The stage the planner gives: the extension a `rescheduled` announces, else the due in
    # effect at `at` (a reminder, due or overdue is planned only while its due is in effect).
    stage = None if d is None else seq if kind == "rescheduled" else d.stage_at(at)
    return Notification(
        at=at, kind=kind, deadline=d.id if d else None, due=due, offset=offset, seq=seq,
        channels=("ops",), title=d.title if d else "digest",
        key=f"{d.id if d else 'digest'}/{kind}/{at.isoformat()}", stage=stage,
    )


def on_time(n: Notification, schedule: Schedule = SCHEDULE,
            renderer: Renderer | None = None) -> Message:
    return (renderer or Renderer()).render(n, schedule, sent_at=n.at)


# --- reminders ---------------------------------------------------------------


def test_reminder_one_day_before_extended_date_due() -> None:
    m = on_time(note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d"))
    assert m.title == "Kalbajar withdrawal: due in 1 day (Wed 25 Nov, Baku)"
    assert m.body == (
        "Kalbajar withdrawal is due by the end of Wed 25 Nov, Baku (in 1 day).\n"
        "History (originally due Sun 15 Nov, Baku):\n"
        f"{HISTORY_LINE}"
    )


def test_reminder_on_the_day_says_due_today() -> None:
    m = on_time(note(utc("2020-11-25T05:00"), "reminder", due=EXTENSION.due, offset="0d"))
    assert m.title == "Kalbajar withdrawal: due today (Wed 25 Nov, Baku)"
    assert m.body.startswith("Kalbajar withdrawal is due by the end of Wed 25 Nov, Baku (today).")


def test_reminder_with_hour_offset_counts_exact_time_on_a_date_due() -> None:
    m = on_time(note(utc("2020-11-25T18:00"), "reminder", due=EXTENSION.due, offset="2h"))
    assert m.title == "Kalbajar withdrawal: due in 2 h (Wed 25 Nov, Baku)"


def test_reminder_before_the_extension_shows_no_history() -> None:
    m = on_time(note(utc("2020-11-12T05:00"), "reminder", due=ORIGINAL.due, offset="3d"))
    assert m.title == "Kalbajar withdrawal: due in 3 days (Sun 15 Nov, Baku)"
    assert "History" not in m.body
    assert "extended" not in m.body


def test_reminder_body_carries_notes_url_and_tags() -> None:
    d = replace(KALBAJAR, notes="Check with the liaison office",
                url="https://example.org/kalbajar", tags=("handover", "army"))
    schedule = replace(SCHEDULE, deadlines=(d,))
    m = on_time(note(utc("2020-11-24T05:00"), "reminder", d, EXTENSION.due, offset="1d"),
                schedule)
    assert m.body.splitlines()[-3:] == [
        "Notes: Check with the liaison office",
        "Link: https://example.org/kalbajar",
        "Tags: handover, army",
    ]


def test_datetime_due_shows_time_and_city() -> None:
    d = Deadline(id="talks", title="Talks", zone=ZoneInfo("Europe/Moscow"),
                 stages=(Stage(due=utc("2020-11-25T14:00"), day=None, announced=None),),
                 reminders=(), channels=("ops",), remind_at=time(9))
    schedule = Schedule(deadlines=(d,))
    m = on_time(note(utc("2020-11-23T10:00"), "reminder", d, d.stages[0].due, offset="2d4h"),
                schedule)
    assert m.title == "Talks: due in 2 days 4 h (Wed 25 Nov 17:00, Moscow)"
    assert m.body.startswith("Talks is due Wed 25 Nov 17:00, Moscow (in 2 days 4 h).")


def test_date_due_with_due_time_is_shown_as_a_datetime() -> None:
    stage = Stage(due=utc("2020-11-25T13:00"), day=date(2020, 11, 25), announced=None)
    d = replace(KALBAJAR, stages=(stage,))
    m = on_time(note(utc("2020-11-25T05:00"), "reminder", d, stage.due, offset="0d"),
                Schedule(deadlines=(d,)))
    assert m.title == "Kalbajar withdrawal: due in 8 h (Wed 25 Nov 17:00, Baku)"


def test_utc_zone_is_named_utc_and_other_years_are_shown() -> None:
    d = Deadline(id="x", title="Renewal", zone=ZoneInfo("UTC"),
                 stages=(Stage(due=utc("2021-01-02T00:00"), day=date(2021, 1, 1),
                               announced=None),),
                 reminders=(), channels=("ops",), remind_at=time(9))
    m = on_time(note(utc("2020-12-25T09:00"), "reminder", d, d.stages[0].due, offset="7d"),
                Schedule(deadlines=(d,)))
    assert m.title == "Renewal: due in 7 days (Fri 1 Jan 2021, UTC)"


# --- lateness ----------------------------------------------------------------


def test_late_by_is_shown_when_more_than_a_minute_late() -> None:
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    m = Renderer().render(n, SCHEDULE, sent_at=n.at + timedelta(hours=3, seconds=20))
    assert m.body.endswith("Sent late by 3 h (planned for Tue 24 Nov 09:00, Baku).")
    ctx = notification_context(n, SCHEDULE, sent_at=n.at + timedelta(hours=3))
    assert ctx["late_by"] == "3 h"


def test_a_few_seconds_late_is_not_late() -> None:
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    m = Renderer().render(n, SCHEDULE, sent_at=n.at + timedelta(seconds=60))
    assert "late" not in m.body
    assert notification_context(n, SCHEDULE, sent_at=n.at + timedelta(seconds=59))["late_by"] is None


def test_late_due_message_says_was_due() -> None:
    n = note(EXTENSION.due, "due", due=EXTENSION.due)
    m = Renderer().render(n, SCHEDULE, sent_at=n.at + timedelta(hours=3))
    assert m.title == "Kalbajar withdrawal: was due Wed 25 Nov, Baku"
    assert "Sent late by 3 h (planned for Thu 26 Nov 00:00, Baku)." in m.body


# --- rescheduled -------------------------------------------------------------


def test_rescheduled_extension_reads_from_to_and_days() -> None:
    m = on_time(note(EXTENSION.announced or EXTENSION.due, "rescheduled", due=EXTENSION.due,
                     seq=1))
    assert m.title == "Kalbajar withdrawal: extended by 10 days, from 15 Nov to 25 Nov"
    assert m.body == (
        f"{HISTORY_LINE}\n"
        "Now due by the end of Wed 25 Nov, Baku (in 10 days); "
        "originally due Sun 15 Nov, Baku."
    )
    ctx = notification_context(
        note(utc("2020-11-15T14:54"), "rescheduled", due=EXTENSION.due, seq=1),
        SCHEDULE, sent_at=utc("2020-11-15T14:54"))
    assert ctx["extension"]["summary"] == "extended by 10 days, from 15 Nov to 25 Nov"
    assert ctx["extension"]["delta_text"] == "+10 days"


def test_brought_forward_uses_negative_days() -> None:
    earlier = Stage(due=utc("2020-11-13T20:00"), day=date(2020, 11, 13),
                    announced=utc("2020-11-11T08:00"), reason="agreed at talks")
    d = replace(KALBAJAR, stages=(ORIGINAL, earlier))
    m = on_time(note(utc("2020-11-11T08:00"), "rescheduled", d, earlier.due, seq=1),
                Schedule(deadlines=(d,)))
    assert m.title == "Kalbajar withdrawal: brought forward by 2 days, from 15 Nov to 13 Nov"
    assert m.body.splitlines()[0] == (
        "brought forward on 11 Nov from 15 Nov to 13 Nov (-2 days): agreed at talks"
    )


def test_part_day_change_is_an_exact_duration() -> None:
    first = Stage(due=utc("2020-11-25T13:00"), day=None, announced=None)
    later = Stage(due=utc("2020-11-25T15:30"), day=None, announced=utc("2020-11-20T08:00"))
    d = replace(KALBAJAR, stages=(first, later))
    m = on_time(note(utc("2020-11-20T08:00"), "rescheduled", d, later.due, seq=1),
                Schedule(deadlines=(d,)))
    assert m.title == (
        "Kalbajar withdrawal: extended by 2 h 30 min, from 25 Nov 17:00 to 25 Nov 19:30")
    assert m.body.splitlines()[0] == (
        "extended on 20 Nov from 25 Nov 17:00 to 25 Nov 19:30 (+2 h 30 min)"
    )


def test_change_across_dst_counts_calendar_days() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 17:00 CEST on 20 Oct -> 17:00 CET on 27 Oct: 7 calendar days, 169 real hours.
    first = Stage(due=datetime(2020, 10, 20, 17, tzinfo=berlin).astimezone(UTC), day=None,
                  announced=None)
    later = Stage(due=datetime(2020, 10, 27, 17, tzinfo=berlin).astimezone(UTC), day=None,
                  announced=utc("2020-10-01T08:00"))
    d = Deadline(id="b", title="Berlin", zone=berlin, stages=(first, later), reminders=(),
                 channels=("ops",), remind_at=time(9))
    m = on_time(note(utc("2020-10-01T08:00"), "rescheduled", d, later.due, seq=1),
                Schedule(deadlines=(d,)))
    assert m.title == "Berlin: extended by 7 days, from 20 Oct 17:00 to 27 Oct 17:00"


def test_history_without_reason_source_or_announcement_is_still_a_clean_line() -> None:
    bare = Stage(due=EXTENSION.due, day=EXTENSION.day, announced=None)
    d = replace(KALBAJAR, stages=(ORIGINAL, bare))
    ctx = notification_context(note(utc("2020-11-24T05:00"), "reminder", d, bare.due, offset="1d"),
                             Schedule(deadlines=(d,)), sent_at=utc("2020-11-24T05:00"))
    assert ctx["history_text"] == "extended from 15 Nov to 25 Nov (+10 days)"


# --- due, overdue, closed ------------------------------------------------------


def test_due_now() -> None:
    m = on_time(note(EXTENSION.due, "due", due=EXTENSION.due))
    assert m.title == "Kalbajar withdrawal: due now (Wed 25 Nov, Baku)"
    assert m.body.startswith("Kalbajar withdrawal is now due: by the end of Wed 25 Nov, Baku.\n")
    assert HISTORY_LINE in m.body


def test_overdue_by_days() -> None:
    m = on_time(note(utc("2020-11-27T20:00"), "overdue", due=EXTENSION.due, seq=2))
    assert m.title == "Kalbajar withdrawal: overdue by 2 days"
    assert m.body.startswith(
        "Kalbajar withdrawal is overdue by 2 days: it was due by the end of Wed 25 Nov, Baku.")
    assert HISTORY_LINE in m.body


@pytest.mark.parametrize("kind", ["completed", "cancelled"])
def test_closed_with_note(kind: Literal["completed", "cancelled"]) -> None:
    at = utc("2020-11-25T08:00")
    d = replace(KALBAJAR, closure=Closure(kind=kind, at=at, note="Troops left the district"))
    m = on_time(note(at, kind, d, EXTENSION.due), Schedule(deadlines=(d,)))
    assert m.title == f"Kalbajar withdrawal: {kind}"
    assert m.body.splitlines()[:4] == [
        f"Kalbajar withdrawal was {kind} on Wed 25 Nov 12:00, Baku.",
        "Note: Troops left the district",
        "It was due by the end of Wed 25 Nov, Baku.",
        "History (originally due Sun 15 Nov, Baku):",
    ]


# --- digest --------------------------------------------------------------------


def test_digest_lists_open_and_overdue_deadlines_with_history() -> None:
    done = replace(AGHDAM, closure=Closure(kind="completed", at=utc("2020-11-20T06:00")))
    later = replace(LACHIN, id="future", title="Future",
                    stages=(replace(LACHIN.stages[0], announced=utc("2020-12-01T00:00")),))
    overdue = replace(AGHDAM, id="late", title="Late one")
    schedule = Schedule(deadlines=(KALBAJAR, done, later, overdue, LACHIN), zone=BAKU,
                        digest=Digest(schedule="0 8 * * *", zone=BAKU, channels=("ops",)))
    m = on_time(note(utc("2020-11-24T04:00"), "digest", None), schedule)
    assert m.title == "notifier digest: 3 open deadlines, 1 overdue"
    assert m.body == (
        "- Late one: overdue, due Fri 20 Nov, Baku (overdue by 3 days 8 h)\n"
        "- Kalbajar withdrawal: open, due Wed 25 Nov, Baku (in 1 day)\n"
        f"    {HISTORY_LINE}\n"
        "- Lachin withdrawal: open, due Tue 1 Dec, Baku (in 7 days)\n"
        "As of Tue 24 Nov 08:00, Baku."
    )


def test_digest_singular_and_empty() -> None:
    one = Schedule(deadlines=(LACHIN,), zone=BAKU)
    assert on_time(note(utc("2020-11-24T04:00"), "digest", None), one).title == (
        "notifier digest: 1 open deadline")
    none = Schedule(deadlines=(), zone=BAKU)
    m = on_time(note(utc("2020-11-24T04:00"), "digest", None), none)
    assert m.title == "notifier digest: no open deadlines"
    assert m.body.startswith("No open deadlines.")


def test_state_at() -> None:
    assert state_at(KALBAJAR, utc("2020-11-01T00:00")) == "not-announced"
    assert state_at(KALBAJAR, utc("2020-11-15T10:00")) == "open"
    # Between the original due and the extension's announcement it was overdue.
    assert state_at(replace(KALBAJAR, stages=(ORIGINAL, replace(
        EXTENSION, announced=utc("2020-11-16T10:00")))), utc("2020-11-16T00:00")) == "overdue"
    assert state_at(KALBAJAR, utc("2020-11-16T00:00")) == "open"
    closed = replace(KALBAJAR, closure=Closure(kind="cancelled", at=utc("2020-11-20T00:00")))
    assert state_at(closed, utc("2020-11-21T00:00")) == "cancelled"


def test_at_the_due_instant_a_message_says_overdue_as_status_does() -> None:
    # The due instant is when the deadline falls due (README, "Choices where the
    # spec is silent"): its `due` message, sent at it, sees it overdue, not open.
    due = EXTENSION.due
    r = Renderer({"due": TemplateSource(title="{{ deadline.state }}", body="{{ status_text }}")})
    m = on_time(note(due, "due", due=due), renderer=r)
    assert (m.title, m.body) == ("overdue", "due now")
    before = due - timedelta(seconds=1)
    assert on_time(note(before, "due", due=due), renderer=r).title == "open"
    digest = on_time(note(due, "digest", None))
    assert "- Kalbajar withdrawal: overdue, due Wed 25 Nov, Baku (now)" in digest.body.splitlines()
    assert state_at(KALBAJAR, due) == "overdue"
    assert state_at(KALBAJAR, before) == "open"


# --- summary and test messages ---------------------------------------------------


def test_catch_up_summary() -> None:
    skipped = [
        note(utc("2020-11-22T05:00"), "reminder", due=EXTENSION.due, offset="3d"),
        note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d"),
        note(utc("2020-11-17T05:00"), "reminder", AGHDAM, AGHDAM.stages[0].due, offset="3d"),
        note(utc("2020-11-19T05:00"), "reminder", AGHDAM, AGHDAM.stages[0].due, offset="1d"),
        note(utc("2020-11-20T20:00"), "due", AGHDAM, AGHDAM.stages[0].due),
    ]
    late = [note(utc("2020-11-25T05:00"), "reminder", due=EXTENSION.due, offset="0d"),
            note(utc("2020-11-21T20:00"), "overdue", AGHDAM, AGHDAM.stages[0].due, seq=1)]
    m = Renderer().render_summary(skipped, late, SCHEDULE, now=utc("2020-11-25T08:00"))
    assert m.title == "notifier was down: 5 notifications skipped, 2 sent late"
    assert m.body == (
        "Sent late (the latest missed notification of each deadline):\n"
        "- Wed 25 Nov 09:00, Baku: Kalbajar withdrawal (reminder 0d)\n"
        "- Sun 22 Nov 00:00, Baku: Aghdam withdrawal (overdue #1)\n"
        "Skipped (not sent):\n"
        "- Sun 22 Nov 09:00, Baku: Kalbajar withdrawal (reminder 3d)\n"
        "- Tue 24 Nov 09:00, Baku: Kalbajar withdrawal (reminder 1d)\n"
        "- Tue 17 Nov 09:00, Baku: Aghdam withdrawal (reminder 3d)\n"
        "- Thu 19 Nov 09:00, Baku: Aghdam withdrawal (reminder 1d)\n"
        "- Sat 21 Nov 00:00, Baku: Aghdam withdrawal (due)\n"
        "Caught up at Wed 25 Nov 12:00, Baku."
    )


def test_summary_counts_read_naturally() -> None:
    r = Renderer()
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    now = utc("2020-11-25T08:00")
    assert r.render_summary([n], [], SCHEDULE, now=now).title == (
        "notifier was down: 1 notification skipped")
    assert r.render_summary([], [n], SCHEDULE, now=now).title == (
        "notifier was down: 1 notification sent late")


def test_send_test_message() -> None:
    m = Renderer().render_test("ops-telegram", now=utc("2020-11-25T08:00:30"), zone=BAKU)
    assert m.title == "notifier test message"
    assert 'channel "ops-telegram"' in m.body
    assert "sent Wed 25 Nov 12:00:30, Baku." in m.body


# --- templates: overrides, checks, sandbox -------------------------------------------


def test_override_title_keeps_default_body() -> None:
    r = Renderer({"reminder": TemplateSource(
        title="[{{ deadline.id }}] {{ time_left }} left\n  until {{ due_text }}", body=None)})
    m = on_time(note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d"),
                renderer=r)
    assert m.title == "[kalbajar] 1 day left until Wed 25 Nov, Baku"
    assert m.body.startswith("Kalbajar withdrawal is due by the end of Wed 25 Nov, Baku")


def test_override_body_uses_history_variables() -> None:
    r = Renderer({"rescheduled": TemplateSource(
        title=None,
        body="{{ extension.verb }} {{ extension.delta_text }}\n\n\n\nwhy: {{ extension.reason }}")})
    m = on_time(note(utc("2020-11-15T14:54"), "rescheduled", due=EXTENSION.due, seq=1),
                renderer=r)
    assert m.title == "Kalbajar withdrawal: extended by 10 days, from 15 Nov to 25 Nov"
    assert m.body == f"extended +10 days\n\nwhy: {REASON}"


def test_overrides_see_jinja_globals() -> None:
    # Each compiled template keeps its own copy of the globals (see _from_string).
    r = Renderer({"due": TemplateSource(
        title="{% for i in range(2) %}{{ i }}{% endfor %} {{ dict(a=1)|length }}",
        body="{% set ns = namespace(n=0) %}{% for _ in 'ab' %}{% set ns.n = ns.n + 1 %}"
             "{% endfor %}{{ ns.n }} {% set row = cycler('x', 'y') %}{{ row.next() }}")})
    m = on_time(note(utc("2020-11-20T20:00"), "due", d=AGHDAM, due=AGHDAM.stages[0].due),
                renderer=r)
    assert (m.title, m.body) == ("01 1", "2 x")


def test_the_same_instant_in_two_zones_reads_alike() -> None:
    # An instant is converted to the deadline's zone once per message, whatever zone it
    # came in: the planned time in UTC and the send time in Baku must not differ.
    at = utc("2020-11-25T20:00")
    n = note(at, "due", due=EXTENSION.due)
    in_baku = notification_context(n, SCHEDULE, sent_at=at.astimezone(BAKU) + timedelta(hours=2))
    assert in_baku["at_text"] == "Thu 26 Nov 00:00, Baku"
    assert in_baku["sent_at_text"] == "Thu 26 Nov 02:00, Baku"
    assert notification_context(n, SCHEDULE, sent_at=at.astimezone(BAKU))["sent_at_text"] \
        == "Thu 26 Nov 00:00, Baku"
    # The same wall-clock reading in another zone is another instant.
    same_wall = at.replace(tzinfo=BAKU)
    assert notification_context(n, SCHEDULE, sent_at=same_wall)["sent_at_text"] \
        == "Wed 25 Nov 20:00, Baku"


def test_typo_in_variable_is_found_by_check() -> None:
    r = Renderer({"overdue": TemplateSource(title="{{ deadline.titel }} is late", body=None)})
    problems = template_problems(r, SCHEDULE, [], now=utc("2020-11-10T00:00"))
    assert [(p.kind, p.part, p.lineno) for p in problems] == [("overdue", "title", 1)]
    assert "titel" in problems[0].message
    assert str(problems[0]).startswith("templates.overdue.title: line 1: ")


def test_typo_raises_template_problem_at_render_time_too() -> None:
    r = Renderer({"due": TemplateSource(title=None, body="line one\n{{ nope }}")})
    with pytest.raises(TemplateProblem) as info:
        on_time(note(EXTENSION.due, "due", due=EXTENSION.due), renderer=r)
    assert (info.value.kind, info.value.part, info.value.lineno) == ("due", "body", 2)
    assert info.value.message == "unknown variable nope"


def test_syntax_error_at_construction() -> None:
    with pytest.raises(TemplateProblem) as info:
        Renderer({"digest": TemplateSource(title=None, body="ok\n{% for d in open_deadlines %}")})
    assert (info.value.kind, info.value.part, info.value.lineno) == ("digest", "body", 2)


def test_unknown_template_kind_is_rejected() -> None:
    with pytest.raises(TemplateProblem, match="unknown template kind"):
        Renderer({"remnder": TemplateSource(title="x")})


def test_sandbox_blocks_dunder_access() -> None:
    r = Renderer({"test": TemplateSource(title="{{ ''.__class__.__mro__ }}", body=None)})
    with pytest.raises(TemplateProblem) as info:
        r.render_test("ops", now=utc("2020-11-25T08:00"), zone=BAKU)
    assert info.value.kind == "test"
    assert info.value.part == "title"
    assert info.value.message == "__class__: not allowed in a template (internal attributes are refused)"
    problems = template_problems(r, SCHEDULE, [], now=utc("2020-11-25T08:00"))
    assert [(p.kind, p.part) for p in problems] == [("test", "title")]


def test_any_runtime_error_becomes_template_problem() -> None:
    r = Renderer({"summary": TemplateSource(title="{{ skipped_count / 0 }}", body=None)})
    with pytest.raises(TemplateProblem, match="division by zero"):
        r.render_summary([], [], SCHEDULE, now=utc("2020-11-25T08:00"))


def test_check_finds_data_dependent_errors_in_given_notifications() -> None:
    # Works on the built-in samples (which have history) but not on a deadline without one.
    r = Renderer({"reminder": TemplateSource(title="{{ history[0].reason }}", body=None)})
    n = note(utc("2020-11-19T05:00"), "reminder", AGHDAM, AGHDAM.stages[0].due, offset="1d")
    problems = template_problems(r, SCHEDULE, [n], now=utc("2020-11-10T00:00"))
    assert [(p.kind, p.part) for p in problems] == [("reminder", "title")]


def test_check_flags_an_empty_title() -> None:
    r = Renderer({"due": TemplateSource(title="{% if false %}x{% endif %}", body=None)})
    problems = template_problems(r, SCHEDULE, [], now=utc("2020-11-10T00:00"))
    assert [(p.kind, p.part, p.message) for p in problems] == [
        ("due", "title", "renders to an empty title")]


def test_defaults_pass_check_on_every_sample() -> None:
    schedule, samples = sample_notifications()
    assert {n.kind for n in samples} == set(TEMPLATE_KINDS) - {"summary", "test"}
    assert template_problems(Renderer(), schedule, samples, now=utc("2020-11-20T00:00")) == []
    assert template_problems(Renderer(), SCHEDULE, [], now=utc("2020-11-20T00:00")) == []
    assert set(DEFAULT_TEMPLATES) == set(TEMPLATE_KINDS)


def test_every_default_title_is_one_line_and_body_non_empty() -> None:
    schedule, samples = sample_notifications()
    r = Renderer()
    for n in samples:
        for late in (timedelta(0), timedelta(hours=5)):
            m = r.render(n, schedule, sent_at=n.at + late)
            assert m.title
            assert "\n" not in m.title
            assert m.body
            assert "\n\n" not in m.body


def test_each_variable_alone_is_what_the_whole_context_has() -> None:
    # A plan renders titles from a context holding only what they read (`needs`).
    schedule, samples = sample_notifications()
    for n in samples:
        for sent_at in (n.at, n.at + timedelta(hours=5)):
            whole = notification_context(n, schedule, sent_at=sent_at)
            for name, value in whole.items():
                alone = notification_context(n, schedule, sent_at=sent_at, needs=frozenset({name}))
                assert alone[name] == value, (n.key, name)


def test_a_title_alone_reads_as_the_title_of_the_whole_message() -> None:
    schedule, samples = sample_notifications()
    every_group = ("{{ at_text }} {{ sent_at_text }} {{ history_text }} {{ closure }}"
                   " {{ open_count }} {{ original_due_text }} {{ time_left }} {{ late_by }}")
    overridden = Renderer({kind: TemplateSource(title=every_group, body="{{ due_text }}")
                           for kind in DEFAULT_TEMPLATES if kind not in ("summary", "test")})
    for r in (Renderer(), overridden):
        for n in samples:
            for sent_at in (n.at, n.at + timedelta(hours=5)):
                assert r.render_title(n, schedule, sent_at=sent_at) == \
                    r.render(n, schedule, sent_at=sent_at).title
    assert overridden.names("due", ("title",)) == {
        "at_text", "sent_at_text", "history_text", "closure", "open_count",
        "original_due_text", "time_left", "late_by"}
    assert Renderer().names("reminder", ("title",)) == {"deadline", "status_text", "due_text"}


def test_deadline_missing_from_schedule_still_renders() -> None:
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    m = Renderer().render(n, Schedule(deadlines=(), zone=BAKU), sent_at=n.at)
    assert m.title == "Kalbajar withdrawal: due in 1 day 15 h (Thu 26 Nov 00:00, Baku)"


# --- small helpers ----------------------------------------------------------------------


def test_zone_city() -> None:
    assert zone_city(BAKU) == "Baku"
    assert zone_city(ZoneInfo("America/Argentina/Buenos_Aires")) == "Buenos Aires"
    assert zone_city(ZoneInfo("UTC")) == "UTC"
    assert zone_city(ZoneInfo("Etc/GMT+4")) == "GMT+4"


@pytest.mark.parametrize(("delta", "coarse", "precise"), [
    (timedelta(hours=3), "3 h", "3 h"),
    (timedelta(days=2, hours=4, minutes=5), "2 days 4 h", "2 days 4 h 5 min"),
    (timedelta(days=1, minutes=30), "1 day", "1 day 30 min"),
    (timedelta(hours=2, minutes=30, seconds=9), "2 h 30 min", "2 h 30 min 9 s"),
    (timedelta(seconds=45), "45 s", "45 s"),
    (timedelta(0), "0 s", "0 s"),
])
def test_duration_text(delta: timedelta, coarse: str, precise: str) -> None:
    assert duration_text(delta) == coarse
    assert duration_text(delta, precise=True) == precise


def test_calendar_split_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2020, 10, 24, 12, tzinfo=berlin)
    end = datetime(2020, 10, 26, 15, tzinfo=berlin)
    assert calendar_split(start, end, berlin) == (2, timedelta(hours=3))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=2, hours=4)
    # Mixed UTC / local inputs give the same answer.
    assert calendar_split(start.astimezone(UTC), end, berlin) == (2, timedelta(hours=3))


def _split_by_definition(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[int, timedelta]:
    """The most days d such that start's wall time d days on (its first reading) is
    not after end, then the rest: what `calendar_split` promises, found by counting up."""
    wall = start.astimezone(zone).replace(tzinfo=None)
    days, base = 0, start
    while (later := (wall + timedelta(days=days + 1)).replace(tzinfo=zone, fold=0)) <= end:
        days, base = days + 1, later
    return days, end - base


_SPLIT_ZONES = st.sampled_from([ZoneInfo(k) for k in (
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "UTC")])


@settings(max_examples=2000, deadline=None, database=None)
@given(zone=_SPLIT_ZONES,
       wall=st.datetimes(datetime(2020, 1, 1), datetime(2021, 12, 31)),
       fold=st.integers(0, 1), days=st.integers(0, 40), fold_after=st.integers(0, 1),
       nudge=st.sampled_from([timedelta(0), timedelta(0), timedelta(hours=-1),
                              timedelta(minutes=30), timedelta(hours=3)]))
# Berlin's repeated 02:30, read the second time 3 days on: not the same instant
# as the first reading, so an hour more than 3 days.
@example(zone=ZoneInfo("Europe/Berlin"), wall=datetime(2020, 10, 22, 2, 30), fold=0, days=3,
         fold_after=1, nudge=timedelta(0))
def test_calendar_split_is_whole_days_then_the_rest(
    zone: ZoneInfo, wall: datetime, fold: int, days: int, fold_after: int, nudge: timedelta,
) -> None:
    # Most ends are the start's wall time whole days on (as a reminder "7d" before
    # its due is), read either way in a repeated hour; some are moved off it.
    start = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    end = ((wall + timedelta(days=days)).replace(tzinfo=zone, fold=fold_after)
           .astimezone(UTC) + nudge)
    if end < start:
        start, end = end, start
    assert calendar_split(start, end, zone) == _split_by_definition(start, end, zone)


def test_summary_after_a_suspend_does_not_claim_downtime() -> None:
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    m = Renderer().render_summary([n], [], SCHEDULE, now=utc("2020-11-25T08:00"), cause="behind")
    assert m.title == "notifier fell behind (suspend or clock jump): 1 notification skipped"


@pytest.mark.parametrize(("due", "text"), [
    ("2020-11-25T03:05:00", "Wed 25 Nov 07:05, Baku"),
    ("2020-11-25T03:05:09", "Wed 25 Nov 07:05:09, Baku"),
    ("2020-11-24T20:00:00", "Wed 25 Nov 00:00, Baku"),
    ("2020-11-25T19:59:59", "Wed 25 Nov 23:59:59, Baku"),
])
def test_times_of_day_have_two_digit_fields_and_seconds_only_when_set(
        due: str, text: str) -> None:
    stage = Stage(due=utc(due), day=None, announced=utc("2020-11-09T21:00"))
    d = replace(KALBAJAR, stages=(stage,))
    n = note(utc(due), "due", d, stage.due)
    assert notification_context(n, replace(SCHEDULE, deadlines=(d,)),
                              sent_at=n.at)["due_text"] == text


def test_a_notification_whose_due_a_reload_moved_reads_as_it_was_planned() -> None:
    # Planned for the extension, sent after a reload dropped it: the message keeps the
    # due the notification carries rather than the deadline's other stage.
    n = note(utc("2020-11-24T05:00"), "reminder", due=EXTENSION.due, offset="1d")
    reloaded = replace(SCHEDULE, deadlines=(replace(KALBAJAR, stages=(ORIGINAL,)),))
    m = on_time(n, reloaded)
    assert m.title == "Kalbajar withdrawal: due in 1 day 15 h (Thu 26 Nov 00:00, Baku)"
    gone = on_time(n, replace(SCHEDULE, deadlines=()))
    assert m == gone

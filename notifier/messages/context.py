"""The variables a template sees: per notification, for the catch-up summary, for a test.

Pure: no clock is read; the instant a message is sent is an argument.

Text conventions: dates and times are shown in the deadline's zone, in
English whatever the locale ("Wed 25 Nov", "Wed 25 Nov 17:00"); the year is
added when it differs from the year of the message. `due_text` names the zone
by its city, the last part of its IANA name ("Wed 25 Nov, Baku"; "UTC" for
UTC), so a message read anywhere is unambiguous. Durations are coarse: the two
largest units ("2 days 4 h", "3 h 20 min", "45 s"); days are calendar days in
the deadline's zone. For a date due ("by the end of D"), time left before the
day is counted in days ("1 day"), and on the day itself the message says "due
today" (unless the reminder offset has an hour/minute part, then it counts the
exact time).

Context of the notification kinds (every variable is defined for every kind;
those that do not apply are None):

- `kind`: the notification kind.
- `key`: the notification's stable key.
- `deadline`: dict with `id`, `title`, `notes`, `url`, `tags` (list), `zone`
  (IANA name), `city`, `channels` (list) and `state` at the planned time
  ("open", "overdue", "completed", "cancelled", "not yet announced").
  None for `digest`.
- `due`: the due this message refers to, an aware datetime in the deadline's zone.
- `due_text`: "Wed 25 Nov, Baku" (date due) or "Wed 25 Nov 17:00, Baku".
- `due_local_text`: the same without the city: "Wed 25 Nov".
- `due_long_text`: "by the end of Wed 25 Nov, Baku" for a date due, else `due_text`.
- `due_is_date`: the due was written as a date ("by the end of that day").
- `due_today`: a date due whose day is today (in the deadline's zone).
- `time_left`: "1 day", "3 h", "2 days 4 h"; None once the due is reached.
- `overdue_by`: "2 days"; None unless the due has passed.
- `status_text`: "due in 1 day", "due today", "due now" or "overdue by 2 days".
- `when_text`: the same without "due": "in 1 day", "today", "now", "overdue by 2 days".
- `original_due`, `original_due_text`: the first due of the deadline.
- `history`: one dict per extension known at the planned time, oldest first:
  `index`, `announced` (datetime or None), `announced_text` ("15 Nov" or None),
  `from_due`, `to_due`, `from_text`, `to_text` ("15 Nov", "15 Nov 17:00"),
  `delta_text` ("+10 days", "-2 days", "+2 h 30 min"), `verb` ("extended",
  "brought forward"), `summary` ("extended by 10 days, from 15 Nov to
  25 Nov"), `reason`, `source`, and `text`, the whole line: "extended on
  15 Nov from 15 Nov to 25 Nov (+10 days): reason; source".
- `history_text`: the `text` of each history entry, one per line ("" if none).
- `extension`: for `rescheduled`, the history dict of this extension.
- `closure`: for `completed`/`cancelled`, dict with `kind`, `at`, `at_text`, `note`.
- `offset`: the reminder offset as configured ("1d"), `seq`: the overdue
  repetition (1, 2, ...) or the extension number of a `rescheduled` message.
- `at`, `at_text`: when the message was planned; `sent_at`, `sent_at_text`:
  when it is sent.
- `late_by`: "3 h" when sent more than 60 s after `at`, else None. When late,
  `time_left`, `overdue_by`, `due_today` and `status_text` are as of `sent_at`.
- `open_deadlines`, `open_count`, `overdue_count` (`digest` only): each deadline
  that is open at the planned time (overdue ones included: "open" is "not
  closed"), soonest due first, as a dict with `id`, `title`, `notes`, `url`,
  `tags`, `zone`, `state` ("open" or "overdue"), `due`, `due_text`,
  `due_local_text`, `due_long_text`, `due_is_date`, `due_today`, `time_left`,
  `overdue_by`, `status_text`, `when_text`, `original_due_text`, `history`,
  `history_text`; how many there are, and how many of them are overdue.

Context of `summary`: `kind`, `cause` ("down" after downtime, "behind" after a
suspend or clock jump), `now`, `now_text`, `skipped` and `sent_late`
(lists of dicts with `at`, `at_text`, `kind`, `deadline` (id or None),
`title`, `offset`, `seq`, `key`, `label` ("reminder 1d") and `text`, the list
line), `skipped_text`, `sent_late_text` (those lines), `skipped_count`,
`sent_late_count`, `counts_text` ("5 notifications skipped, 2 sent late").

Context of `test`: `kind`, `channel` (the channel name), `now` (in the default
zone), `now_text` ("Wed 2 Dec 16:21:05, Baku").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from notifier.schedule.lateness import delay, is_late
from notifier.schedule.model import Closure, Deadline, Notification, Schedule, Stage
from notifier.schedule.standing import is_open, state_at
from notifier.wording import (
    Fmt,
    calendar_split,
    days_text,
    duration_text,
    move_verb,
    plural,
    span_text,
    zone_city,
    zone_name,
)

Context = dict[str, Any]

_PURE_DAYS = re.compile(r"^\s*(?:(?:\d+[wd])+|P(?:\d+W)?(?:\d+D)?)\s*$", re.IGNORECASE)


def counts_days(offset: str | None) -> bool:
    """A message for this reminder offset (None: not a reminder) counts a date due in days."""
    return offset is None or _PURE_DAYS.match(offset) is not None


def _state_text(d: Deadline, t: datetime) -> str:
    """The deadline's state at t as messages name it ("not yet announced", not "not-announced")."""
    state = state_at(d, t)
    return "not yet announced" if state == "not-announced" else state


def _change(old: Stage, new: Stage, fmt: Fmt) -> tuple[str, str, str]:
    """(verb, delta text, magnitude) of a move from `old` to `new`."""
    verb = move_verb(old.due, new.due)
    if verb == "rescheduled":
        return verb, "no change", "nothing"
    sign = "+" if new.due > old.due else "-"
    days: int | None = None
    if old.day is not None and new.day is not None and fmt.is_date(old) and fmt.is_date(new):
        days = (new.day - old.day).days
    else:
        lo, ln = fmt.local(old.due), fmt.local(new.due)
        if lo.time() == ln.time():
            days = (ln.date() - lo.date()).days
    exact = new.due.astimezone(UTC) - old.due.astimezone(UTC)
    magnitude = days_text(abs(days)) if days else duration_text(exact, precise=True)
    return verb, f"{sign}{magnitude}", magnitude


def _history(d: Deadline, upto: datetime, fmt: Fmt) -> list[Context]:
    """Each extension announced at or before `upto`, compared with the due before it."""
    out: list[Context] = []
    prev = d.stages[0]
    for index, stage in enumerate(d.stages[1:], start=1):
        if stage.announced is not None and stage.announced > upto:
            continue
        verb, delta, magnitude = _change(prev, stage, fmt)
        announced_text = (fmt.day_short(fmt.local(stage.announced).date())
                          if stage.announced is not None else None)
        from_text, to_text = fmt.stage_short(prev), fmt.stage_short(stage)
        text = verb
        if announced_text is not None:
            text += f" on {announced_text}"
        text += f" from {from_text} to {to_text} ({delta})"
        notes = [part for part in (stage.reason, stage.source) if part]
        if notes:
            text += ": " + "; ".join(notes)
        out.append({
            "index": index,
            "announced": fmt.local(stage.announced) if stage.announced is not None else None,
            "announced_text": announced_text,
            "from_due": fmt.local(prev.due),
            "to_due": fmt.local(stage.due),
            "from_text": from_text,
            "to_text": to_text,
            "delta_text": delta,
            "verb": verb,
            "summary": f"{verb} by {magnitude}, from {from_text} to {to_text}",
            "reason": stage.reason,
            "source": stage.source,
            "text": text,
        })
        prev = stage
    return out


def _timing(stage: Stage, ref: datetime, fmt: Fmt, offset: str | None) -> Context:
    """time_left / due_today / overdue_by / status_text of `stage` as seen at `ref`."""
    zone = fmt.zone
    time_left: str | None = None
    overdue_by: str | None = None
    due_today = False
    if ref > stage.due:
        overdue_by = span_text(*calendar_split(stage.due, ref, zone))
        when = f"overdue by {overdue_by}"
        status = when
    elif ref == stage.due:
        when, status = "now", "due now"
    else:
        days = 0
        if stage.day is not None and counts_days(offset) and fmt.is_date(stage):
            days = (stage.day - fmt.local(ref).date()).days
            due_today = days < 1
        # Counted in days before a date due's day (no exact split needed), else exactly.
        time_left = days_text(days) if days >= 1 \
            else span_text(*calendar_split(ref, stage.due, zone))
        when = "today" if due_today else f"in {time_left}"
        status = f"due {when}"
    return {"time_left": time_left, "overdue_by": overdue_by, "due_today": due_today,
            "status_text": status, "when_text": when}


def _due_facts(stage: Stage, fmt: Fmt, needs: AbstractSet[str] | None = None) -> Context:
    """The due's variables; with `needs`, the long text and the date flag only if read
    (a plan's or status's title reads `due_text` alone)."""
    local_text = fmt.stage_long(stage)
    facts: Context = {
        "due": fmt.local(stage.due),
        "due_text": f"{local_text}, {fmt.city}",
        "due_local_text": local_text,
    }
    if needs is None or "due_long_text" in needs:
        facts["due_long_text"] = fmt.due_long(stage)
    if needs is None or "due_is_date" in needs:
        facts["due_is_date"] = fmt.is_date(stage)
    return facts


def _planned(d: Deadline | None, n: Notification) -> tuple[Deadline, int] | None:
    """`n`'s deadline and the stage it was planned for, if the schedule still has them."""
    k = n.stage
    if d is None or k is None or not 0 <= k < len(d.stages) or d.stages[k].due != n.due:
        return None
    return d, k


def _stand_in(n: Notification, schedule: Schedule) -> tuple[Deadline, int]:
    """A deadline made of what `n` carries, when a reload while it was on its way
    removed its deadline or moved the due it was planned for."""
    return Deadline(
        id=n.deadline or "", title=n.title, zone=schedule.zone,
        stages=(Stage(due=n.due or n.at, day=None, announced=None),),
        reminders=(), channels=n.channels, remind_at=time(9),
    ), 0


# The context's variables computed together (`Renderer.context` with `needs`).
_OPEN_NAMES = frozenset({"open_deadlines", "open_count", "overdue_count"})
_FACT_NAMES = frozenset({"due", "due_text", "due_local_text", "due_long_text", "due_is_date",
                         "original_due", "original_due_text"})
_ORIGINAL_NAMES = frozenset({"original_due", "original_due_text"})
_TIMING_NAMES = frozenset({"time_left", "overdue_by", "due_today", "status_text", "when_text"})
_HISTORY_NAMES = frozenset({"history", "history_text", "extension"})
_AT_NAMES = frozenset({"at", "at_text", "sent_at", "sent_at_text"})
_ALL_NAMES = _OPEN_NAMES | _FACT_NAMES | _TIMING_NAMES | _HISTORY_NAMES | _AT_NAMES | {
    "deadline", "closure"}



def notification_context(n: Notification, schedule: Schedule, *, sent_at: datetime,
                         needs: AbstractSet[str] | None = None) -> Context:
    """The template variables for `n` (see the module docstring).

    With `needs` (the names a template reads, `Renderer.names`), the
    variables outside it are left empty: a plan renders 40,000 titles, and
    a built-in title reads one to three of the twenty-eight.
    """
    late = is_late(n.at, sent_at)
    ref = sent_at if late else n.at
    if needs is None:
        needs = _ALL_NAMES
    ctx: Context = {
        "kind": n.kind, "key": n.key, "offset": n.offset, "seq": n.seq,
        "deadline": None, "due": None, "due_text": None, "due_local_text": None,
        "due_long_text": None, "due_is_date": False, "due_today": False,
        "time_left": None, "overdue_by": None, "status_text": None, "when_text": None,
        "original_due": None, "original_due_text": None,
        "history": [], "history_text": "", "extension": None, "closure": None,
        "open_deadlines": None, "open_count": None, "overdue_count": None,
        "late_by": duration_text(delay(n.at, sent_at)) if late else None,
        "at": None, "at_text": None, "sent_at": None, "sent_at_text": None,
    }
    if n.kind == "digest" or n.deadline is None:
        zone = schedule.digest.zone if schedule.digest is not None else schedule.zone
        fmt = Fmt(zone, n.at)
        if not needs.isdisjoint(_OPEN_NAMES):
            entries = _open_deadlines(schedule, n.at)
            ctx.update(open_deadlines=entries, open_count=len(entries),
                       overdue_count=sum(e["state"] == "overdue" for e in entries))
    else:
        d, index = _planned(schedule.deadline(n.deadline), n) or _stand_in(n, schedule)
        fmt = Fmt(d.zone, ref)
        stage = d.stages[index]
        if not needs.isdisjoint(_FACT_NAMES):
            facts = _due_facts(stage, fmt, needs)
            ctx.update(facts)
            if not needs.isdisjoint(_ORIGINAL_NAMES):
                first = d.stages[0]
                ctx.update(original_due=fmt.local(first.due),
                           original_due_text=facts["due_text"] if first is stage
                           else fmt.stage_text(first))
        if not needs.isdisjoint(_TIMING_NAMES):
            ctx.update(_timing(stage, ref, fmt, n.offset))
        if "deadline" in needs:
            ctx["deadline"] = _deadline_dict(d, n.at)
        if not needs.isdisjoint(_HISTORY_NAMES):
            history = _history(d, n.at, fmt)
            ctx.update(history=history, history_text="\n".join(h["text"] for h in history))
            if n.kind == "rescheduled":
                ctx["extension"] = next((h for h in history if h["index"] == index), None)
        if n.kind in ("completed", "cancelled") and "closure" in needs:
            closure = d.closure if d.closure is not None and d.closure.kind == n.kind \
                else Closure(kind=n.kind, at=n.at)
            ctx["closure"] = {"kind": closure.kind, "at": fmt.local(closure.at),
                              "at_text": fmt.instant(closure.at), "note": closure.note}
    if not needs.isdisjoint(_AT_NAMES):
        at_text = fmt.instant(n.at)
        ctx.update(at=fmt.local(n.at), at_text=at_text, sent_at=fmt.local(sent_at),
                   sent_at_text=at_text if sent_at == n.at else fmt.instant(sent_at))
    return ctx

def summary_context(
    skipped: Sequence[Notification],
    sent_late: Sequence[Notification],
    schedule: Schedule,
    *,
    now: datetime,
    cause: Literal["down", "behind"] = "down",
) -> Context:
    fmt = Fmt(schedule.zone, now)
    skipped_items = [_summary_item(n, schedule, now) for n in skipped]
    late_items = [_summary_item(n, schedule, now) for n in sent_late]
    counts = []
    if skipped_items:
        counts.append(f"{plural(len(skipped_items), 'notification')} skipped")
    if late_items:
        late_count = (str(len(late_items)) if skipped_items
                      else plural(len(late_items), "notification"))
        counts.append(f"{late_count} sent late")
    return {
        "kind": "summary",
        "cause": cause,
        "now": fmt.local(now),
        "now_text": fmt.instant(now),
        "skipped": skipped_items,
        "sent_late": late_items,
        "skipped_text": "\n".join(i["text"] for i in skipped_items),
        "sent_late_text": "\n".join(i["text"] for i in late_items),
        "skipped_count": len(skipped_items),
        "sent_late_count": len(late_items),
        "counts_text": ", ".join(counts) if counts else "nothing was missed",
    }

def test_context(channel_name: str, *, now: datetime, zone: ZoneInfo) -> Context:
    """`now` in `zone` (the default zone), as a summary writes it."""
    fmt = Fmt(zone, now)
    return {
        "kind": "test",
        "channel": channel_name,
        "now": fmt.local(now),
        "now_text": fmt.instant(now),
    }

# -- checking --------------------------------------------------------


def _deadline_dict(d: Deadline, t: datetime) -> Context:
    return {
        "id": d.id, "title": d.title, "notes": d.notes, "url": d.url, "tags": list(d.tags),
        "zone": zone_name(d.zone), "city": zone_city(d.zone), "channels": list(d.channels),
        "state": _state_text(d, t),
    }


def _open_deadlines(schedule: Schedule, t: datetime) -> list[Context]:
    """Every deadline open (or overdue) at t, soonest effective due first."""
    rows: list[tuple[datetime, str, Context]] = []
    for d in schedule.deadlines:
        if not is_open(d, t):
            continue
        state = _state_text(d, t)
        fmt = Fmt(d.zone, t)
        stage = d.stages[d.stage_at(t)]
        history = _history(d, t, fmt)
        entry: Context = {
            "id": d.id, "title": d.title, "notes": d.notes, "url": d.url,
            "tags": list(d.tags), "zone": zone_name(d.zone), "state": state,
            "original_due_text": fmt.stage_text(d.stages[0]),
            "history": history, "history_text": "\n".join(h["text"] for h in history),
        }
        entry.update(_due_facts(stage, fmt))
        entry.update(_timing(stage, t, fmt, None))
        rows.append((stage.due, d.title, entry))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [entry for _, _, entry in rows]


def _summary_item(n: Notification, schedule: Schedule, now: datetime) -> Context:
    d = schedule.deadline(n.deadline)
    zone = d.zone if d is not None else (
        schedule.digest.zone if n.kind == "digest" and schedule.digest is not None
        else schedule.zone)
    fmt = Fmt(zone, now)
    title = d.title if d is not None else n.title
    if n.kind == "reminder" and n.offset:
        label = f"reminder {n.offset}"
    elif n.kind == "overdue" and n.seq is not None:
        label = f"overdue #{n.seq}"
    else:
        label = n.kind
    at_text = fmt.instant(n.at)
    text = f"- {at_text}: digest" if n.kind == "digest" else f"- {at_text}: {title} ({label})"
    return {
        "at": fmt.local(n.at), "at_text": at_text, "kind": n.kind, "deadline": n.deadline,
        "title": title, "offset": n.offset, "seq": n.seq, "key": n.key, "label": label,
        "text": text,
    }



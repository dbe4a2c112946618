"""Plain-data views of plans, status and history for JSON and tables. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from notifier.schedule import planning
from notifier.schedule.model import Deadline, Notification, Schedule
from notifier.schedule.standing import Standing, standing_at
from notifier.text import rfc3339
from notifier.wording import calendar_split, span_text

if TYPE_CHECKING:
    from notifier.messages.render import Renderer


_Item = TypeVar("_Item")


def plan_item(n: Notification, title: str, body: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "at": rfc3339(n.at),
        "deadline": n.deadline,
        "kind": n.kind,
        "due": rfc3339(n.due) if n.due is not None else None,
        "offset": n.offset,
        "channels": list(n.channels),
        "title": title,
        "key": n.key,
    }
    if body is not None:
        item["body"] = body
    return item


def _json_text(text: str | None) -> str:
    return "null" if text is None else encode_basestring(text)


def plan_json(n: Notification, title: str, body: str | None = None) -> str:
    """`json.dumps(plan_item(n, title, body), ensure_ascii=False)`, written directly.

    A plan encodes 40,000 items: this costs less than half of building each
    item's dict and dumping it (2.0 against 4.9 us). Strings go through
    `encode_basestring`, the function `json.dumps` itself uses for them, so
    the text is the same byte for byte (tests/test_views.py holds it to that).
    """
    due = "null" if n.due is None else f'"{rfc3339(n.due)}"'
    channels = ", ".join([encode_basestring(c) for c in n.channels])
    text = (f'{{"at": "{rfc3339(n.at)}", "deadline": {_json_text(n.deadline)}, '
            f'"kind": {encode_basestring(n.kind)}, "due": {due}, '
            f'"offset": {_json_text(n.offset)}, "channels": [{channels}], '
            f'"title": {encode_basestring(title)}, "key": {encode_basestring(n.key)}')
    return text + "}" if body is None else f'{text}, "body": {encode_basestring(body)}}}'


def plan_items(
    items: Sequence[Notification], schedule: Schedule, renderer: Renderer, *,
    make: Callable[[Notification, str, str | None], _Item], with_body: bool = False,
) -> list[_Item]:
    """The spec's plan items, made by `make` (`plan_item`, or `plan_json` for their
    JSON text); `with_body` adds each message's body (twice the rendering)."""
    if with_body:
        out = []
        for n in items:
            message = renderer.render(n, schedule, sent_at=n.at)
            out.append(make(n, message.title, message.body))
        return out
    return [make(n, renderer.render_title(n, schedule, sent_at=n.at), None) for n in items]


@dataclass(frozen=True)
class LastDelivery:
    key: str
    channel: str
    state: str
    at: datetime
    error: str | None


_CLOSED = ("completed", "cancelled")
_URGENCY = {"overdue": 0, "open": 1, "not-announced": 2, "completed": 3, "cancelled": 3}
"""The order of `status`'s groups: what needs attention first, what is over last."""


def status_items(
    schedule: Schedule, at: datetime, last_of: Callable[[str], LastDelivery | None],
    renderer: Renderer, *, states: Collection[str] = (), tags: Collection[str] = (),
) -> list[dict[str, Any]]:
    """`status`'s items, by urgency: overdue (most overdue first), open (soonest due
    first), not yet announced (likewise), then closed (most recently closed first);
    in config order where equal. Only deadlines in one of `states` and with one of
    `tags` (either empty: any); `last_of` is asked about those only. Each `next` is
    a plan item, its message's title rendered by `renderer` as `plan` renders it."""
    chosen: list[tuple[tuple[int, float], Deadline, Standing]] = []
    for d in schedule.deadlines:
        if tags and not any(tag in tags for tag in d.tags):
            continue
        state = standing_at(d, at)
        if states and state.state not in states:
            continue
        closure = d.closure
        when = -closure.at.timestamp() if state.state in _CLOSED and closure is not None \
            else state.effective_due.timestamp()
        chosen.append(((_URGENCY[state.state], when), d, state))
    chosen.sort(key=lambda row: row[0])
    return [status_item(d, schedule, at, last_of(d.id), renderer, state)
            for _, d, state in chosen]


def status_item(
    d: Deadline, schedule: Schedule, at: datetime, last: LastDelivery | None,
    renderer: Renderer, state: Standing | None = None,
) -> dict[str, Any]:
    """`d` at `at` as `status` shows it; `state` is `standing_at(d, at)`, if known."""
    if state is None:
        state = standing_at(d, at)
    closure = d.closure if state.state in _CLOSED else None
    nxt = planning.next_for_deadline(d, schedule.channels, at)
    shown = None if nxt is None else plan_items([nxt], schedule, renderer, make=plan_item)[0]
    left = state.effective_due - at
    counting = state.state in ("open", "overdue")
    return {
        "deadline": d.id,
        "title": d.title,
        "state": state.state,
        "effective_due": rfc3339(state.effective_due),
        "original_due": rfc3339(state.original_due),
        # Both null together: a closed or not yet announced deadline has no time left.
        "time_left_seconds": int(left.total_seconds()) if counting else None,
        "time_left": _left_text(state.effective_due, at, d.zone) if counting else None,
        "closed_at": None if closure is None else rfc3339(closure.at),
        "note": None if closure is None else closure.note,
        "zone": d.zone.key,
        "history": [
            {
                "due": rfc3339(s.due),
                "day": s.day.isoformat() if s.day else None,
                "announced": rfc3339(s.announced) if s.announced else None,
                "known": s.announced is None or s.announced <= at,
                "reason": s.reason,
                "source": s.source,
            }
            for s in d.stages
        ],
        "next": shown,
        "last_delivery": None if last is None else {
            "key": last.key, "channel": last.channel, "state": last.state,
            "at": rfc3339(last.at), "error": last.error,
        },
    }


def _left_text(due: datetime, at: datetime, zone: ZoneInfo) -> str:
    """"3 h", "overdue by 2 days", or "due now" at the due instant (to the second, as
    `time_left_seconds` counts): in calendar days of the deadline's zone, then the
    exact rest, as messages count them (`calendar_split`)."""
    if int((due - at).total_seconds()) == 0:
        return "due now"
    if at > due:
        return "overdue by " + span_text(*calendar_split(due, at, zone))
    return span_text(*calendar_split(at, due, zone))


def last_delivery(rec: Any) -> LastDelivery | None:
    """A deadline's last ledger row (ledger.DeliveryRecord, or None) as `status` shows it."""
    if rec is None:
        return None
    return LastDelivery(rec.key, rec.channel, str(rec.state), rec.updated_at, rec.last_error)


def history_item(rec: Any) -> dict[str, Any]:
    """One ledger row (ledger.DeliveryRecord) for JSON and tables."""
    return {
        "key": rec.key,
        "channel": rec.channel,
        "deadline": rec.deadline,
        "kind": rec.kind,
        "planned_at": rfc3339(rec.planned_at),
        "state": str(rec.state),
        "attempts": rec.attempts,
        "next_attempt": rfc3339(rec.next_attempt) if rec.next_attempt else None,
        "last_error": rec.last_error,
        "late": rec.late,
        "created_at": rfc3339(rec.created_at),
        "updated_at": rfc3339(rec.updated_at),
    }


def json_lines(items: list[dict[str, Any]]) -> str:
    """A JSON array, one item per line: json's C encoder writes no indentation, and
    indented output of a 40,000-item plan took longer than planning it."""
    return json_array([json.dumps(i, ensure_ascii=False) for i in items])


def json_array(encoded: list[str]) -> str:
    """Items already encoded as JSON, as an array of one item per line."""
    return "[\n" + ",\n".join(encoded) + "\n]" if encoded else "[]"

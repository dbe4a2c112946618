"""Where a deadline stands at an instant: the one rule that status and messages both use. Pure.

The due instant is when a deadline falls due: from that instant on (its `due`
message is sent at it) the deadline is overdue, not open. A message about a
due (reminder, due, overdue) stands only while its deadline is not closed and
that due is still the effective one: a retry sent later must not contradict a
closure or an extension that went out in the meantime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from notifier.schedule.model import Deadline, Kind, Notification
from notifier.wording import Fmt

State = Literal["not-announced", "open", "overdue", "completed", "cancelled"]

ABOUT_A_DUE: frozenset[Kind] = frozenset({"reminder", "due", "overdue"})
"""The kinds that speak of one due; status messages (rescheduled, completed,
cancelled) and digests stay true whenever they arrive."""


def known(d: Deadline, t: datetime) -> bool:
    """The deadline has been announced by `t` (nothing is planned before that)."""
    return d.announced is None or d.announced <= t


def is_open(d: Deadline, t: datetime) -> bool:
    """Known and not closed at `t`: planned for, and listed in a digest."""
    return known(d, t) and not d.closed_at(t)


def state_at(d: Deadline, t: datetime) -> State:
    """The deadline's state at `t`: closed beats not announced beats due."""
    closure = d.closure
    if closure is not None and closure.at <= t:
        return closure.kind
    if not known(d, t):
        return "not-announced"
    return "overdue" if t >= d.stages[d.stage_at(t)].due else "open"


@dataclass(frozen=True)
class Standing:
    """A deadline's state at an instant with the dues it is measured against, for `status`."""

    state: State
    stage: int
    effective_due: datetime
    original_due: datetime


def standing_at(d: Deadline, t: datetime) -> Standing:
    k = d.stage_at(t)
    return Standing(state=state_at(d, t), stage=k, effective_due=d.stages[k].due,
                    original_due=d.stages[0].due)


def stale_reason(d: Deadline, n: Notification, t: datetime) -> str | None:
    """Why `n`, sent at `t`, would no longer stand (its deadline closed at or before
    `t`, or its due is no longer the effective one); None while it stands."""
    if n.kind not in ABOUT_A_DUE:
        return None
    now = standing_at(d, t)
    if now.state in ("completed", "cancelled"):
        return f"deadline {now.state}"
    if n.due is not None and now.effective_due != n.due:
        # In the deadline's zone, as messages write a due: "Wed 25 Nov, Baku" for a date due.
        return f"due moved to {Fmt(d.zone, t).stage_text(d.stages[now.stage])}"
    return None

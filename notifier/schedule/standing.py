"""Where a deadline stands at an instant: the one rule that status and messages both use. Pure.

The due instant is when a deadline falls due: from that instant on (its `due`
message is sent at it) the deadline is overdue, not open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from notifier.schedule.model import Deadline

State = Literal["not-announced", "open", "overdue", "completed", "cancelled"]


def state_at(d: Deadline, t: datetime) -> State:
    """The deadline's state at `t`: closed beats not announced beats due."""
    closure = d.closure
    if closure is not None and closure.at <= t:
        return closure.kind
    if d.announced is not None and d.announced > t:
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

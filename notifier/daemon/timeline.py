"""The window of upcoming notifications the daemon holds, refilled from the planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notifier.delivery.ledger import DeliveryRecord
from notifier.schedule import planning
from notifier.schedule.model import Notification, Schedule

WINDOW = timedelta(days=2)
"""How far ahead the in-memory timeline is filled; refilled as time passes."""


@dataclass
class Timeline:
    """The upcoming notifications in (cursor, end], sorted; a window over the plan."""

    schedule: Schedule
    cursor: datetime
    end: datetime
    items: list[Notification] = field(default_factory=list)

    @classmethod
    def build(cls, schedule: Schedule, cursor: datetime) -> Timeline:
        end = cursor + WINDOW
        start = cursor + timedelta(microseconds=1)
        return cls(schedule, cursor, end, planning.plan(schedule, start, end))

    def take_due(self, now: datetime) -> list[Notification]:
        """Everything at or before `now`, refilling the window as needed."""
        due: list[Notification] = []
        while True:
            i = 0
            while i < len(self.items) and self.items[i].at <= now:
                i += 1
            due.extend(self.items[:i])
            del self.items[:i]
            if now < self.end:
                break
            start = self.end + timedelta(microseconds=1)
            self.end = max(self.end + WINDOW, now + timedelta(seconds=1))
            self.items = planning.plan(self.schedule, start, self.end)
        self.cursor = max(self.cursor, now)
        return due

    def next_at(self) -> datetime:
        return self.items[0].at if self.items else self.end

    def keys(self) -> set[str]:
        return {n.key for n in self.items}


def find_notification(schedule: Schedule, rec: DeliveryRecord) -> Notification | None:
    """The planned notification behind a ledger row (for retries after a restart)."""
    start = rec.planned_at
    end = start + timedelta(microseconds=1)
    if rec.deadline is None:
        # A digest is planned only while a deadline is open (or with `always`):
        # look it up against the real schedule, not an empty one.
        candidates = planning.plan_digest(schedule, schedule.digest, start, end) \
            if rec.kind == "digest" and schedule.digest is not None else []
    else:
        d = schedule.deadline(rec.deadline)
        candidates = [] if d is None else planning.plan_deadline(d, schedule.channels, start, end)
    return next((n for n in candidates if n.key == rec.key), None)

"""When a message is late: the one rule that delivery (marking it) and messages (saying so) share.

Pure: both instants are arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

LATE_AFTER = timedelta(seconds=60)
"""A message sent more than this after its planned time is late."""


def delay(planned: datetime, sent: datetime) -> timedelta:
    """Elapsed time from `planned` to `sent`, in UTC: two instants of one zone a DST
    change apart would otherwise subtract as wall-clock times."""
    return sent.astimezone(UTC) - planned.astimezone(UTC)


def is_late(planned: datetime, sent: datetime, *, after: timedelta = LATE_AFTER) -> bool:
    """Sent more than `after` past `planned` (a replay scales `after` with its clock)."""
    return delay(planned, sent) > after

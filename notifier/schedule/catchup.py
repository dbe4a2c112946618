"""What to do with notifications that fell due while nobody was sending. Pure.

SPEC section 3, downtime: per deadline only the latest missed notification is
sent (marked late), and only if it is younger than the catch-up window; every
other missed one is recorded as skipped and listed in one summary per channel.
The same rule covers a suspend or a wall-clock jump forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.schedule.model import Notification


@dataclass(frozen=True)
class CatchUp:
    send: tuple[Notification, ...]
    skip: tuple[Notification, ...]

    def __bool__(self) -> bool:
        return bool(self.send or self.skip)


def _group(n: Notification) -> str:
    return n.deadline if n.deadline is not None else n.kind


def catch_up(missed: Sequence[Notification], now: datetime, window: timedelta) -> CatchUp:
    """Split `missed` (in plan order) into what to send late and what to skip.

    Per deadline (per kind for the digest) the latest notification is sent if
    it is at most `window` old; of several at the same instant, the last in
    plan order counts as the latest. Everything else is skipped.
    """
    latest: dict[str, tuple[datetime, int, Notification]] = {}
    for i, n in enumerate(missed):
        group = _group(n)
        if group not in latest or (n.at, i) > latest[group][:2]:
            latest[group] = (n.at, i, n)
    send = tuple(n for _, _, n in sorted(latest.values(), key=lambda e: e[:2])
                 if now - n.at <= window)
    chosen = {n.key for n in send}
    skip = tuple(n for n in missed if n.key not in chosen)
    return CatchUp(send=send, skip=skip)

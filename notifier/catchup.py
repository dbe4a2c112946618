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

from notifier.model import Notification


@dataclass(frozen=True)
class CatchUp:
    send: tuple[Notification, ...]
    skip: tuple[Notification, ...]

    def __bool__(self) -> bool:
        return bool(self.send or self.skip)


def _group(n: Notification) -> str:
    return n.deadline if n.deadline is not None else n.kind


def catch_up(missed: Sequence[Notification], now: datetime, window: timedelta) -> CatchUp:
    latest: dict[str, Notification] = {}
    for n in missed:
        group = _group(n)
        if group not in latest or (n.at, n.key) > (latest[group].at, latest[group].key):
            latest[group] = n
    send = tuple(sorted((n for n in latest.values() if now - n.at <= window),
                        key=lambda n: (n.at, n.key)))
    chosen = {n.key for n in send}
    skip = tuple(n for n in missed if n.key not in chosen)
    return CatchUp(send=send, skip=skip)

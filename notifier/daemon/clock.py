"""The daemon's clocks: the system clock, or a virtual one for a replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    scale: float
    """Virtual seconds per real second (1 for the system clock)."""

    def now(self) -> datetime: ...


class SystemClock:
    scale = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that starts at `start` and runs `speed` times faster than real time.

    With `epoch` (a real Unix time) the clock reads `start` at that real
    instant, so a replay restarted with the same epoch resumes the same
    virtual timeline, downtime included; without it, it starts now.
    """

    def __init__(self, start: datetime, speed: float, epoch: float | None = None) -> None:
        self.scale = float(speed)
        self.start = start
        """Where the virtual timeline begins: a replay answers for everything from here on."""
        self._epoch = epoch
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._epoch is not None:
            elapsed = time.time() - self._epoch
        else:
            elapsed = time.monotonic() - self._t0
        return self.start + timedelta(seconds=elapsed * self.scale)


def real_seconds(clock: Clock, until: datetime) -> float:
    return max(0.0, (until - clock.now()).total_seconds() / clock.scale)

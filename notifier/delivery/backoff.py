"""When to try a failed delivery again: a doubling, jittered wait between two bounds."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Final

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "backoff"]

FIRST_BACKOFF: Final = timedelta(seconds=30)
MAX_BACKOFF: Final = timedelta(hours=1)


def backoff(
    attempts: int,
    rng: random.Random,
    *,
    first: timedelta = FIRST_BACKOFF,
    maximum: timedelta = MAX_BACKOFF,
) -> timedelta:
    """The wait after `attempts` failed attempts: `first` doubling up to `maximum`, jittered.

    The un-jittered wait is first, 2 x first, 4 x first, ... capped at `maximum`
    (30 s, 1 min, 2 min, ... 32 min, then 1 h). The jitter spreads the retries
    of many messages that failed together: the wait is drawn uniformly from
    -25 % .. +25 % of that value, but never beyond `maximum`, so at the cap it
    lies between 45 min and 1 h.
    """
    if first <= timedelta(0) or maximum < first:
        raise ValueError("backoff needs 0 < first <= maximum")
    base = first
    # Doubling stops at the cap, so a delivery retried for weeks never overflows.
    for _ in range(max(0, attempts - 1)):
        if base >= maximum:
            break
        base *= 2
    base = min(base, maximum)
    low = base * 0.75
    high = min(base * 1.25, maximum)
    seconds = rng.uniform(low.total_seconds(), high.total_seconds())
    return timedelta(seconds=seconds)

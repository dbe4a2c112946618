"""Clock helpers and the units tests count in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the product writes it (a trailing Z for UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(t: datetime) -> str:
    """`t` in UTC with microseconds: a TOML offset datetime and an RFC 3339 time."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def passed(t: datetime) -> Callable[[], bool]:
    """A predicate for wait_until: the wall clock is past `t`."""
    return lambda: utc_now() > t

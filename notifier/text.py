"""Text in the forms every output shares: one line, escaped line breaks, shown lines,
RFC 3339 times.

One source for each form, so a ledger row, a log line, a `STATUS=` text and a
JSON field never disagree about what "one line" or "UTC" means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

_BREAKS: Final = re.compile(r"\r\n|[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# C0 (but tab and the breaks above), DEL and C1: a terminal may act on any of them
# (ESC and CSI start escape sequences), so none reaches one as itself.
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")


def one_line(text: str, limit: int | None = None) -> str:
    """`text` with every run of white space (line breaks included) as one space.

    For a reason shown in one line (an error, a ledger row, a ``STATUS=``):
    with `limit`, cut to at most that many characters, ending in an ellipsis.
    """
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "\u2026"
    return text


LISTED: Final = 10
"""How many items `listed` names before it counts the rest."""


def listed(items: Sequence[str], limit: int = LISTED) -> str:
    """`a, b, c`; past `limit` items the first `limit` and a count of the rest
    (`a, b, ..., j and 990 more`), so a line about a huge config stays short."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"


def escaped(text: str) -> str:
    """`text` on one line: breaks written as ``\\n``, control characters as ``\\uXXXX``.

    For a line whose reader must see the text as it was (a log line, a
    ``console://`` title): unlike `one_line`, nothing is folded away.
    """
    return _visible(_BREAKS.sub(r"\\n", text))


def shown_lines(text: str) -> list[str]:
    """`text` as the lines a terminal shows: split at every break `escaped` writes as
    ``\\n``, control characters as ``\\uXXXX``, trailing white space and empty lines dropped.

    For a message shown as lines of its own (``console://``, `notifier replay`):
    each line is safe to print, and a message's lines follow one another with
    no gap, so where one message ends stays plain.
    """
    lines = (_visible(line).rstrip() for line in _BREAKS.split(text))
    return [line for line in lines if line]


def for_terminal(text: str) -> str:
    """`text` as one table cell or line of a command's output: `one_line`, with the
    control characters left (ESC, ...) written as ``\\uXXXX`` as `escaped` writes them,
    so a title or a reason can neither recolour nor rewrite the terminal."""
    return _visible(one_line(text))


def _visible(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def rfc3339(instant: datetime, *, fraction: bool = False) -> str:
    """An aware instant as RFC 3339 in UTC with a ``Z``.

    To the second by default: the form of notification keys and of every JSON
    time. With `fraction`, microseconds too when there are any (a delivery's
    ``sent_at``, where lateness is measured).
    """
    utc = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    if fraction and utc.microsecond:
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    # A plan asks three times per item, mostly for instants it asked before (a
    # deadline's due, for each of its reminders): remembered, at 1/30 of the cost.
    # Only UTC instants: two local times a fold apart compare (and hash) equal.
    text = _SECONDS.get(utc)
    if text is None:
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        text = _SECONDS[utc] = _seconds(utc)
    return text


def _seconds(utc: datetime) -> str:
    if utc.year < 1000:
        # Keys in ledgers written so far came from strftime, which does not pad such years.
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    # isoformat is several times cheaper than strftime.
    return utc.isoformat(timespec="seconds")[:-6] + "Z"  # less its "+00:00"


_SECONDS: dict[datetime, str] = {}
"""`rfc3339` of UTC instants asked for lately (at most `_SECONDS_MAX`)."""
_SECONDS_MAX: Final = 4096
"""About 0.6 MiB, held by the daemon for good (65,536 were 9.8 MiB)."""

"""Zone names that are not a place (`EST`, `EST5EDT`, `Etc/GMT+5`, `US/Eastern`): the advice."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

from notifier.config import tomlpos
from notifier.config.located import Collector
from notifier.redact import from_input, shown

US_PLACES = {
    "EST5EDT": "America/New_York", "CST6CDT": "America/Chicago",
    "MST7MDT": "America/Denver", "PST8PDT": "America/Los_Angeles",
    "EST": "America/New_York", "MST": "America/Denver", "HST": "Pacific/Honolulu",
}
"""The US names tzdata keeps for old POSIX systems, and the place an operator writing
them most likely means (tzdata 2024b links the first four to these very zones; it
links EST and MST to America/Panama and America/Phoenix, which have no DST, while
"EST" in a schedule usually means New York's clock). tzdata has no such data."""


def warn_not_a_place(name: str, col: Collector, where: tomlpos.Path) -> None:
    """A warning where `name` is first used, once per name for the file."""
    message = advice(name)
    if message is not None and not any(w.message in (shown(message), shown(message, hide=True))
                                       for w in col.warnings):
        col.add(where, message, warning=True)


@lru_cache(maxsize=256)
def advice(name: str) -> str | None:
    """What to write instead of `name`, or None for a place-based zone or UTC."""
    places, links = _tzdata()
    if name in places:
        return None
    zone = zoneinfo.ZoneInfo(name)
    # Offsets now, in winter and summer of both hemispheres: what a schedule will meet.
    probes = [datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)]
    offsets = {zone.utcoffset(t) for t in probes}
    if offsets == {timedelta(0)}:
        return None  # UTC by any of its names is a clear choice
    place = US_PLACES.get(name)
    target = links.get(name)
    if place is None and target is not None and target in places:
        return f"{from_input(name)} is a legacy name for {target}; write {target!r}"
    if len(offsets) == 1:
        fixed = f"{from_input(name)} is a fixed UTC{_hhmm(offsets.pop())} all year, with no" \
                " daylight saving time"
        if name.startswith("Etc/GMT"):
            fixed += " (its sign is inverted, POSIX style)"
        example = f"such as {place!r}" if place is not None else "(Area/City)"
        return f"{fixed}; if you mean the clock of a place, write its zone {example}"
    if place is not None:
        return f"{from_input(name)} is a legacy POSIX-style zone, not a place; write {place!r}"
    return f"{from_input(name)} is a legacy zone name, not a place; write the zone (Area/City)" \
           " whose clock you mean"


def _hhmm(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@lru_cache(maxsize=1)
def _tzdata() -> tuple[frozenset[str], dict[str, str]]:
    """Place-based zones (zone1970.tab, zone.tab) and links (tzdata.zi's `L` lines)
    of the data zoneinfo reads: the first zone directory that has them, else the
    `tzdata` package. Empty where neither ships them (then only the offsets speak)."""
    texts: dict[str, str] = {}
    for part in ("zone1970.tab", "zone.tab", "tzdata.zi"):
        texts[part] = _read(part)
    places = frozenset(
        fields[2] for part in ("zone1970.tab", "zone.tab")
        for line in texts[part].splitlines()
        if not line.startswith("#") and len(fields := line.split("\t")) >= 3
    )
    links = {fields[2]: fields[1] for line in texts["tzdata.zi"].splitlines()
             if line.startswith("L ") and len(fields := line.split()) == 3}
    return places, links


def _read(part: str) -> str:
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / part
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace")
    try:
        return resources.files("tzdata").joinpath("zoneinfo", part).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return ""

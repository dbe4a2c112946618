"""What the commands share: the result they return, the config, the ledger, instants."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from notifier.config import loader as config_mod
from notifier.config import paths
from notifier.errors import UsageError
from notifier.redact import shown
from notifier.schedule.timing import LocalTimeProblem, day_start, local_instant

if TYPE_CHECKING:
    from notifier.delivery.ledger import Ledger

# The exit statuses the README lists, sysexits.h's where one fits.
EX_OK, EX_RUNTIME, EX_USAGE = 0, 1, 2
EX_LEDGER = 74  # EX_IOERR: the ledger is unreadable or damaged; never sent blind
EX_CONFIG = 78
DEFAULT_SPAN = timedelta(days=30)
"""How far `plan` and `replay` look when no end is given."""


class Result(NamedTuple):
    """What a command leaves for the shell to print, and its exit status."""

    text: str = ""
    """Standard output, printed as it is (its lines end in a newline)."""
    status: int = EX_OK
    notes: tuple[str, ...] = ()
    """Lines for standard error, printed before `text`."""
    verbatim: bool = False
    """`text` is rich's, made for this terminal (or none): printed without stripping styles."""


def load_config(path: Path | None, *, for_reload: bool = False,
                first_seen: config_mod.FirstSeenFrom | None = None) -> config_mod.Config:
    """The config at `path`, else at the default place; raises ConfigError."""
    chosen = paths.config_path(path, os.environ)
    return config_mod.load(chosen, for_reload=for_reload,
                           first_seen=first_seen or config_mod.NOT_SEEN)


def warning_lines(cfg: config_mod.Config) -> tuple[str, ...]:
    return tuple(w.text(warning=True) for w in cfg.warnings)


def instant(value: datetime | date, zone: ZoneInfo, flag: str) -> datetime:
    """A command line's date or datetime in UTC; without an offset it is read in `zone`.

    A local time that `zone`'s clocks skip or repeat is refused as the config file
    refuses it (a UsageError naming `flag`, e.g. "--at"), with the two readings to write.
    """
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if not isinstance(value, datetime):
        # A date is its first instant, as `announced = 2020-11-10` is: where the
        # clocks skip midnight (America/Santiago) the day starts at 01:00.
        return day_start(value, zone).astimezone(UTC)
    wall = value
    found = local_instant(wall, zone)
    if isinstance(found, LocalTimeProblem):
        raise UsageError(f"{flag}: {shown(found.message(wall, zone))}")
    return found


def until_after_from(begin: datetime, finish: datetime) -> None:
    """The rule of `plan`'s and `replay`'s interval [--from, --until): not empty.
    Raises UsageError."""
    if finish <= begin:
        raise UsageError("--until must be after --from")


def writable_ledger(cfg: config_mod.Config, path: Path | None = None, *,
                    owner: bool = False) -> Ledger:
    """The ledger for writing (at `path`, else the config's), owned by this daemon if
    `owner` (see open_ledger); raises LedgerError."""
    from notifier.delivery.ledger import open_ledger  # noqa: PLC0415 - `check` never reads it

    return open_ledger(path or paths.ledger_path(cfg.state, os.environ), owner=owner)


@contextmanager
def readonly_ledger(cfg: config_mod.Config) -> Iterator[Ledger | None]:
    """The ledger if it exists (for first-seen times and deliveries), else None."""
    from notifier.delivery.ledger import open_ledger  # noqa: PLC0415 - `check` never reads it

    path = paths.ledger_path(cfg.state, os.environ)
    if not path.exists():
        yield None
        return
    book = open_ledger(path, readonly=True)
    try:
        yield book
    finally:
        book.close()


def ledger_first_seen(where: Path) -> config_mod.FirstSeen:
    """The first-seen times `plan` and `status` use (SPEC 3): the ledger's, if it exists.
    Raises LedgerError."""
    from notifier.delivery.ledger import open_ledger  # noqa: PLC0415 - `check` never reads it

    if not where.exists():
        return config_mod.NOT_SEEN
    book = open_ledger(where, readonly=True)
    try:
        return config_mod.FirstSeen(book.first_seen())
    finally:
        book.close()


def start_logging(cfg: config_mod.Config, level: str | None = None) -> None:
    from notifier.logs import setup_logging  # noqa: PLC0415 - only the daemon's commands log

    setup_logging(level or cfg.log_level, secrets=cfg.secrets)

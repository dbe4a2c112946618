"""The delivery ledger: what was claimed, sent, retried, failed or skipped.

Callers use the interface and records from here and open a ledger with
`open_ledger`; only code that needs SQLite itself imports `.sqlite`. The
backend's driver is imported when a ledger is opened, not with this package
(`notifier check` never loads sqlite3).
"""

from __future__ import annotations

from pathlib import Path

from notifier.delivery.ledger.base import (
    MAX_ERROR_CHARS,
    SCHEMA_VERSION,
    Claim,
    DeliveryRecord,
    DeliveryState,
    Ledger,
    Sent,
    Skip,
)
from notifier.delivery.ledger.file import ledger_exists

__all__ = [
    "MAX_ERROR_CHARS",
    "SCHEMA_VERSION",
    "Claim",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "Sent",
    "Skip",
    "daemon_has_owned",
    "ledger_exists",
    "open_ledger",
]


def open_ledger(path: str | Path, *, readonly: bool = False, owner: bool = False) -> Ledger:
    """Open (creating if needed, unless `readonly`) the ledger at `path`.

    `owner`: the caller is the daemon (`notifier run`) that delivers from this
    ledger. One daemon owns a SQLite ledger at a time, until it closes it or
    ends; a second is refused with a LedgerError naming the owner's pid. No
    other caller takes part in this.

    Raises LedgerError, naming the path, when the file is missing (read-only),
    unreadable, not a SQLite database, damaged, of a newer schema version, or
    owned by another daemon.
    """
    from notifier.delivery.ledger.sqlite import SqliteLedger  # noqa: PLC0415 -- sqlite3 loads only for commands that open a ledger

    return SqliteLedger(path, readonly=readonly, owner=owner)


def daemon_has_owned(path: str | Path) -> bool:
    """Whether a daemon has ever owned the ledger at `path` (its lock file stays)."""
    from notifier.delivery.ledger.sqlite_owner import lock_path  # noqa: PLC0415 -- as above

    return lock_path(Path(path)).exists()

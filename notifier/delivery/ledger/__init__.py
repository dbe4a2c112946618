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
    FixedText,
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
    "FixedText",
    "Ledger",
    "Sent",
    "Skip",
    "ledger_exists",
    "open_ledger",
]


def open_ledger(path: str | Path, *, readonly: bool = False) -> Ledger:
    """Open (creating if needed, unless `readonly`) the ledger at `path`.

    Raises LedgerError, naming the path, when the file is missing (read-only),
    unreadable, not a SQLite database, damaged, or of a newer schema version.
    """
    from notifier.delivery.ledger.sqlite import SqliteLedger  # noqa: PLC0415 -- sqlite3 loads only for commands that open a ledger

    return SqliteLedger(path, readonly=readonly)

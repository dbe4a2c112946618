"""Reading a ledger file from outside the daemon that writes it."""

from __future__ import annotations

from pathlib import Path

from notifier.delivery.ledger import DeliveryRecord, open_ledger


def rows(ledger_path: Path) -> list[DeliveryRecord]:
    """The ledger's rows, read through a separate read-only connection."""
    book = open_ledger(ledger_path, readonly=True)
    try:
        return book.history()
    finally:
        book.close()

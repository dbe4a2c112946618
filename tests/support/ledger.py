"""Reading a ledger file from outside the daemon that writes it."""

from __future__ import annotations

from pathlib import Path

from notifier.delivery.ledger import DeliveryRecord, open_ledger
from support.times import utc_now


def rows(ledger_path: Path) -> list[DeliveryRecord]:
    """The ledger's rows, read through a separate read-only connection."""
    book = open_ledger(ledger_path, readonly=True)
    try:
        return book.history()
    finally:
        book.close()


def alive_now(ledger_path: Path) -> None:
    """Mark the ledger's daemon alive now, before a test starts it: a due a second or
    two ahead is then caught up (sent, late) by a start that a loaded machine made
    slower than that, where a first start would send nothing planned before it."""
    book = open_ledger(ledger_path)
    try:
        book.touch_alive(utc_now())
    finally:
        book.close()

"""Ledger stores for the contract suite: one per backend, each opened and reopened at will.

tests/test_ledger.py runs every behaviour of the `Ledger` interface against
each store in STORES, so two backends cannot drift apart. A backend joins by
adding a store here (a PostgreSQL one: a fresh database per store, dropped
after).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from notifier.delivery.ledger import Claim, DeliveryRecord, Ledger, open_ledger

STORES = ("sqlite",)
"""The backends every contract test runs against."""

T0 = datetime(2020, 11, 15, 14, 54, 0, 123456, tzinfo=UTC)
"""The Kalbajar extension was announced at 14:54 UTC on 15 November 2020."""

KEY = "kalbajar/reminder/2020-11-25T05:00:00Z/1d"


class Store(Protocol):
    """Where one test's ledger lives, empty at first; every `open` sees the same data."""

    @property
    def address(self) -> str:
        """What `open_ledger` takes to reach it (in another process too)."""
        ...

    def open(self, *, readonly: bool = False) -> Ledger: ...

    def drop(self) -> None:
        """Remove all it holds."""
        ...


@dataclass(frozen=True)
class SqliteStore:
    """A ledger file in a directory of its own."""

    directory: Path

    @property
    def path(self) -> Path:
        return self.directory / "state" / "notifier.db"

    @property
    def address(self) -> str:
        return str(self.path)

    def open(self, *, readonly: bool = False) -> Ledger:
        return open_ledger(self.path, readonly=readonly)

    def drop(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_store(backend: str) -> Store:
    """A new, empty store of `backend` (one of STORES)."""
    if backend == "sqlite":
        return SqliteStore(Path(tempfile.mkdtemp(prefix="notifier-ledger-")))
    raise ValueError(f"no ledger store for {backend!r}")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def claim(
    ledger: Ledger,
    key: str = KEY,
    channel: str = "ops",
    *,
    now: datetime = T0,
    deadline: str | None = "kalbajar",
    late: bool = False,
) -> bool:
    return ledger.claim(
        Claim(key, channel, deadline=deadline, kind="reminder", planned_at=T0, late=late), now=now
    )


def only(ledger: Ledger, key: str = KEY, channel: str = "ops") -> DeliveryRecord:
    rows = [r for r in ledger.history() if (r.key, r.channel) == (key, channel)]
    assert len(rows) == 1
    return rows[0]

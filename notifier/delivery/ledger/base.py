"""The ledger's interface: the `Ledger` protocol and the plain records it speaks.

One row per delivery (notification key x channel). The dispatcher follows
claim -> send -> mark: `claim` commits durably before it returns True, so a
notification is never lost and is duplicated only if the process dies while a
send is in flight (`recover_in_flight` turns such rows into due retries).

Every backend (SQLite today, PostgreSQL later) implements `Ledger` with the
same behaviour; tests/test_ledger.py holds the contract every backend passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import NamedTuple, Protocol, Self

SCHEMA_VERSION = 1
"""The ledger schema version this code writes and understands."""

MAX_ERROR_CHARS = 500
"""`last_error` (and a skip reason) is cut to this many characters."""

INTERRUPTED = "interrupted: the daemon stopped while this delivery was being sent"
"""`last_error` of a delivery that `recover_in_flight` found claimed."""


def aware(t: datetime) -> datetime:
    """`t`, refused (ValueError) unless timezone-aware: a ledger stores instants."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("ledger times must be timezone-aware datetimes")
    return t


class DeliveryState(StrEnum):
    CLAIMED = "claimed"
    """A sender owns it and may be sending right now."""
    SENT = "sent"
    """Delivered; terminal."""
    RETRYING = "retrying"
    """Failed for now; may be claimed again from `next_attempt` on."""
    FAILED = "failed"
    """Given up; terminal."""
    SKIPPED = "skipped"
    """Deliberately not sent (e.g. missed during downtime); terminal."""


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of the ledger: a notification key delivered to one channel."""

    key: str
    channel: str
    deadline: str | None
    kind: str
    planned_at: datetime
    state: DeliveryState
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    late: bool
    created_at: datetime
    updated_at: datetime


class Skip(NamedTuple):
    """One delivery a catch-up decided not to make."""

    key: str
    channel: str
    deadline: str | None
    kind: str
    planned_at: datetime


class Claim(NamedTuple):
    """One delivery to take ownership of (see `Ledger.claim`)."""

    key: str
    channel: str
    deadline: str | None
    kind: str
    planned_at: datetime
    late: bool = False


class Sent(NamedTuple):
    """One delivery that went out at `at` (see `Ledger.mark_sent`)."""

    key: str
    channel: str
    at: datetime


class Ledger(Protocol):
    """What the daemon and the commands need from a delivery ledger.

    Every datetime argument must be timezone-aware (ValueError otherwise);
    every datetime returned is in UTC. Write failures raise LedgerWriteError,
    after which the ledger stays usable; other failures raise LedgerError.

    A backend subclasses `Ledger` explicitly and so inherits the methods given
    here in terms of others (one delivery as a batch of one; the context
    manager as `close`): each rule is written once, for every backend.
    """

    def claim(self, delivery: Claim, *, now: datetime) -> bool:
        """Take ownership of `delivery`; True only if the caller must send it now.

        True when there was no row (inserted as claimed, attempts=1) or the row
        was a retry due at `now` (claimed again, attempts+1); the claim is
        durably committed before True is returned. False otherwise.
        """
        (claimed,) = self.claim_many([delivery], now=now)
        return claimed

    def claim_many(self, claims: Iterable[Claim], *, now: datetime) -> list[bool]:
        """`claim` for many deliveries in one transaction: one durable commit for all.

        Returns, in order, whether each was claimed. All or none: if the
        commit fails, nothing is claimed. A (key, channel) listed twice is
        claimed at most once.
        """
        ...

    def mark_sent(self, key: str, channel: str, *, now: datetime) -> None:
        """The delivery went out (always wins, from any state)."""
        self.mark_sent_many([Sent(key, channel, now)])

    def mark_sent_many(self, sent: Iterable[Sent]) -> None:
        """`mark_sent` for many deliveries, in one transaction (all or none)."""
        ...

    def mark_retry(
        self, key: str, channel: str, *, now: datetime, error: str, next_attempt: datetime
    ) -> None:
        """A claimed (or retrying) delivery failed; try again from `next_attempt`."""
        ...

    def mark_failed(self, key: str, channel: str, *, now: datetime, error: str) -> None:
        """A claimed (or retrying) delivery is given up."""
        ...

    def mark_skipped(self, delivery: Skip, *, now: datetime, reason: str) -> None:
        """Record `delivery` as deliberately not made: a new row, or a pending retry.

        Sent, failed and skipped rows are final and a claimed row is being
        sent: those are left alone.
        """
        self.mark_skipped_many([delivery], now=now, reason=reason)

    def mark_skipped_many(
        self, skips: Iterable[Skip], *, now: datetime, reason: str
    ) -> None:
        """`mark_skipped` for many deliveries, in one transaction."""
        ...

    def recover_in_flight(self, now: datetime) -> int:
        """At start: rows left claimed by a crash become retries due `now`."""
        ...

    def due_retries(self, now: datetime) -> list[DeliveryRecord]:
        """Retries with next_attempt <= now, the longest-waiting first."""
        ...

    def next_retry_at(self) -> datetime | None:
        """The earliest pending retry, if any."""
        ...

    def states(self, keys: Iterable[str]) -> dict[tuple[str, str], DeliveryState]:
        """(key, channel) -> state for every row whose key is among `keys`."""
        ...

    def record_first_seen(self, ids: Iterable[str], now: datetime) -> dict[str, datetime]:
        """Store `now` for ids not seen before; return the stored time of every id."""
        ...

    def first_seen(self) -> dict[str, datetime]:
        """Every id's first-seen time."""
        ...

    def last_alive(self) -> datetime | None:
        """The last heartbeat recorded by `touch_alive`."""
        ...

    def touch_alive(self, now: datetime) -> None:
        """Record a heartbeat."""
        ...

    def history(
        self, deadline: str | None = None, limit: int | None = None
    ) -> list[DeliveryRecord]:
        """Rows (of one deadline, if given), most recently updated first."""
        ...

    def last_delivery(self, deadline: str, upto: datetime | None = None) -> DeliveryRecord | None:
        """The most recently updated delivery of a deadline, whatever its state; with
        `upto`, the last one updated at or before it (`status --at` in the past must
        not show what happened after)."""
        ...

    def delivery(self, key: str, channel: str) -> DeliveryRecord | None:
        """The one delivery of `key` to `channel`, if there is one (a lookup by key)."""
        ...

    def close(self) -> None:
        """Release the ledger; idempotent."""
        ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

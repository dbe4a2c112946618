"""SQLite rows read back as records: every stored value checked, every time in UTC.

Instants are stored as INTEGER microseconds since the Unix epoch; a value
that is not one (a damaged or hand-edited row) is a `LedgerError` naming
the ledger and the row, never a wrong time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from notifier.delivery.ledger.base import DeliveryRecord, DeliveryState, aware
from notifier.errors import LedgerError
from notifier.schedule import timing


def to_us(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    return timing.epoch_us(aware(t))


def from_us(value: object, what: str) -> datetime:
    """A stored time back in UTC; `what` names it in the error if it is not one."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise LedgerError(f"{what} is not a stored time")
    try:
        return timing.from_epoch_us(value)
    except OverflowError as exc:
        raise LedgerError(f"{what} is out of range") from exc


def state(value: object, where: str) -> DeliveryState:
    """A stored state; `where` names the row in the error."""
    try:
        return DeliveryState(str(value))
    except ValueError:
        raise LedgerError(f"{where}: unknown state {value!s}") from None


def record(path: Path, row: tuple[object, ...]) -> DeliveryRecord:
    """A row of one of sqlite_sql's record queries (ONE, HISTORY, ...) as a record."""
    (key, channel, deadline, kind, planned_at, stored_state, attempts, next_attempt,
     last_error, late, created_at, updated_at) = row
    where = f"ledger {path}: delivery {key!s}/{channel!s}"
    parsed_state = state(stored_state, where)
    if not isinstance(attempts, int):
        raise LedgerError(f"{where}: attempts is not a number")
    return DeliveryRecord(
        key=str(key),
        channel=str(channel),
        deadline=None if deadline is None else str(deadline),
        kind=str(kind),
        planned_at=from_us(planned_at, f"{where}: planned_at"),
        state=parsed_state,
        attempts=attempts,
        next_attempt=(
            None if next_attempt is None else from_us(next_attempt, f"{where}: next_attempt")
        ),
        last_error=None if last_error is None else str(last_error),
        late=bool(late),
        created_at=from_us(created_at, f"{where}: created_at"),
        updated_at=from_us(updated_at, f"{where}: updated_at"),
    )


def first_seen_times(path: Path, rows: Iterable[tuple[object, object]]) -> dict[str, datetime]:
    """(id, at) rows as id -> time."""
    # Most ids share a few instants (those of the starts that first saw
    # them): each distinct instant becomes one datetime, shared.
    times: dict[object, datetime] = {}
    stored: dict[str, datetime] = {}
    for ident, at in rows:
        when = times.get(at) if type(at) is int else None
        if when is None:
            when = from_us(at, f"ledger {path}: first_seen {ident}")
            times[at] = when
        stored[str(ident)] = when
    return stored

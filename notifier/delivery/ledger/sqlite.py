"""The SQLite ledger: one embedded file (stdlib sqlite3, WAL, synchronous=FULL).

The API only accepts aware datetimes and returns them in UTC; instants are
stored as INTEGER microseconds (see sqlite_sql). A file that is not a notifier
ledger of a known version is never written: opening it raises `LedgerError`
naming the path and the problem (file.py checks it before SQLite opens it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

from notifier.delivery.ledger import base, sqlite_open, sqlite_rows, sqlite_sql
from notifier.delivery.ledger.base import DeliveryRecord, DeliveryState, Ledger
from notifier.delivery.ledger.sqlite_open import rollback, sqlite_reason
from notifier.delivery.ledger.sqlite_owner import OwnerLock
from notifier.delivery.ledger.sqlite_rows import from_us, to_us
from notifier.errors import LedgerError, LedgerWriteError
from notifier.text import one_line

_SCAN_ABOVE = 5_000
"""More first-seen ids than this are read back by one scan of the table."""

_LAST_ALIVE = "last_alive"
_NO_BOUND = 2**63 - 1
"""An `updated_at` bound above every stored time (microseconds fit in SQLite's int64)."""

_PENDING = frozenset({DeliveryState.CLAIMED, DeliveryState.RETRYING})
"""The states a retry or a failure may be marked in; the others are final."""


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), sqlite_sql.CHUNK):
        yield items[start : start + sqlite_sql.CHUNK]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _insert_first_seen(conn: sqlite3.Connection, ids: list[str], at_us: int) -> int:
    """Insert the ids not in first_seen yet, at `at_us`; returns how many were new.

    One statement over a JSON array: binding 110,000 rows one by one (executemany)
    took 0.38 s, this 0.15 s. SQLite has had json_each built in since 3.38; an
    older or trimmed build takes the slow way.
    """
    try:
        return conn.execute(
            sqlite_sql.INSERT_FIRST_SEEN_JSON, (at_us, json.dumps(ids, ensure_ascii=False)),
        ).rowcount
    except sqlite3.OperationalError as e:
        if "json_each" not in str(e):
            raise
    return conn.executemany(sqlite_sql.INSERT_FIRST_SEEN, ((i, at_us) for i in ids)).rowcount


# --------------------------------------------------------------------------- SQLite


class SqliteLedger(Ledger):
    """The embedded ledger: one SQLite connection shared by threads under a lock.

    `readonly=True` opens an existing file without creating or changing
    anything (for `status`, `history`, `plan`); writes then raise LedgerError.
    `owner=True` (the daemon) first takes the ledger's owner lock (see
    sqlite_owner), held until `close`: a second owner is refused.
    `max_page_count` caps the database size in pages, which lets tests make
    the "disk" fill up (see also `set_max_page_count`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        owner: bool = False,
        max_page_count: int | None = None,
        busy_timeout: float = 10.0,
    ) -> None:
        if owner and readonly:
            raise ValueError("the owner of a ledger writes it: owner=True needs readonly=False")
        self._path = Path(path)
        self._readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # Before anything is read or initialised: a second daemon changes nothing.
        self._owner = OwnerLock.take(self._path) if owner else None
        try:
            conn = sqlite_open.connect(self._path, readonly=readonly, busy_timeout=busy_timeout)
        except BaseException:
            self._release_owner()
            raise
        try:
            self._default_max_pages = int(conn.execute("PRAGMA max_page_count").fetchone()[0])
            if max_page_count is not None:
                self._apply_max_page_count(conn, max_page_count)
        except BaseException:
            conn.close()
            self._release_owner()
            raise
        self._conn = conn

    def _release_owner(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.release()

    def _apply_max_page_count(self, conn: sqlite3.Connection, pages: int | None) -> None:
        limit = self._default_max_pages if pages is None else pages
        if limit < 1:
            raise ValueError("max_page_count must be positive")
        conn.execute(f"PRAGMA max_page_count = {int(limit)}")

    # ------------------------------------------------------------------ plumbing

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    def set_max_page_count(self, pages: int | None) -> None:
        """Cap the database size in pages (None: SQLite's default). For tests:
        a cap at the current size makes every growing write fail as if the disk
        were full. SQLite never sets the cap below the current size."""
        with self._lock:
            conn = self._connection()
            try:
                self._apply_max_page_count(conn, pages)
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self._path}: {sqlite_reason(exc)}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self._path}: is closed")
        return self._conn

    def _write(self, what: str) -> AbstractContextManager[sqlite3.Connection]:
        """One IMMEDIATE transaction; any SQLite error -> LedgerWriteError, rolled back."""
        return self._transaction(what, write=True)

    def _read(self, what: str) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction (a consistent snapshot); SQLite errors -> LedgerError."""
        return self._transaction(what, write=False)

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT under the lock, rolled back on any error."""
        begin, failure = ("BEGIN IMMEDIATE", LedgerWriteError) if write else ("BEGIN", LedgerError)
        with self._lock:
            conn = self._connection()
            if write and self._readonly:
                raise LedgerError(f"ledger {self._path}: is open read-only; cannot {what}")
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                rollback(conn)
                raise failure(f"ledger {self._path}: cannot {what}: {sqlite_reason(exc)}") from exc
            except BaseException:
                rollback(conn)
                raise

    def _record(self, row: tuple[object, ...]) -> DeliveryRecord:
        return sqlite_rows.record(self._path, row)

    def _get(
        self, conn: sqlite3.Connection, key: str, channel: str
    ) -> tuple[str, int | None] | None:
        row = conn.execute(sqlite_sql.GET_STATE, (key, channel)).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def _mark(self, key: str, channel: str, *, what: str, sql: str,
              values: tuple[object, ...]) -> None:
        """Apply `sql` (values, then key and channel) if the delivery is still pending."""
        with self._write(what) as conn:
            current = self._get(conn, key, channel)
            if current is None:
                raise LedgerError(
                    f"ledger {self._path}: cannot {what}: no delivery {key}/{channel}"
                )
            if current[0] not in _PENDING:
                return  # a terminal state wins; nothing to change
            conn.execute(sql, (*values, key, channel))

    # ------------------------------------------------------------------ deliveries

    def claim_many(self, claims: Iterable[base.Claim], *, now: datetime) -> list[bool]:
        now_us = to_us(now)
        wanted = [(c, to_us(c.planned_at)) for c in claims]
        if not wanted:
            return []
        claimed: list[bool] = []
        # One transaction, so a burst of N deliveries costs one fsync, not N.
        with self._write("claim deliveries") as conn:
            for c, planned_us in wanted:
                current = self._get(conn, c.key, c.channel)
                if current is None:
                    conn.execute(
                        sqlite_sql.INSERT_CLAIM,
                        (c.key, c.channel, c.deadline, c.kind, planned_us, int(c.late),
                         now_us, now_us),
                    )
                    claimed.append(True)
                    continue
                state, next_attempt = current
                if (state != DeliveryState.RETRYING or next_attempt is None
                        or next_attempt > now_us):
                    claimed.append(False)
                    continue
                conn.execute(sqlite_sql.RECLAIM, (int(c.late), now_us, c.key, c.channel))
                claimed.append(True)
        return claimed

    def mark_sent_many(self, sent: Iterable[base.Sent]) -> None:
        rows = [(s.key, s.channel, to_us(s.at)) for s in sent]
        if not rows:
            return
        with self._write("mark deliveries sent") as conn:
            for key, channel, at_us in rows:
                current = self._get(conn, key, channel)
                if current is None:
                    # Rolls back the marks before it too: the caller learns
                    # that none of them was recorded.
                    raise LedgerError(
                        f"ledger {self._path}: cannot mark deliveries sent: "
                        f"no delivery {key}/{channel}"
                    )
                if current[0] != DeliveryState.SENT:
                    conn.execute(sqlite_sql.MARK_SENT, (at_us, key, channel))

    def mark_retry(
        self, key: str, channel: str, *, now: datetime, error: str, next_attempt: datetime
    ) -> None:
        self._mark(key, channel, what="mark a delivery for retry", sql=sqlite_sql.MARK_RETRY,
                   values=(to_us(next_attempt), one_line(error, base.MAX_ERROR_CHARS), to_us(now)))

    def mark_failed(self, key: str, channel: str, *, now: datetime, error: str) -> None:
        self._mark(key, channel, what="mark a delivery failed", sql=sqlite_sql.MARK_FAILED,
                   values=(one_line(error, base.MAX_ERROR_CHARS), to_us(now)))

    def mark_skipped_many(
        self, skips: Iterable[base.Skip], *, now: datetime, reason: str
    ) -> None:
        # One commit (one fsync) for a catch-up that skips thousands.
        now_us, why = to_us(now), one_line(reason, base.MAX_ERROR_CHARS)
        rows = [(s.key, s.channel, s.deadline, s.kind, to_us(s.planned_at), why, now_us, now_us)
                for s in skips]
        if not rows:
            return
        with self._write("mark deliveries skipped") as conn:
            conn.executemany(sqlite_sql.UPSERT_SKIPPED, rows)

    def recover_in_flight(self, now: datetime) -> int:
        now_us = to_us(now)
        with self._write("recover interrupted deliveries") as conn:
            return conn.execute(
                sqlite_sql.RECOVER_IN_FLIGHT, (now_us, base.INTERRUPTED, now_us)).rowcount

    def due_retries(self, now: datetime) -> list[DeliveryRecord]:
        now_us = to_us(now)
        with self._read("list due retries") as conn:
            rows = conn.execute(sqlite_sql.DUE_RETRIES, (now_us,)).fetchall()
            return [self._record(tuple(r)) for r in rows]

    def next_retry_at(self) -> datetime | None:
        with self._read("find the next retry") as conn:
            value = conn.execute(sqlite_sql.NEXT_RETRY).fetchone()[0]
            return None if value is None else from_us(value, f"ledger {self._path}: retry time")

    def states(self, keys: Iterable[str]) -> dict[tuple[str, str], DeliveryState]:
        wanted = _unique(keys)
        result: dict[tuple[str, str], DeliveryState] = {}
        with self._read("read delivery states") as conn:
            for chunk in _chunks(wanted):
                for key, channel, state in conn.execute(sqlite_sql.states_in(len(chunk)), chunk):
                    result[(str(key), str(channel))] = sqlite_rows.state(
                        state, f"ledger {self._path}: delivery {key}/{channel}")
        return result

    def history(
        self, deadline: str | None = None, limit: int | None = None
    ) -> list[DeliveryRecord]:
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        count = -1 if limit is None else limit  # LIMIT -1: no limit
        with self._read("read the history") as conn:
            if deadline is None:
                rows = conn.execute(sqlite_sql.HISTORY, (count,)).fetchall()
            else:
                rows = conn.execute(sqlite_sql.HISTORY_OF, (deadline, count)).fetchall()
            return [self._record(tuple(r)) for r in rows]

    def last_delivery(self, deadline: str, upto: datetime | None = None) -> DeliveryRecord | None:
        bound = _NO_BOUND if upto is None else to_us(upto)
        with self._read("read the last delivery") as conn:
            row = conn.execute(sqlite_sql.LAST_OF, (deadline, bound)).fetchone()
            return None if row is None else self._record(tuple(row))

    def delivery(self, key: str, channel: str) -> DeliveryRecord | None:
        with self._read("read a delivery") as conn:
            row = conn.execute(sqlite_sql.ONE, (key, channel)).fetchone()
            return None if row is None else self._record(tuple(row))

    # ------------------------------------------------------------------ first seen, alive

    def record_first_seen(self, ids: Iterable[str], now: datetime) -> dict[str, datetime]:
        wanted = _unique(ids)
        now_us = to_us(now)
        with self._write("record first-seen times") as conn:
            inserted = _insert_first_seen(conn, wanted, now_us)
            if not wanted:
                return {}
            if inserted == len(wanted):
                # All new (a first start): every time is `now`, as stored; none to read back.
                when = self._first_seen_times([(wanted[0], now_us)])[wanted[0]]
                return dict.fromkeys(wanted, when)
            if len(wanted) > _SCAN_ABOVE:
                # One pass over the table beats hundreds of IN (...) lookups.
                keep = set(wanted)
                rows: Iterable[tuple[object, object]] = [
                    r for r in conn.execute(sqlite_sql.ALL_FIRST_SEEN) if r[0] in keep
                ]
            else:
                rows = [
                    r for chunk in _chunks(wanted)
                    for r in conn.execute(sqlite_sql.first_seen_in(len(chunk)), chunk)
                ]
            return self._first_seen_times(rows)

    def first_seen(self) -> dict[str, datetime]:
        with self._read("read first-seen times") as conn:
            return self._first_seen_times(conn.execute(sqlite_sql.ALL_FIRST_SEEN))

    def _first_seen_times(self, rows: Iterable[tuple[object, object]]) -> dict[str, datetime]:
        return sqlite_rows.first_seen_times(self._path, rows)

    def last_alive(self) -> datetime | None:
        with self._read("read the last heartbeat") as conn:
            row = conn.execute(sqlite_sql.GET_META, (_LAST_ALIVE,)).fetchone()
        if row is None:
            return None
        try:
            value = int(row[0])
        except (TypeError, ValueError):
            raise LedgerError(f"ledger {self._path}: last_alive is not a stored time") from None
        return from_us(value, f"ledger {self._path}: last_alive")

    def touch_alive(self, now: datetime) -> None:
        now_us = to_us(now)
        with self._write("record a heartbeat") as conn:
            conn.execute(sqlite_sql.SET_META, (_LAST_ALIVE, str(now_us)))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"ledger {self._path}: cannot close: {sqlite_reason(exc)}"
            ) from exc
        finally:
            # After the connection: the next owner finds the file as this one left it.
            self._release_owner()

"""The delivery ledger: what was claimed, sent, retried, failed or skipped.

One row per delivery (notification key x channel). The dispatcher follows
claim -> send -> mark: `claim` commits durably before it returns True, so a
notification is never lost and is duplicated only if the process dies while a
send is in flight (`recover_in_flight` turns such rows into due retries).

`Ledger` is the interface the rest of notifier uses; `SqliteLedger` is the
embedded implementation (stdlib sqlite3, WAL, synchronous=FULL). A PostgreSQL
implementation can provide the same protocol later.

Storage choices:
- every instant is stored as INTEGER microseconds since the Unix epoch (UTC),
  which round-trips a timezone-aware datetime exactly and sorts numerically;
  the API only accepts aware datetimes and returns them in UTC;
- the schema version lives in `PRAGMA user_version` (currently 1);
- a file that is not a notifier ledger of a known version is never written:
  opening it raises `LedgerError` naming the path and the problem.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Protocol, Self

from notifier.delivery.ledger.file import create_file, inspect_file, ledger_exists
from notifier.errors import LedgerError, LedgerWriteError
from notifier.schedule import timing
from notifier.text import one_line

__all__ = [
    "SCHEMA_VERSION",
    "Claim",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "Sent",
    "Skip",
    "SqliteLedger",
    "ledger_exists",
    "open_ledger",
]

SCHEMA_VERSION = 1
"""The `PRAGMA user_version` this code writes and understands."""

MAX_ERROR_CHARS = 500
"""`last_error` (and a skip reason) is cut to this many characters."""

_CHUNK = 500
"""Keys per `IN (...)` query; far below SQLite's bound-parameter limit."""

_SCAN_ABOVE = 5_000
"""More first-seen ids than this are read back by one scan of the table."""




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
    """

    def claim(
        self,
        key: str,
        channel: str,
        *,
        deadline: str | None,
        kind: str,
        planned_at: datetime,
        now: datetime,
        late: bool = False,
    ) -> bool:
        """Take ownership of a delivery; True only if the caller must send it now.

        True when there was no row (inserted as claimed, attempts=1) or the row
        was a retry due at `now` (claimed again, attempts+1); the claim is
        durably committed before True is returned. False otherwise.
        """
        ...

    def claim_many(self, claims: Iterable[Claim], *, now: datetime) -> list[bool]:
        """`claim` for many deliveries in one transaction: one durable commit for all.

        Returns, in order, whether each was claimed. All or none: if the
        commit fails, nothing is claimed. A (key, channel) listed twice is
        claimed at most once.
        """
        ...

    def mark_sent(self, key: str, channel: str, *, now: datetime) -> None:
        """The delivery went out (always wins, from any state)."""
        ...

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

    def mark_skipped(
        self,
        key: str,
        channel: str,
        *,
        deadline: str | None,
        kind: str,
        planned_at: datetime,
        now: datetime,
        reason: str,
    ) -> None:
        """Record a delivery deliberately not made (new row, or a pending retry)."""
        ...

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

    def last_delivery(self, deadline: str) -> DeliveryRecord | None:
        """The most recently updated delivery of a deadline, whatever its state."""
        ...

    def close(self) -> None:
        """Release the ledger; idempotent."""
        ...


# --------------------------------------------------------------------------- schema

_STATES_SQL = ", ".join(f"'{s.value}'" for s in DeliveryState)

_SCHEMA: tuple[str, ...] = (
    f"""CREATE TABLE deliveries (
    -- one row per notification key x channel, every time in INTEGER
    -- microseconds since 1970-01-01T00:00:00Z
    key          TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    deadline     TEXT,
    kind         TEXT    NOT NULL,
    planned_at   INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ({_STATES_SQL})),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt INTEGER CHECK (state <> 'retrying' OR next_attempt IS NOT NULL),
    last_error   TEXT,
    late         INTEGER NOT NULL DEFAULT 0 CHECK (late IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (key, channel)
)""",
    "CREATE INDEX deliveries_by_deadline ON deliveries (deadline, updated_at)",
    "CREATE INDEX deliveries_by_state ON deliveries (state, next_attempt)",
    "CREATE INDEX deliveries_by_update ON deliveries (updated_at)",
    """CREATE TABLE first_seen (
    -- when a running daemon first saw a deadline ("kalbajar") or an
    -- extension ("kalbajar/ext/1"), in INTEGER microseconds since the epoch
    id TEXT    NOT NULL PRIMARY KEY,
    at INTEGER NOT NULL
)""",
    """CREATE TABLE meta (
    -- k = 'last_alive': v = the last heartbeat, microseconds since the epoch
    k TEXT NOT NULL PRIMARY KEY,
    v TEXT NOT NULL
)""",
)

_COLUMNS: dict[str, frozenset[str]] = {
    "deliveries": frozenset(
        {
            "key", "channel", "deadline", "kind", "planned_at", "state", "attempts",
            "next_attempt", "last_error", "late", "created_at", "updated_at",
        }
    ),
    "first_seen": frozenset({"id", "at"}),
    "meta": frozenset({"k", "v"}),
}

# Complete statements as literals: nothing but "?" placeholders is ever
# interpolated into SQL (see the two chunked IN queries).
_SQL_INSERT_CLAIM = (
    "INSERT INTO deliveries (key, channel, deadline, kind, planned_at, state, attempts, "
    "next_attempt, last_error, late, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'claimed', 1, NULL, NULL, ?, ?, ?)"
)
_SQL_RECLAIM = (
    "UPDATE deliveries SET state = 'claimed', attempts = attempts + 1, "
    "next_attempt = NULL, late = MAX(late, ?), updated_at = ? "
    "WHERE key = ? AND channel = ?"
)
_SQL_MARK_SENT = (
    "UPDATE deliveries SET state = 'sent', next_attempt = NULL, updated_at = ? "
    "WHERE key = ? AND channel = ?"
)
_SQL_MARK_RETRY = (
    "UPDATE deliveries SET state = 'retrying', next_attempt = ?, last_error = ?, "
    "updated_at = ? WHERE key = ? AND channel = ?"
)
_SQL_MARK_FAILED = (
    "UPDATE deliveries SET state = 'failed', next_attempt = NULL, last_error = ?, "
    "updated_at = ? WHERE key = ? AND channel = ?"
)
_SQL_UPSERT_SKIPPED = (
    "INSERT INTO deliveries (key, channel, deadline, kind, planned_at, state, attempts, "
    "next_attempt, last_error, late, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'skipped', 0, NULL, ?, 0, ?, ?) "
    "ON CONFLICT (key, channel) DO UPDATE SET state = 'skipped', next_attempt = NULL, "
    "last_error = excluded.last_error, updated_at = excluded.updated_at "
    "WHERE deliveries.state = 'retrying'"
)
_SQL_DUE_RETRIES = (
    "SELECT key, channel, deadline, kind, planned_at, state, attempts, next_attempt, "
    "last_error, late, created_at, updated_at FROM deliveries "
    "WHERE state = 'retrying' AND next_attempt <= ? "
    "ORDER BY next_attempt, created_at, rowid"
)
_SQL_HISTORY = (
    "SELECT key, channel, deadline, kind, planned_at, state, attempts, next_attempt, "
    "last_error, late, created_at, updated_at FROM deliveries "
    "ORDER BY updated_at DESC, rowid DESC LIMIT ?"
)
_SQL_HISTORY_OF = (
    "SELECT key, channel, deadline, kind, planned_at, state, attempts, next_attempt, "
    "last_error, late, created_at, updated_at FROM deliveries WHERE deadline = ? "
    "ORDER BY updated_at DESC, rowid DESC LIMIT ?"
)
_SQL_LAST_OF = (
    "SELECT key, channel, deadline, kind, planned_at, state, attempts, next_attempt, "
    "last_error, late, created_at, updated_at FROM deliveries "
    "WHERE deadline = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1"
)

_LAST_ALIVE = "last_alive"
_INTERRUPTED = "interrupted: the daemon stopped while this delivery was being sent"


# --------------------------------------------------------------------------- helpers


def _to_us(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("ledger times must be timezone-aware datetimes")
    return timing.epoch_us(t)


def _from_us(value: object, what: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LedgerError(f"{what} is not a stored time")
    try:
        return timing.from_epoch_us(value)
    except OverflowError as exc:
        raise LedgerError(f"{what} is out of range") from exc


def _sqlite_reason(exc: sqlite3.Error) -> str:
    """SQLite's own message (never contains bound values) on one line."""
    name = getattr(exc, "sqlite_errorname", None)
    message = one_line(str(exc)) or type(exc).__name__
    return f"{message} ({name})" if name else message


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


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
            "INSERT OR IGNORE INTO first_seen (id, at) SELECT value, ? FROM json_each(?)",
            (at_us, json.dumps(ids, ensure_ascii=False)),
        ).rowcount
    except sqlite3.OperationalError as e:
        if "json_each" not in str(e):
            raise
    return conn.executemany(
        "INSERT OR IGNORE INTO first_seen (id, at) VALUES (?, ?)", ((i, at_us) for i in ids),
    ).rowcount


# --------------------------------------------------------------------------- SQLite


class SqliteLedger:
    """The embedded ledger: one SQLite connection shared by threads under a lock.

    `readonly=True` opens an existing file without creating or changing
    anything (for `status`, `history`, `plan`); writes then raise LedgerError.
    `max_page_count` caps the database size in pages, which lets tests make
    the "disk" fill up (see also `set_max_page_count`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        max_page_count: int | None = None,
        busy_timeout: float = 10.0,
    ) -> None:
        self._path = Path(path)
        self._readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._default_max_pages = 0
        conn = self._open(busy_timeout)
        try:
            if max_page_count is not None:
                self._apply_max_page_count(conn, max_page_count)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # ------------------------------------------------------------------ opening

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        path = self._path
        if self._readonly:
            inspect_file(path, must_exist=True)
        elif not inspect_file(path, must_exist=False):
            create_file(path)
            inspect_file(path, must_exist=True)
        mode = "ro" if self._readonly else "rw"  # never let SQLite create the file
        uri = f"{path.absolute().as_uri()}?mode={mode}"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,  # explicit BEGIN/COMMIT only
                check_same_thread=False,  # shared by threads under self._lock
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {path}: cannot open: {_sqlite_reason(exc)}") from exc
        try:
            self._prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(f"ledger {path}: cannot open: {_sqlite_reason(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA synchronous = FULL")
        row = conn.execute("PRAGMA max_page_count").fetchone()
        self._default_max_pages = int(row[0])
        # Look first, change nothing until the file is known to be ours.
        conn.execute("BEGIN")
        try:
            empty = self._check(conn)
        finally:
            self._rollback(conn)
        if self._readonly:
            if empty:
                raise LedgerError(f"ledger {self._path}: is empty (never initialised)")
            return
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(
                f"ledger {self._path}: cannot use write-ahead logging here (journal mode {mode})"
            )
        if empty:
            self._initialise(conn)
        else:
            self._probe_write(conn)

    def _probe_write(self, conn: sqlite3.Connection) -> None:
        """Refuse a ledger we cannot write now, not at the first delivery.

        SQLite opens a write-protected file read-only without a word, and even
        BEGIN IMMEDIATE succeeds on it: only a page write fails. Rewriting
        user_version with its own value, rolled back, is such a write that
        changes nothing.
        """
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA user_version = {version}")
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):
                raise LedgerError(
                    f"ledger {self._path}: is read-only ({_sqlite_reason(exc)})"
                ) from exc
            raise
        finally:
            self._rollback(conn)

    def _check(self, conn: sqlite3.Connection) -> bool:
        """Validate an opened file; True if it is a blank database to initialise."""
        path = self._path
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            first = one_line(problems[0], 200) if problems else "no result"
            raise LedgerError(f"ledger {path}: is corrupt (integrity check: {first})")
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {path}: schema version {version} is newer than this notifier "
                f"supports ({SCHEMA_VERSION}); upgrade notifier"
            )
        if version == 0:
            if tables:
                raise LedgerError(
                    f"ledger {path}: is a SQLite database but not a notifier ledger"
                )
            return True
        if version < 0:
            raise LedgerError(f"ledger {path}: unknown schema version {version}")
        for table, wanted in _COLUMNS.items():
            if table not in tables:
                raise LedgerError(f"ledger {path}: table {table} is missing")
            have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
            missing = sorted(wanted - have)
            if missing:
                raise LedgerError(
                    f"ledger {path}: table {table} lacks column(s) {', '.join(missing)}"
                )
        return False

    def _initialise(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._check(conn):  # nobody initialised it meanwhile
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

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
                raise LedgerError(f"ledger {self._path}: {_sqlite_reason(exc)}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self._path}: is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; any SQLite error -> LedgerWriteError, rolled back."""
        with self._lock:
            conn = self._connection()
            if self._readonly:
                raise LedgerError(f"ledger {self._path}: is open read-only; cannot {what}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise LedgerWriteError(
                    f"ledger {self._path}: cannot {what}: {_sqlite_reason(exc)}"
                ) from exc
            except BaseException:
                self._rollback(conn)
                raise

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot); SQLite errors -> LedgerError."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise LedgerError(
                    f"ledger {self._path}: cannot {what}: {_sqlite_reason(exc)}"
                ) from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (e.g. on SQLITE_FULL); a failing
        # rollback leaves nothing more to undo, and the original error is what
        # the caller must see.
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _record(self, row: tuple[object, ...]) -> DeliveryRecord:
        (key, channel, deadline, kind, planned_at, state, attempts, next_attempt,
         last_error, late, created_at, updated_at) = row
        where = f"ledger {self._path}: delivery {key!s}/{channel!s}"
        try:
            parsed_state = DeliveryState(str(state))
        except ValueError:
            raise LedgerError(f"{where}: unknown state {state!s}") from None
        if not isinstance(attempts, int):
            raise LedgerError(f"{where}: attempts is not a number")
        return DeliveryRecord(
            key=str(key),
            channel=str(channel),
            deadline=None if deadline is None else str(deadline),
            kind=str(kind),
            planned_at=_from_us(planned_at, f"{where}: planned_at"),
            state=parsed_state,
            attempts=attempts,
            next_attempt=(
                None if next_attempt is None else _from_us(next_attempt, f"{where}: next_attempt")
            ),
            last_error=None if last_error is None else str(last_error),
            late=bool(late),
            created_at=_from_us(created_at, f"{where}: created_at"),
            updated_at=_from_us(updated_at, f"{where}: updated_at"),
        )

    def _get(
        self, conn: sqlite3.Connection, key: str, channel: str
    ) -> tuple[str, int | None] | None:
        row = conn.execute(
            "SELECT state, next_attempt FROM deliveries WHERE key = ? AND channel = ?",
            (key, channel),
        ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def _mark(
        self,
        key: str,
        channel: str,
        *,
        what: str,
        allowed: frozenset[DeliveryState],
        sql: str,
        values: tuple[object, ...],
    ) -> None:
        """Apply `sql` (values, then key and channel) if the row's state is allowed."""
        with self._write(what) as conn:
            current = self._get(conn, key, channel)
            if current is None:
                raise LedgerError(
                    f"ledger {self._path}: cannot {what}: no delivery {key}/{channel}"
                )
            if current[0] not in allowed:
                return  # a terminal state wins; nothing to change
            conn.execute(sql, (*values, key, channel))

    # ------------------------------------------------------------------ deliveries

    def claim(
        self,
        key: str,
        channel: str,
        *,
        deadline: str | None,
        kind: str,
        planned_at: datetime,
        now: datetime,
        late: bool = False,
    ) -> bool:
        (claimed,) = self.claim_many(
            [Claim(key, channel, deadline, kind, planned_at, late)], now=now)
        return claimed

    def claim_many(self, claims: Iterable[Claim], *, now: datetime) -> list[bool]:
        now_us = _to_us(now)
        wanted = [(c, _to_us(c.planned_at)) for c in claims]
        if not wanted:
            return []
        claimed: list[bool] = []
        # One transaction, so a burst of N deliveries costs one fsync, not N.
        with self._write("claim deliveries") as conn:
            for c, planned_us in wanted:
                current = self._get(conn, c.key, c.channel)
                if current is None:
                    conn.execute(
                        _SQL_INSERT_CLAIM,
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
                conn.execute(_SQL_RECLAIM, (int(c.late), now_us, c.key, c.channel))
                claimed.append(True)
        return claimed

    def mark_sent(self, key: str, channel: str, *, now: datetime) -> None:
        self.mark_sent_many([Sent(key, channel, now)])

    def mark_sent_many(self, sent: Iterable[Sent]) -> None:
        rows = [(s.key, s.channel, _to_us(s.at)) for s in sent]
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
                    conn.execute(_SQL_MARK_SENT, (at_us, key, channel))

    def mark_retry(
        self, key: str, channel: str, *, now: datetime, error: str, next_attempt: datetime
    ) -> None:
        self._mark(
            key,
            channel,
            what="mark a delivery for retry",
            allowed=frozenset({DeliveryState.CLAIMED, DeliveryState.RETRYING}),
            sql=_SQL_MARK_RETRY,
            values=(_to_us(next_attempt), one_line(error, MAX_ERROR_CHARS), _to_us(now)),
        )

    def mark_failed(self, key: str, channel: str, *, now: datetime, error: str) -> None:
        self._mark(
            key,
            channel,
            what="mark a delivery failed",
            allowed=frozenset({DeliveryState.CLAIMED, DeliveryState.RETRYING}),
            sql=_SQL_MARK_FAILED,
            values=(one_line(error, MAX_ERROR_CHARS), _to_us(now)),
        )

    def mark_skipped(
        self,
        key: str,
        channel: str,
        *,
        deadline: str | None,
        kind: str,
        planned_at: datetime,
        now: datetime,
        reason: str,
    ) -> None:
        """Insert a skipped row, or turn a pending retry into one.

        Sent, failed and skipped rows are final and a claimed row is being
        sent: those are left alone.
        """
        self.mark_skipped_many(
            [Skip(key, channel, deadline, kind, planned_at)], now=now, reason=reason)

    def mark_skipped_many(
        self, skips: Iterable[Skip], *, now: datetime, reason: str
    ) -> None:
        # One commit (one fsync) for a catch-up that skips thousands.
        now_us, why = _to_us(now), one_line(reason, MAX_ERROR_CHARS)
        rows = [(s.key, s.channel, s.deadline, s.kind, _to_us(s.planned_at), why, now_us, now_us)
                for s in skips]
        if not rows:
            return
        with self._write("mark deliveries skipped") as conn:
            conn.executemany(_SQL_UPSERT_SKIPPED, rows)

    def recover_in_flight(self, now: datetime) -> int:
        now_us = _to_us(now)
        with self._write("recover interrupted deliveries") as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET state = 'retrying', next_attempt = ?, "
                "last_error = ?, updated_at = ? WHERE state = 'claimed'",
                (now_us, _INTERRUPTED, now_us),
            )
            return cursor.rowcount

    def due_retries(self, now: datetime) -> list[DeliveryRecord]:
        now_us = _to_us(now)
        with self._read("list due retries") as conn:
            rows = conn.execute(_SQL_DUE_RETRIES, (now_us,)).fetchall()
            return [self._record(tuple(r)) for r in rows]

    def next_retry_at(self) -> datetime | None:
        with self._read("find the next retry") as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt) FROM deliveries WHERE state = 'retrying'"
            ).fetchone()
            value = row[0]
            return None if value is None else _from_us(value, f"ledger {self._path}: retry time")

    def states(self, keys: Iterable[str]) -> dict[tuple[str, str], DeliveryState]:
        wanted = _unique(keys)
        result: dict[tuple[str, str], DeliveryState] = {}
        with self._read("read delivery states") as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    "SELECT key, channel, state FROM deliveries "  # noqa: S608 -- only "?" placeholders are interpolated
                    f"WHERE key IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                for key, channel, state in rows:
                    try:
                        result[(str(key), str(channel))] = DeliveryState(str(state))
                    except ValueError:
                        raise LedgerError(
                            f"ledger {self._path}: delivery {key}/{channel}: "
                            f"unknown state {state}"
                        ) from None
        return result

    def history(
        self, deadline: str | None = None, limit: int | None = None
    ) -> list[DeliveryRecord]:
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        count = -1 if limit is None else limit  # LIMIT -1: no limit
        with self._read("read the history") as conn:
            if deadline is None:
                rows = conn.execute(_SQL_HISTORY, (count,)).fetchall()
            else:
                rows = conn.execute(_SQL_HISTORY_OF, (deadline, count)).fetchall()
            return [self._record(tuple(r)) for r in rows]

    def last_delivery(self, deadline: str) -> DeliveryRecord | None:
        with self._read("read the last delivery") as conn:
            row = conn.execute(_SQL_LAST_OF, (deadline,)).fetchone()
            return None if row is None else self._record(tuple(row))

    # ------------------------------------------------------------------ first seen, alive

    def record_first_seen(self, ids: Iterable[str], now: datetime) -> dict[str, datetime]:
        wanted = _unique(ids)
        now_us = _to_us(now)
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
                    r for r in conn.execute("SELECT id, at FROM first_seen") if r[0] in keep
                ]
            else:
                rows = [
                    r for chunk in _chunks(wanted) for r in conn.execute(
                        "SELECT id, at FROM first_seen "  # noqa: S608 -- only "?" placeholders are interpolated
                        f"WHERE id IN ({_placeholders(len(chunk))})",
                        chunk,
                    )
                ]
            return self._first_seen_times(rows)

    def first_seen(self) -> dict[str, datetime]:
        with self._read("read first-seen times") as conn:
            return self._first_seen_times(conn.execute("SELECT id, at FROM first_seen"))

    def _first_seen_times(self, rows: Iterable[tuple[object, object]]) -> dict[str, datetime]:
        # Most ids share a few instants (those of the starts that first saw
        # them): each distinct instant becomes one datetime, shared.
        times: dict[object, datetime] = {}
        stored: dict[str, datetime] = {}
        for ident, at in rows:
            when = times.get(at) if type(at) is int else None
            if when is None:
                when = _from_us(at, f"ledger {self._path}: first_seen {ident}")
                times[at] = when
            stored[str(ident)] = when
        return stored

    def last_alive(self) -> datetime | None:
        with self._read("read the last heartbeat") as conn:
            row = conn.execute("SELECT v FROM meta WHERE k = ?", (_LAST_ALIVE,)).fetchone()
        if row is None:
            return None
        try:
            value = int(row[0])
        except (TypeError, ValueError):
            raise LedgerError(f"ledger {self._path}: last_alive is not a stored time") from None
        return _from_us(value, f"ledger {self._path}: last_alive")

    def touch_alive(self, now: datetime) -> None:
        now_us = _to_us(now)
        with self._write("record a heartbeat") as conn:
            conn.execute(
                "INSERT INTO meta (k, v) VALUES (?, ?) "
                "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (_LAST_ALIVE, str(now_us)),
            )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise LedgerError(
                    f"ledger {self._path}: cannot close: {_sqlite_reason(exc)}"
                ) from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_ledger(
    path: str | Path, *, readonly: bool = False, max_page_count: int | None = None
) -> SqliteLedger:
    """Open (creating if needed, unless `readonly`) the SQLite ledger at `path`.

    Raises LedgerError, naming the path, when the file is missing (read-only),
    unreadable, not a SQLite database, damaged, or of a newer schema version.
    """
    return SqliteLedger(path, readonly=readonly, max_page_count=max_page_count)


def _conforms(ledger: SqliteLedger) -> Ledger:
    """Static check (mypy): SqliteLedger implements the Ledger protocol."""
    return ledger

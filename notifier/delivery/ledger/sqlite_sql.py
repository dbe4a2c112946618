"""The SQLite ledger's SQL: its schema and every statement with a fixed text.

Every instant is stored as INTEGER microseconds since the Unix epoch (UTC),
which round-trips a timezone-aware datetime exactly and sorts numerically.
The schema version lives in `PRAGMA user_version` (base.SCHEMA_VERSION).
"""

from __future__ import annotations

from notifier.delivery.ledger.base import DeliveryState

_STATES = ", ".join(f"'{s.value}'" for s in DeliveryState)

SCHEMA: tuple[str, ...] = (
    f"""CREATE TABLE deliveries (
    -- one row per notification key x channel, every time in INTEGER
    -- microseconds since 1970-01-01T00:00:00Z
    key          TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    deadline     TEXT,
    kind         TEXT    NOT NULL,
    planned_at   INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ({_STATES})),
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

COLUMNS: dict[str, frozenset[str]] = {
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
# interpolated into SQL (see `keys_in`).
_RECORD = (
    "SELECT key, channel, deadline, kind, planned_at, state, attempts, next_attempt, "
    "last_error, late, created_at, updated_at FROM deliveries "
)
"""The columns sqlite_rows.record reads, in its order."""

GET_STATE = "SELECT state, next_attempt FROM deliveries WHERE key = ? AND channel = ?"
INSERT_CLAIM = (
    "INSERT INTO deliveries (key, channel, deadline, kind, planned_at, state, attempts, "
    "next_attempt, last_error, late, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'claimed', 1, NULL, NULL, ?, ?, ?)"
)
RECLAIM = (
    "UPDATE deliveries SET state = 'claimed', attempts = attempts + 1, "
    "next_attempt = NULL, late = MAX(late, ?), updated_at = ? "
    "WHERE key = ? AND channel = ?"
)
MARK_SENT = (
    "UPDATE deliveries SET state = 'sent', next_attempt = NULL, updated_at = ? "
    "WHERE key = ? AND channel = ?"
)
MARK_RETRY = (
    "UPDATE deliveries SET state = 'retrying', next_attempt = ?, last_error = ?, "
    "updated_at = ? WHERE key = ? AND channel = ?"
)
MARK_FAILED = (
    "UPDATE deliveries SET state = 'failed', next_attempt = NULL, last_error = ?, "
    "updated_at = ? WHERE key = ? AND channel = ?"
)
UPSERT_SKIPPED = (
    "INSERT INTO deliveries (key, channel, deadline, kind, planned_at, state, attempts, "
    "next_attempt, last_error, late, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'skipped', 0, NULL, ?, 0, ?, ?) "
    "ON CONFLICT (key, channel) DO UPDATE SET state = 'skipped', next_attempt = NULL, "
    "last_error = excluded.last_error, updated_at = excluded.updated_at "
    "WHERE deliveries.state = 'retrying'"
)
RECOVER_IN_FLIGHT = (
    "UPDATE deliveries SET state = 'retrying', next_attempt = ?, "
    "last_error = ?, updated_at = ? WHERE state = 'claimed'"
)
DUE_RETRIES = _RECORD + (
    "WHERE state = 'retrying' AND next_attempt <= ? ORDER BY next_attempt, created_at, rowid"
)
NEXT_RETRY = "SELECT MIN(next_attempt) FROM deliveries WHERE state = 'retrying'"
HISTORY = _RECORD + "ORDER BY updated_at DESC, rowid DESC LIMIT ?"
HISTORY_OF = _RECORD + "WHERE deadline = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?"
LAST_OF = (_RECORD + "WHERE deadline = ? AND updated_at <= ? "
           "ORDER BY updated_at DESC, rowid DESC LIMIT 1")
ONE = _RECORD + "WHERE key = ? AND channel = ?"

INSERT_FIRST_SEEN_JSON = (
    "INSERT OR IGNORE INTO first_seen (id, at) SELECT value, ? FROM json_each(?)"
)
INSERT_FIRST_SEEN = "INSERT OR IGNORE INTO first_seen (id, at) VALUES (?, ?)"
ALL_FIRST_SEEN = "SELECT id, at FROM first_seen"
GET_META = "SELECT v FROM meta WHERE k = ?"
SET_META = "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"

CHUNK = 500
"""Keys per `IN (...)` query; far below SQLite's bound-parameter limit."""


def states_in(n: int) -> str:
    """(key, channel, state) of the rows whose key is one of `n` bound keys."""
    return f"SELECT key, channel, state FROM deliveries WHERE key IN ({_marks(n)})"  # noqa: S608 -- only "?" placeholders are interpolated


def first_seen_in(n: int) -> str:
    """(id, at) of the first-seen rows of `n` bound ids."""
    return f"SELECT id, at FROM first_seen WHERE id IN ({_marks(n)})"  # noqa: S608 -- only "?" placeholders are interpolated


def _marks(n: int) -> str:
    if not 0 < n <= CHUNK:
        raise ValueError(f"between 1 and {CHUNK} keys per query, not {n}")
    return ", ".join("?" * n)

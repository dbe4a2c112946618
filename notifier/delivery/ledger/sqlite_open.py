"""Opening a SQLite ledger file: connect, make sure it is ours, initialise or probe it.

Nothing is changed until the file is known to be a notifier ledger of a
known version (or a blank database to initialise): a foreign or damaged
file is refused with a `LedgerError` naming the path and the problem.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from pathlib import Path

from notifier.delivery.ledger import sqlite_sql
from notifier.delivery.ledger.base import SCHEMA_VERSION
from notifier.delivery.ledger.file import create_file, inspect_file
from notifier.errors import LedgerError
from notifier.text import one_line


def sqlite_reason(exc: sqlite3.Error) -> str:
    """SQLite's own message (never contains bound values) on one line."""
    name = getattr(exc, "sqlite_errorname", None)
    message = one_line(str(exc)) or type(exc).__name__
    return f"{message} ({name})" if name else message


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any."""
    # SQLite may already have rolled back (e.g. on SQLITE_FULL); a failing
    # rollback leaves nothing more to undo, and the original error is what
    # the caller must see.
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def connect(path: Path, *, readonly: bool, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the checked ledger at `path`, created and initialised unless
    `readonly`. Every statement runs in the caller's explicit BEGIN/COMMIT."""
    if readonly:
        inspect_file(path, must_exist=True)
    elif not inspect_file(path, must_exist=False):
        create_file(path)
        inspect_file(path, must_exist=True)
    mode = "ro" if readonly else "rw"  # never let SQLite create the file
    uri = f"{path.absolute().as_uri()}?mode={mode}"
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,  # explicit BEGIN/COMMIT only
            check_same_thread=False,  # shared by threads under the ledger's lock
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"ledger {path}: cannot open: {sqlite_reason(exc)}") from exc
    try:
        _prepare(conn, path, readonly=readonly)
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"ledger {path}: cannot open: {sqlite_reason(exc)}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    conn.execute("PRAGMA synchronous = FULL")
    # Look first, change nothing until the file is known to be ours.
    conn.execute("BEGIN")
    try:
        empty = _check(conn, path)
    finally:
        rollback(conn)
    if readonly:
        if empty:
            raise LedgerError(f"ledger {path}: is empty (never initialised)")
        return
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise LedgerError(
            f"ledger {path}: cannot use write-ahead logging here (journal mode {mode})"
        )
    if empty:
        _initialise(conn, path)
    else:
        _probe_write(conn, path)


def _probe_write(conn: sqlite3.Connection, path: Path) -> None:
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
            raise LedgerError(f"ledger {path}: is read-only ({sqlite_reason(exc)})") from exc
        raise
    finally:
        rollback(conn)


def _check(conn: sqlite3.Connection, path: Path) -> bool:
    """Validate an opened file; True if it is a blank database to initialise."""
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
            raise LedgerError(f"ledger {path}: is a SQLite database but not a notifier ledger")
        return True
    if version < 0:
        raise LedgerError(f"ledger {path}: unknown schema version {version}")
    for table, wanted in sqlite_sql.COLUMNS.items():
        if table not in tables:
            raise LedgerError(f"ledger {path}: table {table} is missing")
        have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
        missing = sorted(wanted - have)
        if missing:
            raise LedgerError(
                f"ledger {path}: table {table} lacks "
                f"{'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}"
            )
    return False


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _check(conn, path):  # nobody initialised it meanwhile
            for statement in sqlite_sql.SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise

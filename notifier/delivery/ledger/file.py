"""A ledger's file before SQLite opens it: found, made, or refused with a reason.

SQLite opened in write mode would turn a foreign or damaged file into a
database of its own; so the file is checked first (type, header, page
size, whole pages), and a new one is made 0600 in a 0700 directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from notifier.errors import LedgerError
from notifier.wording import plural

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100


def os_reason(exc: OSError) -> str:
    return " ".join((exc.strerror or type(exc).__name__).split()).lower()


def ledger_exists(path: str | Path) -> bool:
    """Whether something exists at `path` (read-only commands open it only then)."""
    return Path(path).exists()


def inspect_file(path: Path, *, must_exist: bool) -> bool:
    """Check the file before SQLite touches it. Returns whether it exists.

    Rejects (LedgerError) anything that is not a plausible SQLite database, so
    a foreign or damaged file is never handed to SQLite in write mode.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        if must_exist:
            raise LedgerError(f"ledger {path}: does not exist") from None
        return False
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot access: {os_reason(exc)}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise LedgerError(f"ledger {path}: is a directory, not a ledger file")
    if not stat.S_ISREG(st.st_mode):
        raise LedgerError(f"ledger {path}: is not a regular file")
    try:
        with path.open("rb") as f:
            header = f.read(_HEADER_SIZE)
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot read: {os_reason(exc)}") from exc
    size = st.st_size
    if size == 0:
        # A ledger we created but had not initialised yet (or whose first
        # transactions are still only in its -wal file): SQLite decides.
        return True
    if not header.startswith(_SQLITE_MAGIC) and not _SQLITE_MAGIC.startswith(header):
        raise LedgerError(f"ledger {path}: is not a SQLite database")
    if len(header) < _HEADER_SIZE:
        raise LedgerError(f"ledger {path}: is truncated ({plural(size, 'byte')})")
    page_size = int.from_bytes(header[16:18], "big")
    if page_size == 1:
        page_size = 65536
    if page_size < 512 or page_size & (page_size - 1):
        raise LedgerError(f"ledger {path}: is corrupt (invalid page size in header)")
    if size % page_size:
        raise LedgerError(
            f"ledger {path}: is truncated or damaged "
            f"({size} bytes is not a whole number of {page_size}-byte pages)"
        )
    return True


def make_parent(path: Path) -> None:
    """Create the ledger's directory (0700) if it is missing."""
    parent = path.parent
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"ledger {path}: cannot create directory {parent}: {os_reason(exc)}"
        ) from exc


def create_file(path: Path) -> None:
    """Create the parent directory (0700) and an empty ledger file (0600)."""
    make_parent(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return  # someone else created it meanwhile; it is inspected like any other
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot create: {os_reason(exc)}") from exc
    try:
        # The umask may have removed more than group/other bits; SQLite gives
        # the -wal and -shm files the same mode as the database file.
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)

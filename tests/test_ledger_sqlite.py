"""The SQLite ledger's own file: privacy, WAL, damage and refusal, permissions, a full disk.

What every backend must do is in tests/test_ledger.py (the contract suite);
this file holds what only a SQLite file can show.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ledger_stores import T0, claim, only

from notifier.delivery.ledger import (
    SCHEMA_VERSION,
    Claim,
    ledger_exists,
    open_ledger,
)
from notifier.delivery.ledger.sqlite import SqliteLedger
from notifier.errors import LedgerError, LedgerWriteError


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "notifier.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(db_path) as opened:
        yield opened


def make_ledger_file(path: Path, rows: int = 300) -> None:
    """A closed, checkpointed ledger with enough rows to span many pages."""
    with open_ledger(path) as led:
        for i in range(rows):
            claim(led, f"key-{i:05d}-" + "x" * 100)
        led.record_first_seen(["kalbajar", "kalbajar/ext/1"], T0)
        led.touch_alive(T0)


def sidecars(path: Path) -> list[Path]:
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


# --------------------------------------------------------------------------- files


def test_new_ledger_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "notifier.db"
    old = os.umask(0)
    try:
        with open_ledger(path) as led:
            assert claim(led)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [path, *sidecars(path)]}
            assert set(modes) == {"notifier.db", "notifier.db-wal", "notifier.db-shm"}
            assert set(modes.values()) == {0o600}
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        os.umask(0o277)  # would make a plain create read-only for the owner
        other = tmp_path / "c" / "notifier.db"
        with open_ledger(other) as led:
            assert claim(led)
        assert stat.S_IMODE(other.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_wal_synchronous_full_and_schema_version(ledger: SqliteLedger, db_path: Path) -> None:
    conn = ledger._conn  # the ledger's own connection: synchronous is per connection
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        indexes = {r[0] for r in raw.execute("SELECT sql FROM sqlite_master WHERE type='index'")}
        assert any("(state, next_attempt)" in (s or "") for s in indexes)
        assert any("(deadline" in (s or "") for s in indexes)
    finally:
        raw.close()


def test_an_empty_file_left_before_initialisation_is_initialised(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch(mode=0o600)
    with open_ledger(db_path) as led:
        assert claim(led)
    with open_ledger(db_path) as led:
        assert claim(led) is False


def test_ledger_exists(db_path: Path) -> None:
    assert ledger_exists(db_path) is False
    open_ledger(db_path).close()
    assert ledger_exists(str(db_path)) is True


def test_readonly_never_creates_anything(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "notifier.db"
    with pytest.raises(LedgerError, match="does not exist") as info:
        open_ledger(path, readonly=True)
    assert str(path) in str(info.value)
    assert not path.parent.exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(LedgerError, match="empty"):
        open_ledger(empty, readonly=True)
    assert empty.stat().st_size == 0


def test_a_readonly_open_says_so(db_path: Path) -> None:
    with open_ledger(db_path) as writer:
        assert claim(writer, "a")
        with SqliteLedger(db_path, readonly=True) as reader:
            assert reader.readonly


# --------------------------------------------------------------------------- bad files


def both_modes_refuse(path: Path, match: str) -> None:
    """Opening `path` fails, naming it, in both modes, and leaves its bytes alone."""
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(LedgerError, match=match) as info:
            open_ledger(path, readonly=readonly)
        message = str(info.value)
        assert str(path) in message
        assert "\n" not in message
        assert not isinstance(info.value, LedgerWriteError)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(1).randbytes(8192), id="random-bytes"),
        pytest.param(b"[notifier]\nstate = '/var/lib/notifier/notifier.db'\n", id="toml"),
        pytest.param(b"\x00" * 4096, id="zeros"),
        pytest.param(b"SQLite format 2\x00" + b"\x00" * 4080, id="wrong-magic"),
    ],
)
def test_garbage_file_is_refused_and_left_untouched(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    both_modes_refuse(db_path, "not a SQLite database")


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda n: 10, id="inside-magic"),
        pytest.param(lambda n: 60, id="inside-header"),
        pytest.param(lambda n: 1000, id="inside-first-page"),
        pytest.param(lambda n: n // 2, id="half"),
        pytest.param(lambda n: n - 4096, id="last-page-missing"),
        pytest.param(lambda n: n - 1, id="one-byte-short"),
    ],
)
def test_truncated_ledger_is_refused_and_left_untouched(
    db_path: Path, cut: Callable[[int], int]
) -> None:
    make_ledger_file(db_path)
    assert not sidecars(db_path)  # closed cleanly: everything is in the main file
    data = db_path.read_bytes()
    db_path.write_bytes(data[: cut(len(data))])
    both_modes_refuse(db_path, "truncated|corrupt|malformed")


def test_damaged_page_is_refused_and_left_untouched(db_path: Path) -> None:
    make_ledger_file(db_path)
    data = bytearray(db_path.read_bytes())
    data[2 * 4096 : 3 * 4096] = b"\xff" * 4096  # page 3
    db_path.write_bytes(bytes(data))
    both_modes_refuse(db_path, "corrupt|malformed")


def test_newer_schema_version_is_refused(db_path: Path) -> None:
    make_ledger_file(db_path, rows=3)
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    both_modes_refuse(db_path, f"schema version {SCHEMA_VERSION + 1} is newer")


def test_foreign_sqlite_database_is_refused_and_not_converted(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE accounts (name TEXT, password TEXT)")
    raw.commit()
    raw.close()
    both_modes_refuse(db_path, "not a notifier ledger")
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        raw.close()


@pytest.mark.parametrize("table", ["deliveries", "first_seen", "meta"])
def test_missing_table_is_refused(db_path: Path, table: str) -> None:
    make_ledger_file(db_path, rows=3)
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute(f"DROP TABLE {table}")
    raw.close()
    both_modes_refuse(db_path, f"table {table} is missing")


def test_wrong_table_shape_is_refused(db_path: Path) -> None:
    make_ledger_file(db_path, rows=3)
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("DROP TABLE first_seen")
    raw.execute("CREATE TABLE first_seen (id TEXT PRIMARY KEY, seen TEXT)")
    raw.close()
    both_modes_refuse(db_path, "table first_seen lacks column at$")
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("DROP TABLE first_seen")
    raw.execute("CREATE TABLE first_seen (other TEXT)")
    raw.close()
    both_modes_refuse(db_path, "table first_seen lacks columns at, id$")


def test_a_ledger_cut_to_one_byte_says_1_byte(db_path: Path) -> None:
    make_ledger_file(db_path)
    db_path.write_bytes(db_path.read_bytes()[:1])
    both_modes_refuse(db_path, r"is truncated \(1 byte\)$")


def test_directory_instead_of_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notifier.db"
    path.mkdir()
    for readonly in (False, True):
        with pytest.raises(LedgerError, match="is a directory") as info:
            open_ledger(path, readonly=readonly)
        assert str(path) in str(info.value)
    assert list(path.iterdir()) == []


def _open_error_as_nobody(path: Path) -> list[str]:
    """Open `path` in both modes as uid/gid 65534 in a forked child; the messages."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest; any exception -> exit status 1
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            messages = []
            for readonly in (False, True):
                try:
                    open_ledger(path, readonly=readonly).close()
                    messages.append("OPENED")
                except LedgerError as exc:
                    messages.append(str(exc))
            os.write(write_end, "\n".join(messages).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return output.split("\n")


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        path = tmp_path / "notifier.db"
        make_ledger_file(path, rows=3)
        path.chmod(0o000)
        try:
            for readonly in (False, True):
                with pytest.raises(LedgerError, match="permission denied") as info:
                    open_ledger(path, readonly=readonly)
                assert str(path) in str(info.value)
        finally:
            path.chmod(0o600)
        return
    # root reads everything: check as an unprivileged user in a forked child, on
    # a root-owned 0600 ledger in a directory that user may enter.
    directory = Path(tempfile.mkdtemp(prefix="notifier-ledger-test-"))
    try:
        directory.chmod(0o755)
        path = directory / "notifier.db"
        make_ledger_file(path, rows=3)
        before = path.read_bytes()
        messages = _open_error_as_nobody(path)
        assert len(messages) == 2
        for message in messages:
            assert message.startswith(f"ledger {path}:")
            assert "permission denied" in message
        assert path.read_bytes() == before
    finally:
        shutil.rmtree(directory)


# --------------------------------------------------------------------------- write failures


def claims(*keys: str, channel: str = "ops", late: bool = False) -> list[Claim]:
    return [Claim(k, channel, "kalbajar", "reminder", T0, late) for k in keys]


def test_claim_many_is_all_or_nothing_when_the_disk_is_full(db_path: Path) -> None:
    led = SqliteLedger(db_path, max_page_count=1)  # capped at its current size
    try:
        keys = [f"key-{i:05d}-" + "x" * 200 for i in range(400)]
        with pytest.raises(LedgerWriteError):
            led.claim_many(claims(*keys), now=T0)
        assert led.states(keys) == {}  # not a single claim of the batch survived
        led.set_max_page_count(None)
        assert led.claim_many(claims(*keys), now=T0) == [True] * len(keys)
    finally:
        led.close()
    with open_ledger(db_path) as again:
        assert len(again.history()) == len(keys)


def test_disk_full_raises_write_error_and_recovers(db_path: Path) -> None:
    led = SqliteLedger(db_path, max_page_count=1)  # capped at its current size
    try:
        written: list[str] = []
        failed_key = None
        for i in range(2000):
            key = f"secret-token-{i:05d}-" + "x" * 200
            try:
                assert claim(led, key)
            except LedgerWriteError as exc:
                failed_key = key
                message = str(exc)
                break
            written.append(key)
        assert failed_key is not None, "the page cap never bit"
        assert written, "nothing fitted at all"
        assert str(db_path) in message
        assert "full" in message
        assert failed_key not in message
        assert "secret-token" not in message

        # nothing half-written, reads work, and the failure repeats cleanly
        assert led.states([failed_key]) == {}
        assert set(led.states(written)) == {(k, "ops") for k in written}
        with pytest.raises(LedgerWriteError):
            claim(led, failed_key)
        with pytest.raises(LedgerWriteError):
            led.record_first_seen([f"deadline-{i}" + "y" * 200 for i in range(200)], T0)
        assert led.first_seen() == {}

        led.set_max_page_count(None)  # space is back
        assert claim(led, failed_key) is True
        assert only(led, failed_key).attempts == 1
        assert len(led.record_first_seen([f"deadline-{i}" for i in range(200)], T0)) == 200
    finally:
        led.close()
    with open_ledger(db_path) as again:
        assert len(again.history()) == len(written) + 1



"""Fault 5: a corrupt, unreadable or too new ledger stops `notifier run` cleanly.

Each case damages a real ledger (one with 300 deliveries, so it spans many
pages) in one way, then starts `notifier run` over it with a deadline due a
second later on a jsonl:// channel. Checked for every case: exit status 74
within seconds, one line of error text naming the ledger and the problem,
no traceback; nothing sent (no jsonl file); the damaged file byte-for-byte
unchanged (a -wal file SQLite may leave beside it holds nothing); and
`notifier history` refuses it the same way. The permission cases run the
commands without root's power to ignore file modes (setpriv drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH); the tests run as root, and this
Python lives under /root, so switching to another user is not an option.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.figures import report
from support.processes import notifier_cmd
from support.times import S, utc_now

from notifier.delivery.ledger import SCHEMA_VERSION, Claim, open_ledger

pytestmark = pytest.mark.timeout(120)
EX_LEDGER = 74
EMPTY = hashlib.sha256(b"").hexdigest()
FIGURES: dict[str, str] = {}


def good_ledger(path: Path) -> None:
    now = utc_now()
    with open_ledger(path) as book:
        for i in range(300):
            key = f"old{i:03d}/due/2020-11-15T20:00:00Z/"
            book.claim(Claim(key, "file", deadline=f"old{i:03d}", kind="due",
                             planned_at=now - timedelta(days=1)), now=now)
            book.mark_sent(key, "file", now=now)
        book.touch_alive(now)
    assert not Path(f"{path}-wal").exists()  # checkpointed and closed


def page_size(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:18], "big")


def truncated_mid_page(path: Path) -> None:
    good_ledger(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])


def truncated_at_page(path: Path) -> None:
    good_ledger(path)
    data = path.read_bytes()
    path.write_bytes(data[: page_size(path) * 3])


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(5).randbytes(40960))


def garbage_pages(path: Path) -> None:
    """A valid header and schema, then pages of random bytes where the rows were."""
    good_ledger(path)
    data = bytearray(path.read_bytes())
    size = page_size(path)
    rng = random.Random(7)
    for page in range(3, len(data) // size, 2):
        data[page * size:(page + 1) * size] = rng.randbytes(size)
    path.write_bytes(bytes(data))


def newer_schema(path: Path) -> None:
    good_ledger(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    conn.commit()
    conn.close()


def unreadable(path: Path) -> None:
    good_ledger(path)
    path.chmod(0o000)


def read_only_file(path: Path) -> None:
    good_ledger(path)
    path.chmod(0o444)


def read_only_directory(path: Path) -> None:
    """The file is fine, but its directory does not let SQLite create -wal/-shm."""
    good_ledger(path)
    path.chmod(0o666)
    path.parent.chmod(0o555)


def directory(path: Path) -> None:
    path.mkdir()


CASES: dict[str, tuple[Callable[[Path], None], bool, str, bool]] = {
    # name: (damage, without DAC override, expected words in the error, history refuses too)
    "truncated mid-page": (truncated_mid_page, False, "truncated", True),
    "truncated at a page boundary": (truncated_at_page, False, "malformed", True),
    "garbage bytes": (garbage, False, "not a SQLite database", True),
    "garbage pages": (garbage_pages, False, "malformed", True),
    "newer schema version": (newer_schema, False, f"schema version {SCHEMA_VERSION + 1} is newer", True),
    "another program's database": (foreign_database, False, "not a notifier ledger", True),
    "unreadable (mode 000)": (unreadable, True, "permission denied", True),
    # Intact but write-protected: `history` may read it; the daemon may not run on it.
    "read-only file (mode 444)": (read_only_file, True, "is read-only", False),
    # The daemon's lock file beside the ledger is the first thing it cannot create.
    "read-only directory": (read_only_directory, True, "cannot create its lock file", True),
    "a directory": (directory, False, "is a directory", True),
}


NO_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


def no_dac_works() -> str | None:
    """None if NO_DAC can run a command here, else why not."""
    if shutil.which("setpriv") is None:
        return "setpriv(1) is not installed"
    done = subprocess.run([*NO_DAC, "true"], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else f"setpriv cannot drop capabilities: {done.stderr}"


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)


def snapshot(path: Path) -> dict[str, str]:
    """sha256 of the ledger and of any companion file, by name."""
    out = {}
    for p in sorted(path.parent.glob(path.name + "*")):
        out[p.name] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_ledger_refuses_to_start(case: str, shared_dir: Path,
                                         record_property: Callable[[str, object], None]) -> None:
    damage, no_dac, words, history_refuses = CASES[case]
    if no_dac and (why := no_dac_works()) is not None:
        pytest.skip(why)
    ledger_dir = shared_dir / "state"
    ledger_dir.mkdir(mode=0o777)
    ledger_dir.chmod(0o777)
    db = ledger_dir / "ledger.db"
    out = shared_dir / "out.jsonl"
    config = write_config(shared_dir / "config.toml", config_toml(
        state=db, channels={"file": f"jsonl://{out}"},
        deadlines=deadline_toml("soon", utc_now() + 1 * S, announced=utc_now() - 1 * S)), 0o644)
    damage(db)
    before = snapshot(db)
    env = clean_env()

    def notifier(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*(NO_DAC if no_dac else []), *notifier_cmd(*args)], env=env,
                              capture_output=True, text=True, timeout=60, check=False,
                              cwd=shared_dir)

    done = notifier("run", "-c", str(config))
    history = notifier("history", "-c", str(config))
    after = snapshot(db)
    text = (done.stdout + done.stderr).strip()
    FIGURES[case] = text
    report(f"damaged ledger: {case}", {"exit": done.returncode, "message": text,
                                       "history_exit": history.returncode}, record_property)
    assert done.returncode == EX_LEDGER, text
    assert len(text.splitlines()) == 1, text
    assert "Traceback" not in text
    assert str(db) in text, text
    assert words.lower() in text.lower(), text
    assert not out.exists(), "something was sent"
    assert before[db.name] == after.get(db.name), "the damaged ledger was modified"
    assert after.get(f"{db.name}-wal") in (None, EMPTY), "data written beside the ledger"
    if history_refuses:
        assert history.returncode == EX_LEDGER, (history.stdout + history.stderr)[-500:]
        assert len((history.stdout + history.stderr).strip().splitlines()) == 1
    else:
        assert history.returncode == 0, history.stderr[-500:]

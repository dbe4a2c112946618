"""Reloads leave nothing behind: the previous config's cyclic garbage is collected.

The daemon freezes the collector's view of its schedule once it is ready (see
notifier.daemon.heap). A reload must not freeze the garbage the previous
config leaves (apprise, for one, makes a class per channel description, and a
class is a reference cycle), or memory grows by every reload for good.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.config import loader as config
from notifier.daemon import heap
from notifier.daemon.loop import Daemon
from notifier.daemon.sdnotify import SystemdNotifier
from notifier.delivery.ledger import open_ledger

RELOADS = 20


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as the test found it afterwards: nothing frozen, collection on."""
    was = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


def write_config(path: Path, tmp: Path) -> Path:
    path.write_text(
        f'[notifier]\nstate = "{tmp / "ledger.db"}"\n\n'
        '[defaults]\ntimezone = "Europe/Berlin"\nreminders = ["1d", "2h"]\n\n'
        f'[channels.out]\nurl = "jsonl://{tmp / "out.jsonl"}"\n\n'
        '[channels.hook]\nurl = "json://127.0.0.1:9/hook?secret=abc"\n\n'
        '[[deadlines]]\nid = "a"\ntitle = "A"\ndue = 2031-03-30T12:30:00\n'
        'channels = ["out", "hook"]\n'
    )
    path.chmod(0o600)
    return path


def test_reloads_free_the_previous_configs_garbage(tmp_path: Path, collector: None) -> None:
    path = write_config(tmp_path / "config.toml", tmp_path)
    # Log records kept by pytest's capture would be live objects that grow per reload.
    logger = logging.getLogger("notifier")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with open_ledger(tmp_path / "ledger.db") as book:
            # What `notifier run` does around the daemon: no collection while the
            # schedule is built, then everything frozen once it is ready.
            heap.hold()
            daemon = Daemon(config.load(path), book, notifier=SystemdNotifier({}),
                            install_signals=False)
            heap.settle()
            for _ in range(5):
                daemon.reload()
            early = gc.get_freeze_count()
            for _ in range(RELOADS):
                daemon.reload()
            grown = gc.get_freeze_count() - early
            daemon.dispatcher.stop(5.0)
    finally:
        logger.setLevel(level)
    # What stays frozen is what is alive. A reload leaked about 120 objects; the
    # few a reload may add are live (sqlite3 keeps a weak reference to each
    # cursor made, pruned every 200 cursors).
    assert grown < 10 * RELOADS, f"{grown} more objects frozen after {RELOADS} reloads"
    # And no garbage hides among the frozen objects.
    gc.unfreeze()
    hidden = gc.collect()
    assert hidden < RELOADS, f"{hidden} objects of garbage were frozen"

"""The file watch reads a large config only when it may have changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from notifier.daemon.reload import FileWatch


def unchanged(watch: FileWatch, _path: Path) -> bool:
    return watch.unchanged_since_hashed()


def test_a_settled_file_is_read_once_and_any_later_save_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("a = 1\n")
    old = time.time() - 60
    os.utime(path, (old, old))
    state = FileWatch(path, interval=1.0)
    assert not unchanged(state, path)  # first look: hash it
    assert unchanged(state, path)      # settled and the same: not read again
    assert unchanged(state, path)
    # A same-size save that even puts the old mtime back still changes ctime.
    path.write_text("a = 2\n")
    os.utime(path, (old, old))
    assert not unchanged(state, path)
    assert unchanged(state, path)


def test_a_recently_written_file_is_always_read(tmp_path: Path) -> None:
    """Two saves within one tick of the file system's clock look alike by stat."""
    path = tmp_path / "config.toml"
    path.write_text("a = 1\n")
    state = FileWatch(path, interval=1.0)
    assert not unchanged(state, path)
    assert not unchanged(state, path)
    path.unlink()
    assert not unchanged(state, path)


def test_a_save_is_taken_once_it_has_stopped_changing(tmp_path: Path) -> None:
    """Seen once, a new version is taken at the next look if it is still there: a
    half-written save is not read, and each version is taken once."""
    path = tmp_path / "config.toml"
    path.write_text("a = 1\n")
    watch = FileWatch(path, interval=1.0)
    assert not watch.look()  # the version the daemon started with
    path.write_text("a = ")
    assert not watch.look()  # new: look again shortly
    assert watch.due - time.monotonic() <= watch.settle
    path.write_text("a = 2\n")
    assert not watch.look()  # changed since: not taken yet
    assert watch.look()      # the same at the next look: taken
    assert watch.due - time.monotonic() > watch.settle
    assert not watch.look()  # taken once
    path.write_text("a = 3\n")
    watch.read_now()         # a reload (SIGHUP) read it meanwhile
    assert not watch.look()
    assert not watch.look()

"""Part of a large schedule read in a forked child: the same config as one process reads.

`batches._read_parts` hands 40 % of the batches to a child (`forkread.Forked`)
when the file has `FORK_GROUPS` batches or more; the child sends its
deadlines back encoded (`forkread.encode`/`Decoder`). Here the batches are
made small so a few hundred deadlines fork, and every test checks that a
child really ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.config import batches, forkread
from notifier.config import loader as config
from notifier.errors import ConfigError
from notifier.schedule.model import Deadline

HEAD = """\
[defaults]
timezone = "Asia/Baku"
reminders = ["3d", "1d"]
overdue_every = "1d"
overdue_limit = 2

[channels.ops]
url = "jsonl:///tmp/out.jsonl"

[channels.other]
url = "console://"
"""

ZONES = ["Asia/Baku", "Europe/London", "America/Santiago", "Australia/Lord_Howe", "UTC"]


EVERY = [  # a field, for the deadlines whose number is a multiple of the first value
    (4, 'reminders = ["7d", "2h", "90m"]\n'),
    (6, 'channels = ["other"]\n'),
    (7, 'overdue_every = "6h"\noverdue_limit = 3\n'),
    (8, 'tags = ["land", "handover"]\nnotes = "by road"\nurl = "https://example.org/x"\n'),
    (9, "announced = 2030-01-02T03:04:05Z\n"),
]


def table(i: int) -> str:
    """Deadline `i`: every kind of field, varied by `i`."""
    text = f'[[deadlines]]\nid = "d{i}"\ntitle = "Deadline {i}"\n'
    if i % 5 == 0:
        text += f"due = 2030-03-{i % 28 + 1:02d}\n"
    elif i % 5 == 1:
        text += f"due = 2030-03-{i % 28 + 1:02d}T17:30:00\n"
    else:
        text += f"due = 2030-03-{i % 28 + 1:02d}T09:15:00.250000Z\n"
    if i % 3 == 0:
        text += f'timezone = "{ZONES[i % len(ZONES)]}"\n'
    text += "".join(field for every, field in EVERY if i % every == 0)
    if i % 10 == 0:
        text += 'completed = 2030-03-01\nnote = "done early"\n'
    elif i % 10 == 5:
        text += "cancelled = 2030-02-20T10:00:00Z\n"
    if i % 11 == 0:
        text += 'reminders = ["0d"]\n' if i % 4 else ""  # a warning: a reminder at its due
    if i % 3 == 1:
        text += ("\n[[deadlines.extensions]]\ndue = 2030-04-01\n"
                 'announced = 2030-02-01T10:00:00Z\nreason = "asked"\nsource = "memo"\n')
        if i % 2:
            text += "\n[[deadlines.extensions]]\ndue = 2030-04-10T12:00:00\n"
    return text


def write(tmp_path: Path, tables: list[str]) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(HEAD + "".join(tables))
    path.chmod(0o600)
    return path


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Small batches, so a few hundred tables fork; the results of every child, recorded."""
    monkeypatch.setattr(batches, "BATCH", 25)
    monkeypatch.setattr(batches, "FORK_GROUPS", 4)
    # Tests before these may have left idle threads in this process (receivers,
    # workers); the children here take none of their locks.
    monkeypatch.setattr(forkread, "available", lambda: True)
    results: list[Any] = []

    class Recorded(forkread.Forked):
        def result(self) -> Any | None:
            found = super().result()
            results.append(found)
            return found

    monkeypatch.setattr(forkread, "Forked", Recorded)
    return results


def one_process(path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> config.Config:
    with monkeypatch.context() as m:
        m.setattr(forkread, "available", lambda: False)
        return config.load(path, **kwargs)


def exact(d: Deadline) -> tuple[object, ...]:
    """Everything of `d`, with each instant's tzinfo and fold, and the zone by identity."""
    def when(t: datetime | None) -> object:
        return None if t is None else (t, t.tzinfo, t.fold)

    stages = tuple((when(s.due), s.day, when(s.announced), s.reason, s.source)
                   for s in d.stages)
    closure = None if d.closure is None else (d.closure.kind, when(d.closure.at), d.closure.note)
    return (d.id, d.title, id(d.zone), stages, d.reminders, d.channels, d.remind_at,
            d.overdue_every, d.overdue_limit, closure, d.notes, d.url, d.tags)


def test_forking_needs_one_thread_and_two_cores() -> None:
    # A fresh interpreter: tests before this one may have left idle threads here.
    probe = (
        "import threading\n"
        "from notifier.config import forkread\n"
        "print(forkread.available())\n"
        "stop = threading.Event()\n"
        "threading.Thread(target=stop.wait).start()\n"
        "print(forkread.available())\n"
        "stop.set()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    two_cores = len(os.sched_getaffinity(0)) >= 2
    assert out == [str(two_cores), "False"]  # another thread: never


def test_the_codec_gives_back_the_same_deadlines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = one_process(write(tmp_path, [table(i) for i in range(120)]), monkeypatch)
    first = cfg.schedule.deadlines[1]  # uses the default reminders, channels and overdue
    shared = forkread.Shared(first.reminders, first.channels, first.overdue_every,
                             first.remind_at)
    decoder = forkread.Decoder(shared)
    again = [decoder.decode(forkread.encode(d, shared)) for d in cfg.schedule.deadlines]
    assert [exact(d) for d in again] == [exact(d) for d in cfg.schedule.deadlines]
    assert again == list(cfg.schedule.deadlines)
    # Shared defaults stay shared: one tuple for thousands of deadlines.
    assert again[1].reminders is shared.reminders
    assert again[1].channels is shared.channels


def test_two_processes_read_what_one_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any]) -> None:
    path = write(tmp_path, [table(i) for i in range(400)])
    both = config.load(path, for_reload=True)
    assert len(children) == 1
    assert children[0] is not None
    assert children[0][0] == "read"
    assert len(children[0][1]) == 6  # the last 6 of 16 batches of 25: about 40 %
    one = one_process(path, monkeypatch, for_reload=True)
    assert [exact(d) for d in both.schedule.deadlines] == [exact(d) for d in one.schedule.deadlines]
    assert both == one
    # Warnings from both shares, in file order, located; the memo of the tables too.
    assert len(one.warnings) > 4
    assert any(int(w.path.split(".")[1]) >= 240 for w in one.warnings)
    assert both.warnings == one.warnings
    assert both.tables == one.tables


def test_a_problem_in_the_childs_share_is_reported_as_by_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any]) -> None:
    tables = [table(i) for i in range(400)]
    tables[391] = tables[391].replace('title = "Deadline 391"\n',
                                      'title = "Deadline 391"\ntimezone = "Mars/Olympus"\n')
    path = write(tmp_path, tables)
    with pytest.raises(ConfigError) as forked:
        config.load(path)
    assert children == [("whole",)]
    with pytest.raises(ConfigError) as single:
        one_process(path, monkeypatch)
    assert str(forked.value) == str(single.value)
    assert "deadlines.391.timezone" in str(forked.value)


def test_a_child_that_fails_costs_only_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any],
        capfd: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, [table(i) for i in range(400)])

    def broken(d: Deadline, shared: forkread.Shared) -> tuple[object, ...]:
        raise RuntimeError("boom")

    monkeypatch.setattr(forkread, "encode", broken)  # the child has it too: forked after
    both = config.load(path)
    assert children == [None]
    assert both == one_process(path, monkeypatch)
    assert "boom" not in capfd.readouterr().err  # the child died quietly


def test_without_fork_one_process_reads_it_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any]) -> None:
    path = write(tmp_path, [table(i) for i in range(400)])

    def refused() -> int:
        raise PermissionError(1, "Operation not permitted")  # a seccomp filter's EPERM

    with monkeypatch.context() as m:
        m.setattr(os, "fork", refused)
        alone = config.load(path)
    assert children == []
    assert alone == one_process(path, monkeypatch)


def test_without_memfd_the_result_goes_through_a_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any]) -> None:
    path = write(tmp_path, [table(i) for i in range(400)])

    def refused(name: str, flags: int = 0) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "memfd_create", refused)
    both = config.load(path)
    assert children[0][0] == "read"
    assert both == one_process(path, monkeypatch)


# --------------------------------------------------------------------------- a long plan


def rendered(items: Sequence[int]) -> list[dict[str, Any]]:
    return [{"n": n, "text": f"item {n}", "channels": ["a", "b"], "none": None} for n in items]


def runs_of(items: Sequence[int], count: int) -> list[list[int]]:
    """`in_two`'s runs of `items`, in order."""
    cuts = [len(items) * k // count for k in range(count + 1)]
    return [list(items[cuts[k]:cuts[k + 1]]) for k in range(count)]


def slow_in(pid: int, seconds: float) -> Callable[[Sequence[int]], list[dict[str, Any]]]:
    """`rendered`, taking `seconds` a run in process `pid` (the other gets runs too)."""
    def work(items: Sequence[int]) -> list[dict[str, Any]]:
        if os.getpid() == pid:
            time.sleep(seconds)
        return rendered(items)
    return work


def test_in_two_gives_what_one_process_gives(children: list[Any]) -> None:
    items = list(range(1001))
    assert forkread.in_two(slow_in(os.getpid(), 0.01), items, least=100, runs=16) == \
        rendered(items)
    assert len(children) == 1
    theirs = children[0]
    assert theirs, "the child took no run"
    runs = runs_of(items, 16)
    for k, part in theirs.items():  # the child's runs, lists kept lists
        assert part == rendered(runs[k])
    assert forkread.in_two(rendered, items[:99], least=100) == rendered(items[:99])
    assert len(children) == 1  # too few to fork


@pytest.mark.parametrize("slow", ["parent", "child"])
def test_in_two_gives_more_runs_to_the_faster_process(children: list[Any], slow: str) -> None:
    parent = os.getpid()

    def work(items: Sequence[int]) -> list[dict[str, Any]]:
        if (os.getpid() == parent) == (slow == "parent"):
            time.sleep(0.02)
        return rendered(items)

    items = list(range(400))
    assert forkread.in_two(work, items, least=100, runs=40) == rendered(items)
    taken = len(children[0])
    assert taken > 30 if slow == "parent" else taken < 10, taken


def test_in_two_does_the_childs_runs_when_the_child_fails(children: list[Any]) -> None:
    parent = os.getpid()

    def fussy(items: Sequence[int]) -> list[dict[str, Any]]:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        time.sleep(0.01)  # the child gets to take a run (and fail)
        return rendered(items)

    assert forkread.in_two(fussy, list(range(300)), least=10, runs=20) == rendered(range(300))
    assert children == [None]


def test_a_garbled_result_from_the_child_is_read_here_instead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Any]) -> None:
    path = write(tmp_path, [table(i) for i in range(400)])

    def garbled(self: object, groups: list[list[int]]) -> tuple[object, ...]:
        return ("read", [b"not marshal"] * len(groups), [], [], b"")

    monkeypatch.setattr(batches._Batch, "read_encoded", garbled)
    both = config.load(path, for_reload=True)
    assert children[0][0] == "read"
    assert both == one_process(path, monkeypatch, for_reload=True)
    assert both.tables == one_process(path, monkeypatch, for_reload=True).tables

"""First-seen times are filled while loading; the schedule is never written after that.

SPEC 3 (live edits): a deadline or extension without `announced` is known from
when a running daemon first saw it. The loader takes those times (a plain
mapping, from the ledger) and resolves each stage with them, so the loaded
schedule is final: the same values as a file that writes the times out, and
nothing in it changes while it is planned, looked up or reloaded.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.config import loader as config
from notifier.schedule import planning
from notifier.schedule.model import Schedule

T0 = datetime(2029, 11, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2029, 12, 20, 12, 0, tzinfo=UTC)
HEAD = '[defaults]\ntimezone = "Asia/Baku"\nreminders = ["3d", "1d"]\n\n' \
       '[channels.ops]\nurl = "jsonl:///tmp/out.jsonl"\n'


def toml(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write(path: Path, announced: dict[str, datetime]) -> Path:
    """Deadline `seen` (with an extension), `written` (its own `announced`) and `new`;
    `announced` writes those times out in the file."""
    def line(key: str) -> str:
        return f"announced = {toml(announced[key])}\n" if key in announced else ""

    path.write_text(
        HEAD
        + '\n[[deadlines]]\nid = "seen"\ntitle = "Seen"\ndue = 2030-01-10\n' + line("seen")
        + '\n[[deadlines.extensions]]\ndue = 2030-02-10\nreason = "asked"\n' + line("seen/ext/1")
        + '\n[[deadlines]]\nid = "written"\ntitle = "Written"\ndue = 2030-01-12\n'
        + f"announced = {toml(T0 + timedelta(days=2))}\n"
        + '\n[[deadlines]]\nid = "new"\ntitle = "New"\ndue = 2030-01-03\n' + line("new"))
    path.chmod(0o600)
    return path


LEDGER = {"seen": T0, "seen/ext/1": T0 + timedelta(days=30), "written": T0 + timedelta(days=9)}
"""What a ledger holds: `written`'s own `announced` wins over its first-seen time."""
FILLED = {"seen": T0, "seen/ext/1": T0 + timedelta(days=30), "new": NOW}


def every_slot(schedule: Schedule) -> list[tuple[object, str, object]]:
    """Every field of every value in `schedule` (by identity): what a write would change."""
    out: list[tuple[object, str, object]] = []
    values: list[object] = [schedule]
    for d in schedule.deadlines:
        values += [d, *d.stages]
    for value in values:
        for f in dataclasses.fields(value):  # type: ignore[arg-type]  # dataclass instances
            got = getattr(value, f.name)
            out.append((value, f.name, got if isinstance(got, (str, int, type(None)))
                        else id(got)))
    return out


@pytest.mark.parametrize("in_parts", [True, False])
def test_first_seen_times_are_loaded_as_if_written(tmp_path: Path, in_parts: bool) -> None:
    seen = config.FirstSeen(LEDGER, now=NOW)
    got = config.load(write(tmp_path / "a.toml", {}), in_parts=in_parts, first_seen=seen)
    written = config.load(write(tmp_path / "b.toml", FILLED), in_parts=in_parts)
    assert got.schedule == written.schedule
    assert [d.span for d in got.schedule.deadlines] == \
        [d.span for d in written.schedule.deadlines]
    by_id = {d.id: d for d in got.schedule.deadlines}
    assert [s.announced for s in by_id["seen"].stages] == [T0, T0 + timedelta(days=30)]
    assert by_id["written"].announced == T0 + timedelta(days=2)
    assert by_id["new"].announced == NOW
    assert got.first_seen_at == NOW
    # plan and status: the ledger's times, and nothing for what it does not know.
    known = config.load(tmp_path / "a.toml", in_parts=in_parts,
                        first_seen=config.FirstSeen(LEDGER))
    assert {d.id: d.announced for d in known.schedule.deadlines}["new"] is None
    assert known.first_seen_at is None


def test_the_ledger_is_asked_once_where_the_settings_put_it(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", {})
    path.write_text(f'[notifier]\nstate = "{tmp_path}/state.db"\n' + path.read_text())
    asked: list[Path] = []

    def from_ledger(where: Path) -> config.FirstSeen:
        asked.append(where)
        return config.FirstSeen(LEDGER, now=NOW)

    got = config.load(path, first_seen=from_ledger)
    assert asked == [tmp_path / "state.db"]
    assert got.schedule == config.load(path, first_seen=config.FirstSeen(LEDGER, now=NOW)).schedule


def test_a_loaded_schedule_is_never_written(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", {})
    cfg = config.load(path, for_reload=True, first_seen=config.FirstSeen(LEDGER, now=NOW))
    schedule = cfg.schedule
    before = every_slot(schedule)
    planning.plan(schedule, T0, T0 + timedelta(days=400))
    planning.next_notification(schedule, T0)
    assert schedule.deadline("new") is schedule.deadlines[2]
    # A reload takes unchanged tables over as they are, and still writes none of them.
    again = config.load(path, previous=cfg, first_seen=config.FirstSeen({}, now=NOW + NOW.resolution))
    assert all(a is b for a, b in zip(again.schedule.deadlines, schedule.deadlines, strict=True))
    assert every_slot(schedule) == before
    stage = schedule.deadlines[0].stages[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.announced = NOW  # type: ignore[misc]  # the point: frozen

"""What the daemon says in its log: the reload's diff line, channels, plural forms, and
an empty config, said alike by `check`, `run` and a reload (issue 22).

The real daemon in a subprocess, signalled; `check` through the real CLI.
"""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, jsonl_config, toml_str, write_config
from support.env import clean_env
from support.processes import NotifySocket, Proc, daemon_process, run_notifier
from support.times import utc_now

from notifier.config.loader import load
from notifier.daemon.reload import describe_moves
from notifier.delivery.ledger import Claim, open_ledger
from notifier.schedule.model import Schedule

pytestmark = pytest.mark.timeout(120)

NOTHING = "warning: no deadlines: nothing will ever be sent"
EMPTY = ("the file is empty (a save cut short?); a config meant to have no deadlines yet "
         "needs at least a comment")


def reload_with(d: Proc, sd: NotifySocket, config: Path, text: str) -> str:
    """Write `text` to `config`, SIGHUP, wait for READY=1: the log from the signal on."""
    mark = d.size()
    write_config(config, text)
    count = len(sd.texts())
    d.signal(signal.SIGHUP)
    sd.wait_for(lambda m: "RELOADING=1" in m, after=count)
    sd.wait_for(lambda m: "READY=1" in m, after=count)
    return d.text(mark)


def test_a_reload_names_deadlines_and_channels_that_changed_once(tmp_path: Path) -> None:
    later = utc_now().replace(microsecond=0) + timedelta(days=40)
    out = f"jsonl://{tmp_path / 'out.jsonl'}"

    def text(ids: list[str], channels: dict[str, str], kinds: dict[str, list[str]]) -> str:
        return config_toml(state=tmp_path / "state.db", channels=channels, kinds=kinds,
                           deadlines="".join(deadline_toml(i, later) for i in ids))

    before = text(["keep", "drop"], {"out": out, "spare": "console://", "gone": "console://"},
                  {})
    many = [f"n{k:02d}" for k in range(13)]
    after = text(["keep", *many], {"out": out, "spare": "console://", "fresh": "console://"},
                 {"spare": ["due"]})
    with daemon_process(tmp_path, before) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        start = d.text()
        said = reload_with(d, sd, tmp_path / "config.toml", after)
        assert d.stop() == 0
    assert f"channel out: {out}" in start
    assert "channel gone: console://" in start
    (line,) = [ln for ln in said.splitlines() if "reloaded: " in ln]
    # The first ten added, by id, then a count; the removed one by id.
    assert line.endswith("; deadlines added: n00, n01, n02, n03, n04, n05, n06, n07, n08, "
                         "n09 and 3 more; removed: drop"), line
    # Only the channels that changed are said again, each once.
    channel_lines = sorted(ln.split("notifier.daemon: ", 1)[1]
                           for ln in said.splitlines() if "notifier.daemon: channel " in ln)
    assert len(channel_lines) == 3, said
    fresh, gone, spare = channel_lines
    assert fresh.startswith("channel fresh added: console://")
    assert gone == "channel gone removed"
    assert spare.startswith("channel spare changed: console://")
    assert spare.endswith(" (kinds: due)")


def test_a_reload_line_keeps_its_moves_and_says_nothing_else_unchanged(tmp_path: Path) -> None:
    # In the daemon's window, on a whole minute.
    due = utc_now().replace(second=0, microsecond=0) + timedelta(hours=12)
    config = tmp_path / "config.toml"
    with daemon_process(tmp_path, jsonl_config(tmp_path, deadline_toml("move", due))) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        moved = jsonl_config(tmp_path, deadline_toml("move", due + timedelta(hours=6)))
        said = reload_with(d, sd, config, moved)
        same = reload_with(d, sd, config, moved + "\n# a comment\n")
        nudged = reload_with(d, sd, config, jsonl_config(
            tmp_path, deadline_toml("move", due + timedelta(hours=6, seconds=30))))
        assert d.stop() == 0
    (line,) = [ln for ln in said.splitlines() if "reloaded: " in ln]
    # As the "rescheduled" message writes a move: "2 Dec 18:40", no zero-padded day.
    moment = r"[1-9]\d? [A-Z][a-z]{2} \d\d:\d\d"
    assert re.search(rf"reloaded: \+1 / -1 notifications, move: due moved {moment} -> "
                     rf"{moment}$", line), line
    (line,) = [ln for ln in nudged.splitlines() if "reloaded: " in ln]
    # Moved by 30 s: the seconds show, so the two sides differ.
    m = re.search(rf"due moved ({moment}) -> ({moment}:30)$", line)
    assert m is not None, line
    assert m.group(1) != m.group(2)
    (line,) = [ln for ln in same.splitlines() if "reloaded: " in ln]
    assert line.endswith("reloaded: +0 / -0 notifications"), line
    assert " channel " not in said + same


@pytest.mark.parametrize("body", ["# nothing yet\n\n",
                                  '[notifier]\nlog_level = "INFO"\n[defaults]\n'
                                  'timezone = "UTC"\n[channels.ops]\nurl = "console://"\n'],
                         ids=["comments", "no-deadline"])
def test_check_warns_that_a_config_without_deadlines_sends_nothing(
        tmp_path: Path, body: str) -> None:
    path = write_config(tmp_path / "config.toml", body)
    done = run_notifier("check", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"{path}: {NOTHING}\n"
    strict = run_notifier("check", "--strict", "-c", str(path))
    # --strict: the warning is an error (issue 22: printed as one, and no "OK" summary).
    error = NOTHING.removeprefix("warning: ")
    assert (strict.returncode, strict.stdout, strict.stderr) == (78, "", f"{path}: {error}\n")


def test_a_digest_sent_regardless_is_not_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", '[channels.ops]\nurl = "console://"\n'
                        '[digest]\nschedule = "0 8 * * *"\nalways = true\n')
    done = run_notifier("check", "--strict", "-c", str(path))
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("body", ["", " \n\n"], ids=["nothing", "white-space"])
def test_an_empty_file_is_refused_at_start(tmp_path: Path, command: str, body: str) -> None:
    path = write_config(tmp_path / "config.toml", body)
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    done = run_notifier(command, "-c", str(path), env=env)
    assert (done.returncode, done.stdout, done.stderr) == (78, "", f"{path}: {EMPTY}\n")


def test_an_empty_file_with_deadlines_from_the_environment_is_a_config(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", "")
    env = clean_env(NOTIFIER_CHANNELS='{"ops": {"url": "console://"}}',
                    NOTIFIER_DEADLINES='[{"id": "d", "title": "D", "due": "2030-01-01"}]')
    done = run_notifier("check", "--strict", "-c", str(path), env=env)
    assert (done.returncode, done.stderr) == (0, "")


def test_run_and_reload_take_a_config_without_deadlines_with_the_same_warning(
        tmp_path: Path) -> None:
    """The daemon starts on a config without deadlines and keeps running, so that an
    edit adding them is taken; a reload to one without deadlines is taken too, and
    said; an empty file, as at start, is refused, and the running plan kept."""
    config = tmp_path / "config.toml"
    bare = f"[notifier]\nstate = {toml_str(str(tmp_path / 'state.db'))}\n" \
           '[defaults]\ntimezone = "UTC"\n'
    due = utc_now().replace(microsecond=0) + timedelta(days=40)
    with_one = jsonl_config(tmp_path, deadline_toml("first", due))
    with daemon_process(tmp_path, bare) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        start = d.text()
        added = reload_with(d, sd, config, with_one)
        emptied = reload_with(d, sd, config, "# every deadline removed\n" + bare)
        reload_with(d, sd, config, with_one)
        blank = reload_with(d, sd, config, "")
        assert d.alive()
        assert d.stop() == 0
    assert f"{config}: {NOTHING}" in start
    assert NOTHING not in added
    assert "; deadlines added: first" in added
    assert f"reload: {config}: {NOTHING}" in emptied
    assert "reload rejected" not in emptied
    assert "; deadlines removed: first" in emptied
    assert f"reload rejected: {config}: {EMPTY}" in blank
    assert "reload rejected: keeping the previous configuration" in blank
    assert "reloaded: " not in blank


def test_start_lines_say_one_in_the_singular(tmp_path: Path) -> None:
    """One delivery cut off by a crash, one missed notification, one deadline."""
    now = utc_now().replace(microsecond=0)
    with open_ledger(tmp_path / "state.db") as book:
        book.touch_alive(now - timedelta(hours=1))  # down for an hour
        book.claim(Claim("gone/due/x/", "out", deadline="gone", kind="due",
                         planned_at=now - timedelta(hours=2)), now=now - timedelta(hours=2))
    missed = deadline_toml("one", now - timedelta(minutes=10))
    with daemon_process(tmp_path, jsonl_config(tmp_path, missed)) as (d, sd):
        ready = sd.wait_for(lambda m: "READY=1" in m)
        assert d.stop() == 0
        logs = d.text()
    assert "1 delivery was in flight at a crash; sending it again" in logs
    assert ": 1 missed notification: sending 1 late, skipping 0" in logs
    assert "STATUS=1 deadline, " in ready


FIRST_SEEN_LATE = ("first seen by the daemon now, after its due ({due}), and no `announced` "
                   "says it was known before: no reminder, due or overdue message is sent "
                   "for this deadline")


def test_a_deadline_first_seen_after_its_due_is_said_once(tmp_path: Path) -> None:
    """A deadline the daemon first sees after its due gets nothing (SPEC 3): the operator
    is told, by the start or reload that first sees it, and not again."""
    now = utc_now().replace(microsecond=0)

    def deadline(ident: str, due: str, extra: str = "") -> str:
        return f'[[deadlines]]\nid = "{ident}"\ntitle = "T {ident}"\ndue = {due}\n{extra}\n'

    past = "2001-02-03T04:05:06Z"
    late = FIRST_SEEN_LATE.format(due="Sat 3 Feb 2001 04:05:06, UTC")
    text = config_toml(state=tmp_path / "state.db", channels={"out": "console://"},
                       deadlines=deadline("late", past) + deadline(
                           "done", past, 'completed = 2001-02-04T00:00:00Z\nnote = "ok"') +
                       deadline("ahead", toml_str(str(now + timedelta(days=3)))[1:-1]))
    with daemon_process(tmp_path, text) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        first = d.text()
        added = reload_with(d, sd, tmp_path / "config.toml",
                            text + deadline("later", past.replace("2001", "2002")))
        assert d.stop() == 0
    (tmp_path / "again").mkdir()
    with daemon_process(tmp_path / "again", text) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        second = d.text()
        assert d.stop() == 0
    # Located at the deadline's [[deadlines]] header: the line before its id, counted from 1.
    header = text.splitlines().index('id = "late"')
    (warned,) = [line for line in first.splitlines() if "first seen" in line]
    assert warned.endswith(f"WARNING notifier.daemon: start: {tmp_path / 'config.toml'}:"
                           f"{header}:1: deadlines.0: warning: {late}"), warned
    assert "later" not in first
    assert [line for line in added.splitlines() if "first seen" in line] == [
        line for line in added.splitlines() if "reload: " in line and "deadlines.3" in line]
    assert "Sun 3 Feb 2002 04:05:06, UTC" in added
    assert "first seen" not in second



@pytest.mark.parametrize(("before", "after", "said"), [
    ("2027-01-05", "2027-01-25", "c: due moved 5 Jan 2027 -> 25 Jan 2027"),
    ("2027-01-05T09:00:00Z", "2027-01-05T09:00:30Z", "c: due moved 5 Jan 2027 09:00 -> "
                                                     "5 Jan 2027 09:00:30"),
    # A day against a time: both as the instants they are, so a 30 s move reads as one.
    ("2027-01-05", "2027-01-06T00:00:30Z", "c: due moved 6 Jan 2027 00:00 -> 6 Jan 2027 00:00:30"),
    ("2027-01-06T00:00:30Z", "2027-01-06", "c: due moved 6 Jan 2027 00:00:30 -> 7 Jan 2027 00:00"),
], ids=["days", "seconds", "day-to-time", "time-to-day"])
def test_a_due_moved_line_reads_as_the_move_it_is(tmp_path: Path, before: str, after: str,
                                                  said: str) -> None:
    def schedule(due: str) -> Schedule:
        path = write_config(tmp_path / f"{due[:10]}-{len(due)}.toml", config_toml(
            state=tmp_path / "state.db", channels={"out": "console://"},
            deadlines=f'[[deadlines]]\nid = "c"\ntitle = "C"\ndue = {due}\n'))
        return load(path).schedule

    assert describe_moves(schedule(before), schedule(after),
                          datetime(2026, 12, 2, tzinfo=UTC)) == [said]

"""`notifier status` as an operator reads it: by urgency, closures, dues as messages
write them, filters; and the one date style of every table and of `check` (issue 22)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.tables import table

from notifier.cli import main
from notifier.delivery.ledger import Claim, open_ledger

# At 2021-03-20 12:00 in Baku: two overdue, two open (one timed, in Berlin), one not yet
# announced, one completed and one cancelled; written in no order of urgency.
SCHEDULE = """\
[notifier]
state = "{state}"

[defaults]
timezone = "Asia/Baku"
reminders = ["1d"]

[channels.out]
url = "console://"

[[deadlines]]
id = "renewal"
title = "Contract renewal"
due = 2021-03-28
tags = ["contracts"]

[[deadlines]]
id = "done"
title = "Handover of the keys"
due = 2021-03-15
completed = 2021-03-10T12:00:30+04:00
note = "handed over early"
tags = ["handover"]

[[deadlines]]
id = "later"
title = "Next year's budget"
due = 2021-06-01
announced = 2021-04-01T09:00:00+04:00

[[deadlines]]
id = "old"
title = "Audit report"
due = 2021-03-01
tags = ["contracts", "audit"]

[[deadlines]]
id = "tls"
title = "TLS certificate"
due = 2021-03-25T17:00:00
timezone = "Europe/Berlin"
tags = ["certs"]

[[deadlines]]
id = "dropped"
title = "Office move"
due = 2021-04-01
cancelled = 2021-03-12T09:00:00+04:00
note = "lease extended"

[[deadlines]]
id = "older"
title = "Tax filing"
due = 2021-02-15
tags = ["audit"]
"""
AT = "2021-03-20T12:00+04:00"
BY_URGENCY = ["older", "old", "tls", "renewal", "later", "dropped", "done"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(SCHEDULE.format(state=tmp_path / "ledger.db"), "utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def status_json(config: Path, *more: str, at: str = AT) -> list[dict[str, object]]:
    code, output = run("status", "-c", str(config), "--at", at, "--json", *more)
    assert code == 0, output
    items: list[dict[str, object]] = json.loads(output)
    return items


def table_rows(output: str) -> list[str]:
    """The deadline ids in a table's first column, top to bottom."""
    return list(table(output))


def test_status_lists_deadlines_by_urgency(config: Path) -> None:
    items = status_json(config)
    assert [i["deadline"] for i in items] == BY_URGENCY
    assert [i["state"] for i in items] == [
        "overdue", "overdue", "open", "open", "not-announced", "cancelled", "completed"]
    code, output = run("status", "-c", str(config), "--at", AT)
    assert code == 0, output
    assert table_rows(output) == BY_URGENCY


def test_status_shows_when_and_why_a_deadline_closed(config: Path) -> None:
    items = {i["deadline"]: i for i in status_json(config)}
    assert (items["done"]["closed_at"], items["done"]["note"]) == (
        "2021-03-10T08:00:30Z", "handed over early")
    assert (items["dropped"]["closed_at"], items["dropped"]["note"]) == (
        "2021-03-12T05:00:00Z", "lease extended")
    assert (items["renewal"]["closed_at"], items["renewal"]["note"]) == (None, None)
    # Asked about before it closed, a deadline is open and has no closure yet.
    (before,) = [i for i in status_json(config, at="2021-03-05") if i["deadline"] == "done"]
    assert (before["state"], before["closed_at"], before["note"]) == ("open", None, None)
    code, output = run("status", "-c", str(config), "--at", AT)
    assert code == 0, output
    rows = table(output)
    assert rows["done"]["left"] == "closed Wed 10 Mar 12:00:30: handed over early"
    assert rows["dropped"]["left"] == "closed Fri 12 Mar 09:00: lease extended"
    assert rows["renewal"]["left"] == "8 days 12 h"


def test_status_shows_dues_as_messages_write_them(config: Path) -> None:
    code, output = run("status", "-c", str(config), "--at", AT)
    assert code == 0, output
    assert "status (Asia/Baku)" in output
    rows = table(output)
    # A date due is the day, by its end; a timed one its time, in the deadline's zone,
    # with its city where that is not the table's zone (Asia/Baku).
    assert rows["renewal"]["due"] == "by the end of Sun 28 Mar"
    assert rows["old"]["due"] == "by the end of Mon 1 Mar"
    assert rows["tls"]["due"] == "Thu 25 Mar 17:00, Berlin"
    # Other instants in the table's zone, as messages write them (17:00 in Berlin less 1d).
    assert rows["tls"]["next"] == "reminder Wed 24 Mar 20:00"
    # The year only where it is not the year asked about.
    code, output = run("status", "-c", str(config), "--at", "2020-12-30")
    assert code == 0, output
    assert table(output)["renewal"]["due"] == "by the end of Sun 28 Mar 2021"


@pytest.mark.parametrize(("at", "left", "seconds"), [
    ("2021-03-25T16:59:59+01:00", "1 s", 1),
    ("2021-03-25T17:00:00+01:00", "due now", 0),  # was "0 s"
    ("2021-03-25T17:00:00.400+01:00", "due now", 0),  # was "overdue by 0 s"
    ("2021-03-25T17:00:01+01:00", "overdue by 1 s", -1),
])
def test_status_at_the_due_instant_says_due_now(config: Path, at: str, left: str,
                                                 seconds: int) -> None:
    """As the due message sent at that instant says it (the deadline is overdue from it)."""
    (item,) = status_json(config, "--tag", "certs", at=at)
    assert (item["time_left"], item["time_left_seconds"]) == (left, seconds)
    code, output = run("status", "-c", str(config), "--at", at, "--tag", "certs")
    assert code == 0, output
    assert table(output)["tls"]["left"] == left


@pytest.mark.parametrize(("args", "expected"), [
    (["--state", "overdue"], ["older", "old"]),
    (["--state", "open,overdue"], ["older", "old", "tls", "renewal"]),
    (["--state", "completed", "--state", "cancelled"], ["dropped", "done"]),
    (["--state", "not-announced"], ["later"]),
    (["--tag", "contracts"], ["old", "renewal"]),
    (["--tag", "certs", "--tag", "handover"], ["tls", "done"]),
    (["--tag", "audit", "--state", "overdue"], ["older", "old"]),
    (["--tag", "nosuch"], []),
])
def test_status_filters_by_state_and_tag(config: Path, args: list[str],
                                         expected: list[str]) -> None:
    assert [i["deadline"] for i in status_json(config, *args)] == expected
    code, output = run("status", "-c", str(config), "--at", AT, *args)
    assert code == 0, output
    if expected:
        assert table_rows(output) == expected
    else:
        assert output == "no deadline in that state or with that tag\n"


def test_a_bad_state_is_a_one_line_usage_error(config: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "notifier", "status", "-c", str(config), "--state", "open,late"],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "Error: --state: 'late' is not a state; must be one of not-announced, open, "
        "overdue, completed, cancelled"]


def test_plan_table_writes_dates_as_messages_do(config: Path) -> None:
    # No zero-padded day, the year only when it is not --from's, seconds only if any.
    code, output = run("plan", "-c", str(config), "--from", "2020-12-30", "--until", "2021-03-02")
    assert code == 0, output
    assert "Sun 28 Feb 2021 09:00" in output  # the reminder a day before Audit report's due
    assert "2021-" not in output
    assert " 01 " not in output  # no zero-padded day
    code, output = run("plan", "-c", str(config), "--from", "2021-02-01", "--until", "2021-03-11")
    assert code == 0, output
    assert "Sun 28 Feb 09:00" in output
    assert "Wed 10 Mar 12:00:30" in output  # the closure, at its second
    assert "2021" not in output


def test_check_says_the_next_notification_in_words(config: Path) -> None:
    code, output = run("check", "-c", str(config))
    assert code == 0, output
    assert output.splitlines() == [f"{config}: OK: 7 deadlines, 1 channel, digest off",
                                   "next notification: none planned"]
    # Now is the machine's: the day is checked in tests/test_commands.py, the shape here.
    soon = date.today() + timedelta(days=20)
    one = config.parent / "one.toml"
    one.write_text('[defaults]\ntimezone = "Asia/Baku"\n\n[channels.out]\nurl = "console://"\n'
                   '[channels.log]\nurl = "console://"\n\n[[deadlines]]\nid = "kalbajar"\n'
                   f'title = "Kalbajar handover"\ndue = {soon}\nreminders = ["1d"]\n', "utf-8")
    code, output = run("check", "-c", str(one))
    assert code == 0, output
    summary, nxt = output.splitlines()
    assert summary == f"{one}: OK: 1 deadline, 2 channels, digest off"
    assert re.fullmatch(r"next notification: (Mon|Tue|Wed|Thu|Fri|Sat|Sun) [1-9]\d? "
                        r"[A-Z][a-z]{2}( \d{4})? 09:00, Baku: reminder for kalbajar "
                        r"\(Kalbajar handover\)", nxt), nxt


def test_status_of_the_handover_reads_like_its_messages() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    code, output = run("status", "-c", str(example), "--at", "2020-11-21T12:00+04:00")
    assert code == 0, output
    rows = table(output)
    assert list(rows) == ["aghdam", "kalbajar", "lachin"]
    kalbajar = rows["kalbajar"]
    assert (kalbajar["due"], kalbajar["original due"]) == (
        "by the end of Wed 25 Nov", "by the end of Sun 15 Nov")
    assert kalbajar["history"].startswith(
        "extended on Sun 15 Nov 18:54 to Wed 25 Nov: Armenia asked for more time")
    assert rows["lachin"]["due"] == "by the end of Tue 1 Dec"


def test_status_at_an_earlier_instant_shows_no_later_delivery(config: Path, tmp_path: Path) -> None:
    """`status --at` in the past shows the last delivery made by then, not one made after."""
    baku = "+04:00"
    book = open_ledger(tmp_path / "ledger.db")
    try:
        for key, sent in (("renewal/reminder/a", "2021-03-18T09:00:00"),
                          ("renewal/reminder/b", "2021-03-27T09:00:00")):
            when = datetime.fromisoformat(sent + baku)
            assert book.claim(Claim(key, "out", deadline="renewal", kind="reminder",
                                    planned_at=when, late=False), now=when)
            book.mark_sent(key, "out", now=when)
    finally:
        book.close()

    def last_key(at: str) -> object:
        item = next(i for i in status_json(config, at=at) if i["deadline"] == "renewal")
        last = item["last_delivery"]
        return last["key"] if isinstance(last, dict) else last

    assert last_key(AT) == "renewal/reminder/a"
    assert last_key("2021-03-17T00:00+04:00") is None
    assert last_key("2021-03-28T00:00+04:00") == "renewal/reminder/b"


def test_no_time_left_for_a_deadline_that_is_closed_or_not_yet_announced(config: Path) -> None:
    """`time_left_seconds` is null exactly when `time_left` is."""
    items = {i["deadline"]: i for i in status_json(config)}
    for ident in ("done", "dropped", "later"):
        assert (items[ident]["time_left"], items[ident]["time_left_seconds"]) == (None, None)
    assert isinstance(items["tls"]["time_left_seconds"], int)
    assert items["tls"]["time_left"] is not None

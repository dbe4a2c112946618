"""Bad config files: one located line per problem, exit 78, no traceback, no secret."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.configs import deadline_toml, jsonl_config, write_config
from support.env import clean_env
from support.processes import daemon_process
from support.times import utc_now

from notifier.cli import main

HEAD = """\
[defaults]
timezone = "Asia/Baku"
reminders = ["3d", "1d", "0d"]

[channels.console]
url = "console://"
"""

GOOD_DEADLINE = """
[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
"""

SECRET = "s3cr3t-Pa55w0rd-canary"

# (name, file body after HEAD, expected line, fragment of the message)
CASES = [
    ("toml syntax", GOOD_DEADLINE + "oops = \n", 12, "TOML syntax"),
    ("unknown top-level key", "colour = 1\n" + GOOD_DEADLINE, 7, "colour: unknown key"),
    ("unknown deadline key", GOOD_DEADLINE + "remindres = [\"1d\"]\n", 12,
     "deadlines.0.remindres: unknown key"),
    ("unknown key in extension", GOOD_DEADLINE + "[[deadlines.extensions]]\ndue = 2020-11-25\n"
     "resaon = \"x\"\n", 14, "deadlines.0.extensions.0.resaon: unknown key"),
    ("unknown key in channel",
     "[channels.mail]\nurl = \"console://\"\ncc = \"x\"\n" + GOOD_DEADLINE, 9,
     "channels.mail.cc: unknown key"),
    ("unknown key in defaults", "[notifier]\nlevel = 1\n" + GOOD_DEADLINE, 8,
     "notifier.level: unknown key"),
    ("wrong type for due", GOOD_DEADLINE.replace("due = 2020-11-15", "due = 15"), 11,
     "deadlines.0.due: expected a TOML date"),
    ("wrong type for reminders", GOOD_DEADLINE + "reminders = \"1d\"\n", 12,
     "deadlines.0.reminders"),
    ("time of day alone", GOOD_DEADLINE.replace("due = 2020-11-15", "due = 17:00:00"), 11,
     "a time of day alone"),
    ("duplicate id", GOOD_DEADLINE + GOOD_DEADLINE, 14, "deadlines.1.id: duplicate id"),
    ("bad id", GOOD_DEADLINE.replace('"kalbajar"', '"Kalbajar!"'), 9, "deadlines.0.id"),
    ("multi-line title", GOOD_DEADLINE.replace('"Kalbajar handover"', '"a\\nb"'), 10,
     "deadlines.0.title"),
    ("unknown channel", GOOD_DEADLINE + "channels = [\"console\", \"pager\"]\n", 12,
     "deadlines.0.channels.1: unknown channel 'pager'"),
    ("unknown default channel", GOOD_DEADLINE.replace("\n[[", "\n[[", 1),
     None, None),  # placeholder replaced below
    ("unknown time zone", GOOD_DEADLINE + "timezone = \"Mars/Olympus\"\n", 12,
     "deadlines.0.timezone: unknown time zone"),
    ("bad offset", GOOD_DEADLINE + "reminders = [\"3d\", \"3 days\"]\n", 12,
     "deadlines.0.reminders.1: not an offset"),
    ("bad ISO offset", GOOD_DEADLINE + "reminders = [\"P1H\"]\n", 12, "not an offset"),
    ("nonexistent local time", GOOD_DEADLINE.replace(
        "due = 2020-11-15", "due = 2021-03-28T02:30:00\ntimezone = \"Europe/Berlin\""), 11,
     "does not exist in Europe/Berlin (clocks skip it); write 2021-03-28T02:30:00+01:00 or "
     "2021-03-28T02:30:00+02:00"),
    ("ambiguous local time", GOOD_DEADLINE.replace(
        "due = 2020-11-15", "due = 2021-10-31T02:30:00\ntimezone = \"Europe/Berlin\""), 11,
     "is ambiguous in Europe/Berlin (clocks repeat it); write 2021-10-31T02:30:00+02:00 (first)"
     " or 2021-10-31T02:30:00+01:00 (second)"),
    ("extensions out of order", GOOD_DEADLINE
     + "[[deadlines.extensions]]\ndue = 2020-11-25\nannounced = 2020-11-15T12:00:00+04:00\n"
     + "[[deadlines.extensions]]\ndue = 2020-11-30\nannounced = 2020-11-14T12:00:00+04:00\n",
     17, "deadlines.0.extensions.1.announced: extensions out of order"),
    ("completed and cancelled", GOOD_DEADLINE + "completed = 2020-11-14\ncancelled = 2020-11-14\n",
     13, "either completed or cancelled"),
    ("channel with url and urls", "[channels.x]\nurl = \"console://\"\nurls = [\"console://\"]\n"
     + GOOD_DEADLINE, 9, "channels.x.urls: give exactly one of url or urls"),
    ("relative jsonl path", "[channels.x]\nurl = \"jsonl://out.jsonl\"\n" + GOOD_DEADLINE, 8,
     "channels.x.url: jsonl:// needs an absolute file path"),
    ("console with a path", "[channels.x]\nurl = \"console://here\"\n" + GOOD_DEADLINE, 8,
     "channels.x.url: console:// takes no host or path"),
    ("unknown apprise scheme", "[channels.x]\nurl = \"nosuch://host/path\"\n" + GOOD_DEADLINE, 8,
     "channels.x.url"),
    ("malformed apprise url", "[channels.x]\nurls = [\"console://\", \"json://\"]\n" + GOOD_DEADLINE,
     8, "channels.x.urls.1"),
    ("missing plugin path", "[notifier]\nplugin_paths = [\"/nonexistent/plugins\"]\n" + GOOD_DEADLINE,
     8, "notifier.plugin_paths.0: plugin path does not exist"),
    ("template syntax error", "[templates.reminder]\ntitle = \"{{ deadline.title \"\n" + GOOD_DEADLINE,
     8, "templates.reminder.title"),
    ("template unknown variable", "[templates.due]\nbody = \"{{ deadline.titel }}\"\n" + GOOD_DEADLINE,
     8, "templates.due.body"),
    ("bad cron", "[digest]\nschedule = \"0 8 * *\"\n" + GOOD_DEADLINE, 8,
     "digest.schedule: need a 5-field cron"),
    ("bad cron field", "[digest]\nschedule = \"0 25 * * *\"\n" + GOOD_DEADLINE, 8,
     "digest.schedule: hour field: must be 0-23"),
    ("bad remind_at", GOOD_DEADLINE, None, None),  # placeholder replaced below
    ("negative overdue limit", GOOD_DEADLINE + "overdue_limit = -1\n", 12,
     "deadlines.0.overdue_limit"),
    ("negative send helpers", "[delivery]\nhelpers = -1\n" + GOOD_DEADLINE, 8,
     "delivery.helpers: must be at least 0"),
    ("absurd send helpers", "[delivery]\nhelpers = 1000\n" + GOOD_DEADLINE, 8,
     "delivery.helpers: must be at most 16"),
    ("bad template kind", "[templates.reminderz]\ntitle = \"x\"\n" + GOOD_DEADLINE, 7,
     "templates.reminderz"),
    ("huge integer", GOOD_DEADLINE + "overdue_limit = " + "9" * 5000 + "\n", 1,
     "too large"),
    ("deep nesting", "x = " + "[" * 5000 + "]" * 5000 + "\n", 1, ""),
]
CASES = [c for c in CASES if c[2] is not None]
CASES += [
    ("unknown default channel", HEAD.replace("reminders", "channels = [\"nope\"]\nreminders")
     + GOOD_DEADLINE, 3, "defaults.channels.0: unknown channel 'nope'"),
    ("bad remind_at", HEAD.replace("reminders", "remind_at = \"9am\"\nreminders") + GOOD_DEADLINE,
     3, "defaults.remind_at: not a time of day"),
    ("repeated reminder", GOOD_DEADLINE + "reminders = [\"7d\", \"1w\", \"7d\"]\n", 12,
     "deadlines.0.reminders.2: reminder '7d' is listed twice (also item 0 of this list)"),
    ("repeated default reminder", HEAD.replace('"0d"]', '"0d", "1d"]') + GOOD_DEADLINE, 3,
     "defaults.reminders.3: reminder '1d' is listed twice (also item 1 of this list)"),
]

EXTENSION = "[[deadlines.extensions]]\ndue = {due}\nannounced = {announced}\n"
# What plans nothing is an error too (issue 22): (name, body after HEAD, line, message)
CASES += [
    ("overdue_every without overdue_limit", GOOD_DEADLINE + 'overdue_every = "1d"\n', 12,
     "deadlines.0.overdue_every: overdue_every without overdue_limit plans no overdue message; "
     "add overdue_limit = N"),
    ("overdue_limit without overdue_every", GOOD_DEADLINE + "overdue_limit = 3\n", 12,
     "deadlines.0.overdue_limit: overdue_limit without overdue_every plans no overdue message; "
     'add overdue_every = "1d"'),
    ("default overdue_every without a limit", HEAD.replace("reminders", 'overdue_every = "1d"\n'
     "reminders") + GOOD_DEADLINE + GOOD_DEADLINE.replace("kalbajar", "aghdam"), 3,
     "defaults.overdue_every: overdue_every without overdue_limit"),
    ("default overdue_limit without an interval", HEAD.replace("reminders", "overdue_limit = 2\n"
     "reminders") + GOOD_DEADLINE, 3, "defaults.overdue_limit: overdue_limit without"),
    ("extension to the same due", GOOD_DEADLINE + EXTENSION.format(
        due="2020-11-15", announced="2020-11-10"), 13,
     "deadlines.0.extensions.0.due: this extension keeps the due it replaces "
     "(by the end of Sun 15 Nov 2020, Baku): nothing is rescheduled"),
    ("extension to the same instant written otherwise", GOOD_DEADLINE + EXTENSION.format(
        due="2020-11-16T00:00:00+04:00", announced="2020-11-10"), 13,
     "deadlines.0.extensions.0.due: this extension keeps the due it replaces "
     "(by the end of Sun 15 Nov 2020, Baku): nothing is rescheduled"),
    ("extension announced after its new due", GOOD_DEADLINE + EXTENSION.format(
        due="2020-11-25", announced="2020-11-27T10:00:00"), 14,
     "deadlines.0.extensions.0.announced: announced at or after its own new due "
     "(by the end of Wed 25 Nov 2020, Baku)"),
]


# (name, file body after HEAD, line, the whole message after the location): an unknown
# table at its own header, the closest known key, and pydantic's words in ours
WORDED = [
    ("unknown array of tables", GOOD_DEADLINE + "\n[[deadline]]\nid = \"x\"\n", 13,
     "deadline: unknown table; did you mean `deadlines`?"),
    ("unknown table", "[channel.ops]\nurl = \"console://\"\n" + GOOD_DEADLINE, 7,
     "channel: unknown table; did you mean `channels`?"),
    ("unknown sub-array", GOOD_DEADLINE + "\n[[deadlines.extension]]\ndue = 2020-11-25\n", 13,
     "deadlines.0.extension: unknown table; did you mean `extensions`?"),
    ("unknown dotted key", "notifer.log_level = \"INFO\"\n" + HEAD + GOOD_DEADLINE, 1,
     "notifer: unknown table; did you mean `notifier`?"),
    ("misspelt key", GOOD_DEADLINE.replace("title", "titel"), 10,
     "deadlines.0.titel: unknown key; did you mean `title`?"),
    ("misspelt key in extension", GOOD_DEADLINE + "[[deadlines.extensions]]\ndue = 2020-11-25\n"
     "resaon = \"x\"\n", 14, "deadlines.0.extensions.0.resaon: unknown key; did you mean `reason`?"),
    ("underscored table", "[_defaults]\ntimezone = \"UTC\"\n" + HEAD + GOOD_DEADLINE, 1,
     "_defaults: unknown table; did you mean `defaults`?"),
    ("key like none", GOOD_DEADLINE + "zzz = 1\n", 12, "deadlines.0.zzz: unknown key"),
    ("missing due", GOOD_DEADLINE.replace("due = 2020-11-15\n", ""), 8,
     "deadlines.0.due: missing: every deadline needs `due`"),
    ("missing extension due", GOOD_DEADLINE + "[[deadlines.extensions]]\nreason = \"x\"\n", 12,
     "deadlines.0.extensions.0.due: missing: every extension needs `due`"),
    ("missing digest schedule", "[digest]\nalways = true\n" + GOOD_DEADLINE, 7,
     "digest.schedule: missing: [digest] needs `schedule`"),
    ("bad id", GOOD_DEADLINE.replace('"kalbajar"', '"Kalbajar!"'), 9,
     "deadlines.0.id: must be lowercase letters, digits, - and _, starting with a letter or"
     " digit (at most 64)"),
    ("multi-line title", GOOD_DEADLINE.replace('"Kalbajar handover"', '"a\\nb"'), 10,
     "deadlines.0.title: must be one line"),
    ("empty title", GOOD_DEADLINE.replace('"Kalbajar handover"', '""'), 10,
     "deadlines.0.title: must not be empty"),
    ("fractional limit", GOOD_DEADLINE + "overdue_limit = 1.5\n", 12,
     "deadlines.0.overdue_limit: must be a whole number"),
    ("reminders not a list", GOOD_DEADLINE + "reminders = \"1d\"\n", 12,
     "deadlines.0.reminders: must be a list, in square brackets"),
    ("bad template kind", "[templates.reminderz]\ntitle = \"x\"\n" + GOOD_DEADLINE, 7,
     "templates.reminderz: unknown name; must be one of 'reminder', 'rescheduled', 'due', "
     "'overdue', 'completed', 'cancelled', 'digest', 'summary' or 'test'; did you mean "
     "'reminder'?"),
    ("number for text", GOOD_DEADLINE + "note = 1\n", 12,
     "deadlines.0.note: must be a string (in quotes)"),
    ("bad boolean", "[digest]\nschedule = \"0 8 * * *\"\nalways = 3\n" + GOOD_DEADLINE, 9,
     "digest.always: must be true or false"),
    ("value for a table", "delivery = 3\n" + HEAD + GOOD_DEADLINE, 1, "delivery: must be a table"),
    ("offset in months", GOOD_DEADLINE + 'reminders = ["7d", "P1M"]\n', 12,
     "deadlines.0.reminders.1: months and years are refused as ambiguous (a month is 28 to 31"
     " days): use days or weeks, e.g. 30d, 4w, P30D"),
    ("offset in years", "[defaults]\noverdue_every = \"P1Y\"\noverdue_limit = 2\n"
     "[channels.console]\nurl = \"console://\"\n" + GOOD_DEADLINE, 2,
     "defaults.overdue_every: months and years are refused as ambiguous (a month is 28 to 31"
     " days): use days or weeks, e.g. 30d, 4w, P30D"),
    ("offset in short months", GOOD_DEADLINE + 'reminders = ["1mo"]\n', 12,
     "deadlines.0.reminders.0: months and years are refused as ambiguous (a month is 28 to 31"
     " days): use days or weeks, e.g. 30d, 4w, P30D"),
    ("bad kind", "[channels.x]\nurl = \"console://\"\nkinds = [\"reminders\"]\n" + GOOD_DEADLINE,
     9, "channels.x.kinds.0: must be one of 'reminder', 'rescheduled', 'due', 'overdue', "
     "'completed', 'cancelled' or 'digest'; did you mean 'reminder'?"),
]


@pytest.mark.parametrize(("name", "body", "line", "message"), WORDED, ids=[c[0] for c in WORDED])
def test_problems_are_worded_for_operators(
    tmp_path: Path, name: str, body: str, line: int, message: str
) -> None:
    path = write(tmp_path, body, head=HEAD not in body)
    status, output = run_check(path)
    assert status == 78, output
    assert any(re.fullmatch(rf"{re.escape(str(path))}:{line}:\d+: {re.escape(message)}", ln)
               for ln in output.splitlines()), output
    for pydantic_words in ("Field required", "should match pattern", "Input should",
                           "Extra inputs"):
        assert pydantic_words not in output


def write(tmp_path: Path, body: str, *, head: bool = True) -> Path:
    path = tmp_path / "config.toml"
    path.write_text((HEAD if head and not body.startswith("[defaults]") else "") + body)
    path.chmod(0o600)
    return path


def run_check(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "-c", str(path), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("name", "body", "line", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_located(
    tmp_path: Path, name: str, body: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, body)
    status, output = run_check(path)
    assert status == 78, output
    assert "Traceback" not in output
    first = output.strip().splitlines()[0]
    assert re.match(rf"^{re.escape(str(path))}:{line}:\d+: ", first), first
    assert fragment in output


def test_every_problem_is_reported(tmp_path: Path) -> None:
    body = GOOD_DEADLINE + "timezone = \"Nowhere/Land\"\nreminders = [\"x\"]\n"
    status, output = run_check(write(tmp_path, body))
    assert status == 78
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert [ln.split(":")[1] for ln in lines] == ["12", "13"]


def test_missing_file(tmp_path: Path) -> None:
    status, output = run_check(tmp_path / "absent.toml")
    assert status == 78
    assert "config file not found" in output
    assert "Traceback" not in output


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with path.open("wb") as f:
        f.write(b"# ")
        f.truncate((128 << 20) + 1)  # sparse: refused unread, in a blink
    status, output = run_check(path)
    assert (status, "larger than 128 MiB" in output) == (78, True)


def test_reminder_after_due_warns_and_strict_fails(tmp_path: Path) -> None:
    body = GOOD_DEADLINE.replace("due = 2020-11-15", "due = 2020-11-15T12:00:00") + \
        "reminders = [\"1d\", \"0d\"]\n"
    path = write(tmp_path, body)
    status, output = run_check(path)
    assert status == 0
    assert re.search(rf"{re.escape(str(path))}:12:\d+: deadlines.0.reminders.1: warning: "
                     r"reminder '0d' lands at or after the due", output)
    status, output = run_check(path, "--strict")
    assert status == 78


# What plans nothing but may be meant, warned (exit 0; 78 with --strict): (name, body after
# HEAD, line, message)
NO_OP_WARNINGS = [
    ("announced after the due", GOOD_DEADLINE + "announced = 2020-11-17\n", 12,
     "deadlines.0.announced: warning: announced after its due (by the end of Sun 15 Nov 2020, "
     "Baku): no "
     "reminder, due or overdue message is sent for this deadline"),
    ("announced after the last extension's due", GOOD_DEADLINE + "announced = 2020-12-01\n"
     + "[[deadlines.extensions]]\ndue = 2020-11-25\n", 12,
     "deadlines.0.announced: warning: announced after its last due (extension 1: by the end "
     "of Wed 25 Nov 2020, Baku)"),
    ("announced after the due, in the deadline's zone", GOOD_DEADLINE.replace(
        "due = 2020-11-15", "due = 2020-11-15T12:00:30") + "timezone = \"America/New_York\"\n"
     "announced = 2020-11-16\n", 13, "deadlines.0.announced: warning: announced after its due "
     "(Sun 15 Nov 2020 12:00:30, New York): no reminder"),
]


# Zones that are not a place, from tzdata's own links and tables (and a short US list).
NO_OP_WARNINGS += [
    (f"zone {zone}", GOOD_DEADLINE + f'timezone = "{zone}"\n', 12,
     f"deadlines.0.timezone: warning: {zone} {said}")
    for zone, said in [
        ("EST", "is a fixed UTC-05:00 all year, with no daylight saving time; if you mean the "
                "clock of a place, write its zone such as 'America/New_York'"),
        ("MST", "is a fixed UTC-07:00 all year, with no daylight saving time"),
        ("EST5EDT", "is a legacy POSIX-style zone, not a place; write 'America/New_York'"),
        ("Etc/GMT+5", "is a fixed UTC-05:00 all year, with no daylight saving time (its sign is "
                      "inverted, POSIX style)"),
        ("US/Eastern", "is a legacy name for America/New_York; write 'America/New_York'"),
        ("Asia/Calcutta", "is a legacy name for Asia/Kolkata; write 'Asia/Kolkata'"),
    ]
] + [
    ("default zone not a place", HEAD.replace("Asia/Baku", "US/Pacific") + GOOD_DEADLINE, 2,
     "defaults.timezone: warning: US/Pacific is a legacy name for America/Los_Angeles"),
]


# Channels whose kinds no message of the file can have.
PAGER = '[channels.pager]\nurl = "console://"\nkinds = {kinds}\n'
NO_OP_WARNINGS += [
    ("channel for the digest with the digest off", PAGER.format(kinds='["digest"]')
     + GOOD_DEADLINE, 9, "channels.pager.kinds: warning: no message can reach this channel "
     "('digest': there is no [digest])"),
    ("channel the digest does not send to", '[digest]\nschedule = "0 8 * * *"\n'
     'channels = ["console"]\n' + PAGER.format(kinds='["digest"]') + GOOD_DEADLINE, 12,
     "channels.pager.kinds: warning: no message can reach this channel ('digest': [digest] "
     "does not send to it)"),
    ("channel for a kind no deadline makes", PAGER.format(kinds='["overdue", "rescheduled"]')
     + GOOD_DEADLINE, 9, "channels.pager.kinds: warning: no message can reach this channel "
     "('overdue': no deadline sending to it has overdue_every; 'rescheduled': no deadline "
     "sending to it has an extension)"),
    ("channel no deadline sends to", PAGER.format(kinds='["due"]')
     + GOOD_DEADLINE + 'channels = ["console"]\n', 9, "channels.pager.kinds: warning: no "
     "message can reach this channel ('due': no deadline sends to it)"),
]


@pytest.mark.parametrize(("name", "body", "line", "message"), NO_OP_WARNINGS,
                         ids=[c[0] for c in NO_OP_WARNINGS])
def test_what_plans_nothing_warns(tmp_path: Path, name: str, body: str, line: int,
                                  message: str) -> None:
    path = write(tmp_path, body)
    status, output = run_check(path)
    assert status == 0, output
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: {re.escape(message)}", output,
                     re.MULTILINE), output
    assert run_check(path, "--strict")[0] == 78


def test_a_late_extension_still_warns_only_for_the_deadline(tmp_path: Path) -> None:
    """Known after the first due, but before an extension's: that due is planned."""
    body = GOOD_DEADLINE + "announced = 2020-11-17\n" + EXTENSION.format(
        due="2020-11-25", announced="2020-11-17T12:00:00")
    status, output = run_check(write(tmp_path, body))
    assert (status, "warning" in output) == (0, False), output


def test_a_zone_is_said_once_and_places_are_quiet(tmp_path: Path) -> None:
    body = "".join(GOOD_DEADLINE.replace("kalbajar", f"d{i}") + f'timezone = "{zone}"\n'
                   for i, zone in enumerate(["US/Eastern", "US/Eastern", "UTC", "Etc/UTC",
                                             "America/New_York", "Europe/Berlin"]))
    status, output = run_check(write(tmp_path, body))
    assert status == 0
    assert [ln.split(": ", 1)[1] for ln in output.splitlines() if "warning" in ln] == [
        "deadlines.0.timezone: warning: US/Eastern is a legacy name for America/New_York; "
        "write 'America/New_York'"], output


def test_a_channel_one_of_whose_kinds_can_arrive_is_quiet(tmp_path: Path) -> None:
    body = PAGER.format(kinds='["digest", "rescheduled", "overdue"]') + GOOD_DEADLINE + (
        'overdue_every = "1d"\noverdue_limit = 2\n')
    status, output = run_check(write(tmp_path, body))
    assert (status, "warning" in output) == (0, False), output


# (reminders as written, line, column of the repeated element)
REPEATS = [
    ('reminders = ["7d", "1w", "7d"]', 12, 26),
    ("reminders = [ '1d',\t'1d' ]  # twice", 12, 21),
    ('reminders = [\n  "3d",\n  "1d", "3d",\n]', 14, 9),
    ('reminders = ["P1D", "PT2H",\n "PT2H"]', 13, 2),
]


@pytest.mark.parametrize(("reminders", "line", "col"), REPEATS)
def test_a_repeated_reminder_is_located_at_its_element(
        tmp_path: Path, reminders: str, line: int, col: int) -> None:
    path = write(tmp_path, GOOD_DEADLINE + reminders + "\n")
    status, output = run_check(path)
    assert status == 78, output
    assert output.startswith(f"{path}:{line}:{col}: deadlines.0.reminders."), output


# (reminders, due, line, path, message): offsets that land on one instant are a warning
COINCIDING = [
    ('["7d", "1w", "168h"]', "2020-11-15T12:00:00", 12, "deadlines.0.reminders.1",
     "reminders '7d' and '1w' land on the same instant before the due of 'kalbajar' "
     "(Sun 8 Nov 2020 12:00, Baku); it is sent once, as '7d'"),
    ('["7d", "1w", "168h"]', "2020-11-15T12:00:00", 12, "deadlines.0.reminders.2",
     "reminders '7d' and '168h'"),
    ('["1d12h", "36h"]', "2020-11-15T12:00:00", 12, "deadlines.0.reminders.1",
     "reminders '1d12h' and '36h' land on the same instant"),
    ('["0d", "15h"]', "2020-11-15", 12, "deadlines.0.reminders.1",
     "reminders '0d' and '15h' land on the same instant"),
    (None, "2020-11-15", 3, "defaults.reminders.3", "reminders '0d' and '15h' land on"),
]


@pytest.mark.parametrize(("reminders", "due", "line", "path", "message"), COINCIDING)
def test_offsets_landing_together_warn(tmp_path: Path, reminders: str | None, due: str,
                                       line: int, path: str, message: str) -> None:
    head = HEAD if reminders is not None else HEAD.replace('"0d"]', '"0d", "15h"]')
    body = GOOD_DEADLINE.replace("due = 2020-11-15", f"due = {due}") + (
        f"reminders = {reminders}\n" if reminders is not None else "")
    # A second deadline on the defaults: their pair is said once for the file.
    body += GOOD_DEADLINE.replace("kalbajar", "aghdam").replace("2020-11-15", "2020-11-20")
    config = write(tmp_path, head + body, head=False)
    status, output = run_check(config)
    assert status == 0, output
    assert f"{config}:{line}:" in output
    found = [ln for ln in output.splitlines() if f": {path}: warning: {message}" in ln]
    assert len(found) == 1, output
    assert found[0].startswith(f"{config}:{line}:"), output
    status, output = run_check(config, "--strict")
    assert status == 78


def test_secret_never_in_errors(tmp_path: Path) -> None:
    body = (f"[channels.mail]\nurl = \"mailtos://ops:{SECRET}@mail.example.org\"\nkinds = [\"x\"]\n"
            + GOOD_DEADLINE + f"reminders = [\"{SECRET}\"]\ntimezone = \"{SECRET}\"\n")
    status, output = run_check(write(tmp_path, body))
    assert status == 78
    assert SECRET not in output
    assert "channels.mail.kinds.0" in output


def test_env_override_and_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[channels.hook]\nurl = \"console://\"\n" + GOOD_DEADLINE)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "channels__hook__url").write_text("jsonl:///tmp/out.jsonl")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    from notifier.config import loader as config  # noqa: PLC0415

    assert config.load(path).schedule.channels["hook"].urls == ("jsonl:///tmp/out.jsonl",)
    monkeypatch.setenv("NOTIFIER_CHANNELS__HOOK__URL", "jsonl:///tmp/env.jsonl")
    assert config.load(path).schedule.channels["hook"].urls == ("jsonl:///tmp/env.jsonl",)
    monkeypatch.setenv("NOTIFIER_DEFAULTS__TIMEZONE", "Not/AZone")
    status, output = run_check(path)
    assert status == 78
    assert output.strip() == "NOTIFIER_DEFAULTS__TIMEZONE: unknown time zone (use an IANA name" \
        " such as Asia/Baku)"


def test_real_process_exit_status_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_DEADLINE + "bogus = true\n")
    proc = subprocess.run(
        [sys.executable, "-m", "notifier", "check", "-c", str(path)],
        capture_output=True, text=True, check=False, env=clean_env(PYTHONWARNINGS="error"),
    )
    assert proc.returncode == 78
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"{path}:12:1: deadlines.0.bogus: unknown key"


# (how the path is given, what is there, the one line after the path)
PATHS = [
    ("-c", "directory", "is a directory, not a config file"),
    ("NOTIFIER_CONFIG", "directory", "is a directory, not a config file"),
    ("-c", "nothing", "config file not found"),
    ("NOTIFIER_CONFIG", "nothing", "config file not found"),
]


@pytest.mark.parametrize(("given", "there", "message"), PATHS)
def test_a_config_path_that_is_no_file_is_a_config_error(
        tmp_path: Path, given: str, there: str, message: str) -> None:
    path = tmp_path / "config.toml"
    if there == "directory":
        path.mkdir()
    args = ["check", "-c", str(path)] if given == "-c" else ["check"]
    env = {"NOTIFIER_CONFIG": str(path)} if given == "NOTIFIER_CONFIG" else {}
    result = CliRunner().invoke(main, args, env=env)
    assert (result.exit_code, result.stdout) == (78, ""), result.output
    assert result.stderr == f"{path}: {message}\n"


# (arguments after the command, variables, the one line `check` and `run` print): an
# empty path names no file; said at where it was given, not read as the working directory
# (`-c ''` reaches notifier as `.`) nor replaced by the default.
EMPTY_PATHS: list[tuple[list[str], dict[str, str], str]] = [
    (["-c", ""], {}, "-c: empty path: give the config file's path (an empty path, or `.`, "
     "is the working directory)"),
    (["--config="], {}, "-c: empty path: give the config file's path (an empty path, or `.`, "
     "is the working directory)"),
    ([], {"NOTIFIER_CONFIG": ""}, "NOTIFIER_CONFIG: empty path: give the config file's path, "
     "or unset it for the default"),
]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(("args", "variables", "said"), EMPTY_PATHS,
                         ids=["-c ''", "--config=", "NOTIFIER_CONFIG="])
def test_an_empty_config_path_is_a_config_error(
        tmp_path: Path, command: str, args: list[str], variables: dict[str, str],
        said: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "notifier", command, *args],
                          capture_output=True, text=True, check=False, cwd=tmp_path,
                          env=clean_env(**variables), timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (78, "", said + "\n")


def test_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + GOOD_DEADLINE).encode())
    path.chmod(0o600)
    status, output = run_check(path)
    assert status == 0, output
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + GOOD_DEADLINE + "bogus = 1\n").encode())
    status, output = run_check(path)
    assert (status, output) == (78, f"{path}:12:1: deadlines.0.bogus: unknown key\n")


@pytest.mark.timeout(120)
def test_the_daemon_says_the_same_at_start_and_reload(tmp_path: Path) -> None:
    """What `check` warns the daemon logs at start and at each reload; what it refuses,
    a reload refuses, located, keeping the previous plan."""
    due = utc_now().replace(microsecond=0) + timedelta(days=3)
    zoned = deadline_toml("d", due, extra='timezone = "US/Eastern"')
    with daemon_process(tmp_path, jsonl_config(tmp_path, zoned)) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        config = tmp_path / "config.toml"
        for extra in ('overdue_every = "1d"', 'timezone = "EST5EDT"'):
            write_config(config, jsonl_config(tmp_path, deadline_toml("d", due, extra=extra)))
            count = len(sd.texts())
            d.signal(signal.SIGHUP)
            sd.wait_for(lambda m: "READY=1" in m, after=count)
        assert d.stop() == 0
        logs = d.text()
    said = [ln for ln in logs.splitlines() if "deadlines.0." in ln]
    assert len(said) == 3, logs
    assert "deadlines.0.timezone: warning: US/Eastern is a legacy name for America/New_York" \
        in said[0]
    assert f"reload rejected: {config}:" in said[1]
    assert "deadlines.0.overdue_every: overdue_every without overdue_limit" in said[1]
    assert f"reload: {config}:" in said[2]
    assert "deadlines.0.timezone: warning: EST5EDT is a legacy POSIX-style zone" in said[2]

"""Values out of range, of the wrong type, or that do nothing (issue 22): each is one
located line and exit 78 at load, so `check`, every command and a reload refuse it alike,
never a traceback later; what may be meant is a located warning.
"""

from __future__ import annotations

import re
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from support.configs import deadline_toml, jsonl_config, write_config
from support.env import clean_env
from support.processes import daemon_process, run_notifier
from support.times import utc_now

HEAD = """\
[defaults]
timezone = "Asia/Baku"
{defaults}
[channels.console]
url = "console://"
{tables}
[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
{deadline}"""


def body(defaults: str = "", tables: str = "", deadline: str = "") -> str:
    return HEAD.format(defaults=defaults, tables=tables, deadline=deadline)


def write(tmp_path: Path, text: str) -> Path:
    return write_config(tmp_path / "config.toml", text)


DELIVERY = "[delivery]\n{}\n"
SECOND = '\n[[deadlines]]\nid = "aghdam"\ntitle = "Aghdam handover"\ndue = 2020-11-20\n'
"""A second deadline, after `body()`'s."""
DIGEST = '[digest]\nschedule = "0 8 * * *"\n{}\n'
OVERDUE = 'overdue_every = "1d"\n{}\n'
EXTENSION = "[[deadlines.extensions]]\ndue = {}\nannounced = {}\n"

QUOTED_DATE = ("a date is written without quotes (2020-11-25, or a datetime "
               "2020-11-25T17:00:00+04:00): in quotes it is text")

# (name, config text, line, the whole message after the location)
REFUSED = [
    # A timeout or an interval of 0 reads as "none" or as "no limit", and does neither.
    *((f"timeout {zero}", body(tables=DELIVERY.format(f'timeout = "{zero}"')), 7,
       "delivery.timeout: must be more than 0") for zero in ["0s", "0h", "PT0S"]),
    ("overdue_every 0", body(deadline='overdue_every = "0d"\noverdue_limit = 3\n'), 11,
     "deadlines.0.overdue_every: must be more than 0"),
    ("default overdue_every 0", body(defaults='overdue_every = "0m"\noverdue_limit = 3'), 3,
     "defaults.overdue_every: must be more than 0"),
    # A TOML string, a boolean or a float is not a whole number; a string is not a flag.
    *((f"overdue_limit = {given}", body(deadline=OVERDUE.format(f"overdue_limit = {given}")),
       12, "deadlines.0.overdue_limit: must be a whole number")
      for given in ['"3"', "true", "3.0"]),
    ("default overdue_limit as text", body(defaults='overdue_every = "1d"\noverdue_limit = "2"'),
     4, "defaults.overdue_limit: must be a whole number"),
    ("helpers as text", body(tables=DELIVERY.format('helpers = "1"')), 7,
     "delivery.helpers: must be a whole number"),
    ("helpers as a flag", body(tables=DELIVERY.format("helpers = false")), 7,
     "delivery.helpers: must be a whole number"),
    *((f"always = {given}", body(tables=DIGEST.format(f"always = {given}")), 8,
       "digest.always: must be true or false")
      for given in ['"yes"', '"off"', '"true"', "1"]),
    # What would never send anything.
    ("digest on no date", body(tables='[digest]\nschedule = "0 8 31 2 *"\n'), 7,
     "digest.schedule: names no date that exists (such as 31 February): no digest would ever "
     "be sent"),
    ("digest to no channel", body(tables=DIGEST.format("channels = []")), 8,
     "digest.channels: no channel to send to"),
    # A mistake in [defaults] is said once, there, however many deadlines inherit it.
    ("unknown default channel", body(defaults='channels = ["pager"]') + SECOND, 3,
     "defaults.channels.0: unknown channel 'pager' (not in [channels])"),
    ("no default channel", body(defaults="channels = []") + SECOND, 3,
     "defaults.channels: no channel to send to"),
    ("unknown default channel, a digest too", body(
        defaults='channels = ["pager"]', tables=DIGEST.format("")), 3,
     "defaults.channels.0: unknown channel 'pager' (not in [channels])"),
    ("no default channel, a digest too", body(defaults="channels = []",
                                              tables=DIGEST.format("")), 3,
     "defaults.channels: no channel to send to"),
    # The file's types are strict: a date in quotes is text, as `due = "next friday"` is.
    ("due in quotes", body().replace("due = 2020-11-15", 'due = "2020-11-15"'), 10,
     f"deadlines.0.due: {QUOTED_DATE}"),
    *((f"{key} in quotes", body(deadline=f'{key} = "{value}"\n'), 11,
       f"deadlines.0.{key}: {QUOTED_DATE}")
      for key, value in [("announced", "2020-11-01"), ("completed", "2020-11-14T10:00:00Z"),
                         ("cancelled", "2020-11-14")]),
    ("extension due in quotes", body(deadline='[[deadlines.extensions]]\ndue = "2020-11-20"\n'),
     12, f"deadlines.0.extensions.0.due: {QUOTED_DATE}"),
    # An extension announced at its own new due: "Now due ... (now)" says nothing ahead.
    ("extension announced at its new due", body(deadline=EXTENSION.format(
        "2020-11-25T12:00:00Z", "2020-11-25T12:00:00Z")), 13,
     "deadlines.0.extensions.0.announced: announced at or after its own new due "
     "(Wed 25 Nov 2020 16:00, Baku): its message would announce a move to a time already "
     "come; correct announced or due"),
    ("extension announced the day after its date due", body(deadline=EXTENSION.format(
        "2020-11-25", "2020-11-26")), 13,
     "deadlines.0.extensions.0.announced: announced at or after its own new due "
     "(by the end of Wed 25 Nov 2020, Baku): its message would announce a move to a time "
     "already come; correct announced or due"),
    # Each at its own key, not at the table's header.
    ("url and urls", body(tables='[channels.x]\nurl = "console://"\nurls = ["console://"]\n'),
     8, "channels.x.urls: give exactly one of url or urls"),
    ("urls empty", body(tables="[channels.x]\nurls = []\n"), 7,
     'channels.x.urls: must not be empty: give at least one URL (or url = "...")'),
    ("a quoted key with an escape", body(deadline='"ti\\u001btle" = 1\n'), 11,
     "deadlines.0.ti\\u001btle: unknown key; did you mean `title`?"),
    ("a quoted key with an escaped quote", body(deadline='"ti\\"tle" = 1\n'), 11,
     'deadlines.0.ti"tle: unknown key; did you mean `title`?'),
    ("channel of no kind", body(tables="kinds = []\n"), 6,
     "channels.console.kinds: must not be empty: no message would reach this channel (leave "
     "kinds out for every kind)"),
    # Paths the daemon would read against its working directory, / under systemd.
    ("relative state", body(tables='[notifier]\nstate = "notifier.db"\n'), 7,
     "notifier.state: must be an absolute path (under systemd the working directory is /)"),
    ("relative plugin path", body(tables='[notifier]\nplugin_paths = ["plugins"]\n'), 7,
     "notifier.plugin_paths.0: must be an absolute path (under systemd the working directory "
     "is /)"),
    ("unknown log level", body(tables='[notifier]\nlog_level = "verbose"\n'), 7,
     "notifier.log_level: must be one of 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
]
JSONL = [
    ("jsonl file in no directory", "{tmp}/nonexistent-dir/x.jsonl",
     "the directory of this jsonl:// file does not exist: create it or correct the path"),
    ("jsonl file under a file", "{tmp}/config.toml/x.jsonl",
     "the directory of this jsonl:// file is not a directory: correct the path"),
    ("jsonl file that is a directory", "{tmp}",
     "jsonl:// names a directory: give a file in it"),
    ("jsonl path with a name too long", "{tmp}/" + "d" * 300 + "/x.jsonl",
     "a name in this jsonl:// path is too long: correct the path"),
]
REFUSED += [(name, body(tables=f'[channels.out]\nurl = "jsonl://{path}"\n'), 7,
             f"channels.out.url: {message}") for name, path, message in JSONL]


def assert_one_located_line(output: str, path: Path, line: int, message: str) -> None:
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert re.fullmatch(rf"{re.escape(str(path))}:{line}:\d+: {re.escape(message)}",
                        lines[0]), lines[0]


@pytest.mark.parametrize(("name", "text", "line", "message"), REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_check_refuses_it_located(tmp_path: Path, name: str, text: str, line: int,
                                  message: str) -> None:
    path = write(tmp_path, text.replace("{tmp}", str(tmp_path)))
    proc = run_notifier("check", "-c", str(path), env=clean_env())
    assert (proc.returncode, proc.stdout) == (78, ""), proc.stderr
    assert_one_located_line(proc.stderr, path, line, message)


@pytest.mark.parametrize("command", [["send-test", "console"], ["run"], ["plan"],
                                     ["replay", "--from", "2020-11-10T00:00:00Z",
                                      "--until", "2020-11-11T00:00:00Z"]])
def test_every_command_refuses_a_zero_timeout_at_load(tmp_path: Path,
                                                      command: list[str]) -> None:
    """Formerly `check` passed it and these printed `ValueError: timeout must be positive`."""
    path = write(tmp_path, body(tables=DELIVERY.format('timeout = "0s"')))
    env = clean_env(STATE_DIRECTORY=str(tmp_path))
    proc = run_notifier(command[0], "-c", str(path), *command[1:], env=env)
    assert proc.returncode == 78, proc.stderr
    assert_one_located_line(proc.stderr, path, 7, "delivery.timeout: must be more than 0")


# Variables are text by nature: read as the number or flag their setting wants.
# (variables, what `check` must say on stderr, its exit status)
VARIABLES = [
    ({"NOTIFIER_DELIVERY__TIMEOUT": "0s"},
     "NOTIFIER_DELIVERY__TIMEOUT: must be more than 0\n", 78),
    ({"NOTIFIER_NOTIFIER__STATE": "relative.db"}, "NOTIFIER_NOTIFIER__STATE: must be an "
     "absolute path (under systemd the working directory is /)\n", 78),
    ({"NOTIFIER_DIGEST__ALWAYS": "maybe"}, "NOTIFIER_DIGEST__ALWAYS: must be true or false\n",
     78),
    ({"NOTIFIER_DELIVERY__HELPERS": "2", "NOTIFIER_DIGEST__ALWAYS": "true",
      "NOTIFIER_DEFAULTS__OVERDUE_EVERY": "1d", "NOTIFIER_DEFAULTS__OVERDUE_LIMIT": "3",
      "NOTIFIER_NOTIFIER__LOG_LEVEL": "debug"}, "", 0),
    ({"NOTIFIER_DIGEST__ALWAYS": "false"}, "", 0),
    # A variable's dates are text (JSON has no dates): read as dates.
    ({"NOTIFIER_DEADLINES": '[{"id": "b", "title": "B", "due": "2027-01-01", "announced":'
      ' "2026-12-01T10:00:00Z", "extensions": [{"due": "2027-02-01"}],'
      ' "completed": "2027-01-05"}]'},
     "NOTIFIER_DEADLINES: warning: replaces the file's 1 deadline\n", 0),
]


@pytest.mark.parametrize(("variables", "said", "status"), VARIABLES)
def test_variables_are_read_as_their_setting_wants(
        tmp_path: Path, variables: dict[str, str], said: str, status: int) -> None:
    path = write(tmp_path, body(tables=DIGEST.format("")))
    proc = run_notifier("check", "-c", str(path), env=clean_env(**variables))
    assert (proc.returncode, proc.stderr) == (status, said)


# (name, config text): accepted, quietly
ACCEPTED = [
    ("a log level in any case", body(tables='[notifier]\nlog_level = "debug"\n')),
    ("no retry", body(tables=DELIVERY.format('give_up_after = "0s"'))),
    ("nothing sent late", body(tables=DELIVERY.format('catchup = "0s"'))),
    ("a state under ~", body(tables='[notifier]\nstate = "~/notifier.db"\n')),
]


@pytest.mark.parametrize(("name", "text"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_what_is_meant_is_accepted(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, text)
    proc = run_notifier("check", "-c", str(path), env=clean_env())
    assert (proc.returncode, proc.stderr) == (0, "")


# (name, config text, variables, the warning on stderr; {path} is the config's)
WARNED = [
    ("note on an open deadline", body(deadline='note = "handed over early"\n'), {},
     "{path}:11:8: deadlines.0.note: warning: note is shown only with completed or cancelled; "
     "did you mean notes?"),
    ("deadlines replaced by a variable", body() + body().split("\n\n", 2)[2].replace(
        "kalbajar", "aghdam"), {"NOTIFIER_DEADLINES": "[]"},
     "NOTIFIER_DEADLINES: warning: replaces the file's 2 deadlines\n"
     "{path}: warning: no deadlines: nothing will ever be sent"),
    ("reminders replaced by a variable", body(defaults='reminders = ["3d", "1d", "0d"]'),
     {"NOTIFIER_DEFAULTS__REMINDERS": '["2d"]'},
     "NOTIFIER_DEFAULTS__REMINDERS: warning: replaces the file's 3 reminders"),
    ("urls replaced inside a table", body(tables='[channels.many]\nurls = ["console://"]\n'),
     {"NOTIFIER_CHANNELS": '{"many": {"urls": ["console://", "console://"]}}'},
     "NOTIFIER_CHANNELS: channels.many.urls: warning: replaces the file's 1 URL"),
]


@pytest.mark.parametrize(("name", "text", "variables", "warning"), WARNED,
                         ids=[c[0] for c in WARNED])
def test_what_may_be_meant_is_warned(tmp_path: Path, name: str, text: str,
                                     variables: dict[str, str], warning: str) -> None:
    path = write(tmp_path, text)
    proc = run_notifier("check", "-c", str(path), env=clean_env(**variables))
    assert (proc.returncode, proc.stderr) == (0, warning.format(path=path) + "\n")
    strict = run_notifier("check", "--strict", "-c", str(path), env=clean_env(**variables))
    assert strict.returncode == 78


def test_a_variable_that_sets_a_list_the_file_lacks_is_quiet(tmp_path: Path) -> None:
    path = write(tmp_path, body())
    env = clean_env(NOTIFIER_DEFAULTS__REMINDERS='["2d"]')
    proc = run_notifier("check", "-c", str(path), env=env)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.timeout(120)
def test_a_reload_refuses_a_bad_value_located_without_a_traceback(tmp_path: Path) -> None:
    due = utc_now().replace(microsecond=0) + timedelta(days=3)
    config = tmp_path / "config.toml"
    with daemon_process(tmp_path, jsonl_config(tmp_path, deadline_toml("d", due))) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        write_config(config, jsonl_config(tmp_path, deadline_toml("d", due),
                                          delivery={"timeout": "0s"}))
        count = len(sd.texts())
        d.signal(signal.SIGHUP)
        sd.wait_for(lambda m: "READY=1" in m, after=count)
        assert d.stop() == 0
        logs = d.text()
    assert "Traceback" not in logs
    assert re.search(rf"reload rejected: {re.escape(str(config))}:\d+:\d+: delivery.timeout: "
                     "must be more than 0", logs), logs


@pytest.mark.timeout(120)
def test_the_daemon_logs_a_replaced_list_at_start(tmp_path: Path) -> None:
    due = utc_now().replace(microsecond=0) + timedelta(days=3)
    text = jsonl_config(tmp_path, deadline_toml("d", due))
    file, other = tmp_path / "out.jsonl", tmp_path / "other.jsonl"
    assert f'url = "jsonl://{file}"' in text
    text = text.replace(f'url = "jsonl://{file}"', f'urls = ["jsonl://{file}"]')
    urls = f'["jsonl://{other}"]'
    with daemon_process(tmp_path, text,
                        extra_env={"NOTIFIER_CHANNELS__OUT__URLS": urls}) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        assert d.stop() == 0
        head = d.text().split(" ready: ")[0]
    assert "NOTIFIER_CHANNELS__OUT__URLS: warning: replaces the file's 1 URL" in head, head

"""Bad `NOTIFIER_*` variables and credential files: one line naming the variable or file,
exit 78, no traceback, never the value; a variable that sets nothing is a warning.

Each case runs as a real process, `check` and `run` alike (systemd restarts a
daemon that exits 1, and keeps one that exits 78 stopped).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support.configs import write_config
from support.env import clean_env
from support.processes import NotifySocket, Proc, run_notifier, wait_ready

SECRET = "s3cr3t-Pa55w0rd-canary"

CONFIG = """\
[notifier]
state = "{state}"

[defaults]
timezone = "Asia/Baku"
reminders = ["3d", "1d"]

[channels.console]
url = "console://"

[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
channels = ["console"]
"""

CREDS = "$CREDS/"
"""In a case's `where`: the credential directory's path."""

# (name, variables, credential files, where the one line says it is, fragment of its message)
CASES: list[tuple[str, dict[str, str], dict[str, bytes], str, str]] = [
    ("list not in JSON", {"NOTIFIER_DEFAULTS__REMINDERS": f"3d,{SECRET}"}, {},
     "NOTIFIER_DEFAULTS__REMINDERS", "not valid JSON"),
    ("malformed JSON table", {"NOTIFIER_CHANNELS": f'{{"ops": {{"url": "{SECRET}"'}, {},
     "NOTIFIER_CHANNELS", "not valid JSON"),
    ("unknown time zone", {"NOTIFIER_DEFAULTS__TIMEZONE": f"Mars/{SECRET}"}, {},
     "NOTIFIER_DEFAULTS__TIMEZONE", "unknown time zone"),
    ("wrong type", {"NOTIFIER_DELIVERY__HELPERS": SECRET}, {},
     "NOTIFIER_DELIVERY__HELPERS", "must be a whole number"),
    ("bad offset", {"NOTIFIER_DELIVERY__CATCHUP": SECRET}, {},
     "NOTIFIER_DELIVERY__CATCHUP", "not an offset"),
    ("bad URL", {"NOTIFIER_CHANNELS__CONSOLE__URL": SECRET}, {},
     "NOTIFIER_CHANNELS__CONSOLE__URL", "not an apprise URL"),
    ("unknown key below a setting", {"NOTIFIER_CHANNELS__CONSOLE__COLOUR": SECRET}, {},
     "NOTIFIER_CHANNELS__CONSOLE__COLOUR", "unknown key"),
    ("bad value inside JSON", {"NOTIFIER_CHANNELS":
     f'{{"console": {{"url": "console://", "kinds": ["{SECRET}"]}}}}'}, {},
     "NOTIFIER_CHANNELS", "channels.console.kinds.0: "),
    ("unknown channel", {"NOTIFIER_DEFAULTS__CHANNELS": f'["{SECRET}"]'}, {},
     "NOTIFIER_DEFAULTS__CHANNELS", "defaults.channels.0: unknown channel"),
    ("credential: list not in JSON", {}, {"defaults__reminders": f"3d {SECRET}".encode()},
     CREDS + "defaults__reminders", "not valid JSON"),
    ("credential: unknown time zone", {}, {"defaults__timezone": f"Mars/{SECRET}".encode()},
     CREDS + "defaults__timezone", "unknown time zone"),
    ("credential: bad URL", {}, {"channels__console__url": SECRET.encode()},
     CREDS + "channels__console__url", "not an apprise URL"),
    ("credential: not UTF-8", {}, {"channels__console__url": SECRET.encode() + b"\xff\xfe"},
     CREDS + "channels__console__url", "not valid UTF-8"),
    ("a variable over a credential: the variable",
     {"NOTIFIER_DEFAULTS__TIMEZONE": f"Venus/{SECRET}"},
     {"defaults__timezone": b"Asia/Baku"}, "NOTIFIER_DEFAULTS__TIMEZONE", "unknown time zone"),
]
IDS = [c[0] for c in CASES]


def setup(tmp_path: Path, variables: dict[str, str], files: dict[str, bytes]) -> tuple[Path,
                                                                                      dict[str, str]]:
    config = write_config(tmp_path / "config.toml", CONFIG.format(state=tmp_path / "n.db"))
    env = clean_env(**variables)
    if files:
        creds = tmp_path / "creds"
        creds.mkdir()
        for name, content in files.items():
            (creds / name).write_bytes(content)
        env["CREDENTIALS_DIRECTORY"] = str(creds)
    return config, env


def assert_one_line_about(output: str, where: str, fragment: str, tmp_path: Path) -> None:
    where = where.replace(CREDS, f"{tmp_path / 'creds'}/")
    assert "Traceback" not in output
    assert SECRET not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"{where}: "), lines[0]
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(("name", "variables", "files", "where", "fragment"), CASES, ids=IDS)
def test_check_names_the_variable_or_file(
    tmp_path: Path, name: str, variables: dict[str, str], files: dict[str, bytes], where: str,
    fragment: str,
) -> None:
    config, env = setup(tmp_path, variables, files)
    proc = run_notifier("check", "-c", str(config), env=env)
    assert (proc.returncode, proc.stdout) == (78, ""), proc.stderr
    assert_one_line_about(proc.stderr, where, fragment, tmp_path)


@pytest.mark.parametrize(("name", "variables", "files", "where", "fragment"), CASES, ids=IDS)
def test_run_exits_78_before_ready(
    tmp_path: Path, name: str, variables: dict[str, str], files: dict[str, bytes], where: str,
    fragment: str,
) -> None:
    config, env = setup(tmp_path, variables, files)
    notify = NotifySocket(tmp_path / "notify.sock")
    env["NOTIFY_SOCKET"] = str(notify.path)
    daemon = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", env).start()
    try:
        assert daemon.wait() == 78
        # Exited: everything it sent is in the socket's queue already.
        assert not any("READY=1" in m for m in notify.texts())
    finally:
        daemon.stop()
        notify.close()
    assert_one_line_about(daemon.text(), where, fragment, tmp_path)


def test_a_credentials_directory_that_is_a_file(tmp_path: Path) -> None:
    config, env = setup(tmp_path, {}, {})
    env["CREDENTIALS_DIRECTORY"] = str(config)
    proc = run_notifier("check", "-c", str(config), env=env)
    assert proc.returncode == 78
    assert proc.stderr == f"{config}: $CREDENTIALS_DIRECTORY: not a directory\n"


# (variable or credential file that sets nothing, the name suggested in its warning)
UNKNOWN = [
    ("NOTIFIER_DEFAULT__TIMEZONE", "NOTIFIER_DEFAULTS__TIMEZONE"),
    ("NOTIFIER_DEFAULTS_TIMEZONE", "NOTIFIER_DEFAULTS__TIMEZONE"),
    ("NOTIFIER_CHANEL__OPS__URL", "NOTIFIER_CHANNELS__OPS__URL"),
    ("NOTIFIER_COLOUR", None),
    ("NOTIFIER_LOGLEVEL", "NOTIFIER_NOTIFIER__LOG_LEVEL"),
    ("NOTIFIER_SCHEDULE", "NOTIFIER_DIGEST__SCHEDULE"),
    (CREDS + "default__timezone", "defaults__timezone"),
]


@pytest.mark.parametrize(("name", "suggested"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_a_name_that_sets_nothing_is_a_warning(
    tmp_path: Path, name: str, suggested: str | None,
) -> None:
    where = name.replace(CREDS, f"{tmp_path / 'creds'}/")
    files = {name.removeprefix(CREDS): b"Mars/Olympus"} if name.startswith(CREDS) else {}
    variables = {} if files else {name: "Mars/Olympus"}
    # The project's own variables that are not settings get no warning.
    variables["NOTIFIER_FAULT_SEED"] = "7"
    config, env = setup(tmp_path, variables, files)
    env["NOTIFIER_CONFIG"] = str(config)
    proc = run_notifier("check", env=env)
    assert proc.returncode == 0, proc.stderr
    hint = f" (did you mean {suggested}?)" if suggested else ""
    assert proc.stderr == f"{where}: warning: matches no setting, so it is ignored{hint}\n"
    assert run_notifier("check", "--strict", env=env).returncode == 78


@pytest.mark.parametrize("name", ["NOTIFIER_DIGEST", "NOTIFIER_DELIVERY"])
def test_a_null_value_is_said_to_set_nothing(tmp_path: Path, name: str) -> None:
    # The name is right: no "did you mean" pointing at itself.
    config, env = setup(tmp_path, {name: "null"}, {})
    proc = run_notifier("check", "-c", str(config), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (f"{name}: warning: null sets nothing, so it is ignored: a setting "
                           "cannot be unset from the environment; remove the variable, or give "
                           "the value it should have\n")


def test_the_daemon_logs_the_warning_at_start(tmp_path: Path) -> None:
    config, env = setup(tmp_path, {"NOTIFIER_DEFAULT__TIMEZONE": "UTC"}, {})
    notify = NotifySocket(tmp_path / "notify.sock")
    env["NOTIFY_SOCKET"] = str(notify.path)
    daemon = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", env).start()
    try:
        wait_ready(daemon)
        head = daemon.text().split(" ready: ")[0]
        # A log line like the reload's: level and logger, as the rest of the log.
        assert ("WARNING notifier.daemon: start: NOTIFIER_DEFAULT__TIMEZONE: warning: "
                "matches no setting") in head, head
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        notify.close()


def test_every_notifier_variable_read_is_exempt() -> None:
    """A `NOTIFIER_` name the code or the tests read that sets no setting (the config's
    path, a fault test's seed) must not be warned about."""
    from notifier.config.overrides import NOT_SETTINGS, read_overrides  # noqa: PLC0415 - new

    root = Path(__file__).resolve().parents[1]
    read = re.compile(r"""(?:environ|env)(?:\.get\(|\[)\s*["'](NOTIFIER_\w+)["']""")
    names = {m for top in ("notifier", "tests", "bench")
             for path in (root / top).rglob("*.py")
             for m in read.findall(path.read_text("utf-8"))}
    assert "NOTIFIER_CONFIG" in names
    not_settings = {n for n in names if read_overrides({n: "1"}).warnings}
    assert not_settings == set(), not_settings
    assert names >= NOT_SETTINGS  # none left over


@pytest.mark.parametrize("source", ["variable", "credential"])
def test_a_readable_file_without_the_secret_gets_no_warning(tmp_path: Path, source: str) -> None:
    """The README's systemd install: the file 0644, the URL's secret in a credential.
    The file's exposure warning is about the file's own URLs."""
    url = f"json://ops:{SECRET}@127.0.0.1:9/"
    variables = {"NOTIFIER_CHANNELS__CONSOLE__URL": url} if source == "variable" else {}
    files = {"channels__console__url": url.encode()} if source == "credential" else {}
    config, env = setup(tmp_path, variables, files)
    config.chmod(0o644)
    proc = run_notifier("check", "-c", str(config), env=env)
    assert (proc.returncode, proc.stderr) == (0, "")


# --------------------------------------------------------------------------- exposure


DEADLINE = '\n[[deadlines]]\nid = "kalbajar"\ntitle = "Kalbajar handover"\ndue = 2020-11-15\n'
BOT = f"123456789:{SECRET}"


def exposed(tmp_path: Path, channels: str, mode: int) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text('[defaults]\ntimezone = "Asia/Baku"\n\n' + channels + DEADLINE)
    config.chmod(mode)
    return run_notifier("check", "-c", str(config))


@pytest.mark.parametrize(("url", "shown"), [
    (f"mailtos://ops:{SECRET}@mail.example.org?to=ops@example.org", "mailtos://ops:****@"),
    (f"tgram://{BOT}/12345", "tgram://1...y/12345"),
    (f"json://ops:{SECRET}@127.0.0.1:9/hook", "json://ops:****@127.0.0.1:9/hook"),
    (f"json://127.0.0.1:9/hook?+X-Api-Key={SECRET}", "json://127.0.0.1:9/hook?"),
])
@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_a_file_others_can_read_names_its_first_url_with_a_credential(
        tmp_path: Path, url: str, shown: str, mode: int) -> None:
    # Lines 5 and 9: URLs without a credential; line 10 (element 1): the first with one.
    proc = exposed(tmp_path, '[channels.hook]\nurl = "json://localhost:8080/hook"\n\n'
                             '[channels.mail]\nurls = [\n  "ntfy://ntfy.sh/topic",\n'
                             f'  "{url}",\n]\n', mode)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert line.startswith(f"{tmp_path / 'config.toml'}:10:3: channels.mail.urls.1: warning: "), line
    assert shown in line
    assert f"mode {mode:04o}" in line
    # The README's advice: a credential, or 0640 with the service's group; never
    # a mode the service's dynamic user cannot read.
    assert "LoadCredential=" in line
    assert "0640" in line
    assert "600" not in line


@pytest.mark.parametrize("mode", [0o640, 0o600])
def test_a_file_others_cannot_read_gets_no_warning(tmp_path: Path, mode: int) -> None:
    proc = exposed(tmp_path, f'[channels.mail]\nurl = "json://ops:{SECRET}@127.0.0.1:9/"\n', mode)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("url", ["json://localhost:8080/hook", "ntfy://ntfy.sh/topic",
                                 "json://ops@localhost/x", "console://"])
def test_urls_without_a_credential_get_no_warning(tmp_path: Path, url: str) -> None:
    proc = exposed(tmp_path, f'[channels.hook]\nurl = "{url}"\n', 0o644)
    assert (proc.returncode, proc.stderr) == (0, "")


WITH_DIGEST = CONFIG.replace("[[deadlines]]", '[digest]\nschedule = "{schedule}"\n\n[[deadlines]]')
DIGEST_LINE = WITH_DIGEST.splitlines().index('schedule = "{schedule}"') + 1

# (name, variables, credential files, the digest's schedule in the file (None: no [digest]),
#  what `check` prints on stderr, exactly)
SAID: list[tuple[str, dict[str, str], dict[str, bytes], str | None, str]] = [
    ("a list's item by index", {"NOTIFIER_DEADLINES__0__TITLE": "X"}, {}, None,
     "NOTIFIER_DEADLINES__0__TITLE: deadlines is a list, which cannot be set an item at a"
     " time: set the whole list, in JSON, in NOTIFIER_DEADLINES\n"),
    ("a list's item by index, in a credential", {}, {"defaults__reminders__1": b"2d"}, None,
     f"{CREDS}defaults__reminders__1: defaults.reminders is a list, which cannot be set an"
     " item at a time: set the whole list, in JSON, in defaults__reminders\n"),
    ("a table made by a variable alone lacks a key", {"NOTIFIER_DIGEST__ALWAYS": "true"}, {},
     None, "NOTIFIER_DIGEST__ALWAYS: digest.schedule: missing: [digest] needs `schedule`\n"),
    ("a table made by variables alone, its own error too",
     {"NOTIFIER_DIGEST__ALWAYS": "maybe", "NOTIFIER_DIGEST__CHANNELS": '["console"]'}, {}, None,
     "NOTIFIER_DIGEST__ALWAYS, NOTIFIER_DIGEST__CHANNELS: digest.schedule: missing: [digest]"
     " needs `schedule`\nNOTIFIER_DIGEST__ALWAYS: must be true or false\n"),
    ("a channel made by a variable alone", {"NOTIFIER_CHANNELS__OPS__KINDS": '["due"]'}, {},
     None, "NOTIFIER_CHANNELS__OPS__KINDS: channels.ops: give exactly one of url or urls\n"),
    ("cron: 4 fields, the example whole", {"NOTIFIER_DIGEST__SCHEDULE": "0 8 * *"}, {},
     "0 8 * * 1-5", "NOTIFIER_DIGEST__SCHEDULE: need a 5-field cron expression (minute hour"
     " day month weekday), e.g. '0 8 * * 1-5'\n"),
    ("cron: minute out of range", {"NOTIFIER_DIGEST__SCHEDULE": "61 8 * * 1"}, {}, "0 8 * * 1",
     "NOTIFIER_DIGEST__SCHEDULE: minute field: must be 0-59\n"),
    ("cron: weekday out of range", {"NOTIFIER_DIGEST__SCHEDULE": "0 8 * * 8"}, {}, None,
     "NOTIFIER_DIGEST__SCHEDULE: weekday field: must be 0-7 (0 and 7 are Sunday) or sun-sat\n"),
    ("cron in the file: minute", {}, {}, "61 8 * * 1",
     f"{{config}}:{DIGEST_LINE}:12: digest.schedule: minute field: must be 0-59\n"),
    ("cron in the file: weekday", {}, {}, "0 8 * * 8",
     f"{{config}}:{DIGEST_LINE}:12: digest.schedule: weekday field: must be 0-7 (0 and 7 are"
     " Sunday) or sun-sat\n"),
    ("cron in the file: 4 fields", {}, {}, "0 8 * *",
     f"{{config}}:{DIGEST_LINE}:12: digest.schedule: need a 5-field cron expression (minute"
     " hour day month weekday), e.g. '0 8 * * 1-5'\n"),
    ("unknown key, none close", {"NOTIFIER_CHANNELS__CONSOLE__COLOUR": "red"}, {}, None,
     "NOTIFIER_CHANNELS__CONSOLE__COLOUR: unknown key: [channels.console] has url, urls,"
     " kinds\n"),
    ("unknown key, one close", {"NOTIFIER_CHANNELS__CONSOLE__KIND": '["due"]'}, {}, None,
     "NOTIFIER_CHANNELS__CONSOLE__KIND: unknown key; did you mean"
     " NOTIFIER_CHANNELS__CONSOLE__KINDS?\n"),
    ("unknown key in a credential", {}, {"defaults__timezon": b"UTC"}, None,
     f"{CREDS}defaults__timezon: unknown key; did you mean defaults__timezone?\n"),
    ("a built-in URL's words kept", {"NOTIFIER_CHANNELS__CONSOLE__URL": "jsonl://"}, {}, None,
     "NOTIFIER_CHANNELS__CONSOLE__URL: jsonl:// needs an absolute file path:"
     " jsonl:///var/lib/notifier/out.jsonl\n"),
    ("the example kept, a credential holding it", {"NOTIFIER_DEFAULTS__TIMEZONE": "Mars/X"},
     {"defaults__timezone": b"Asia/Baku"}, None,
     "NOTIFIER_DEFAULTS__TIMEZONE: unknown time zone (use an IANA name such as Asia/Baku)\n"),
    ("the value quoted: hidden, the words kept", {"NOTIFIER_DEFAULTS__CHANNELS": '["channels"]'},
     {}, None, "NOTIFIER_DEFAULTS__CHANNELS: defaults.channels.0: unknown channel ***"
     " (not in [channels])\n"),
]


@pytest.mark.parametrize(("name", "variables", "files", "schedule", "said"), SAID,
                         ids=[c[0] for c in SAID])
def test_check_says_it_at_the_variable_in_its_own_words(
    tmp_path: Path, name: str, variables: dict[str, str], files: dict[str, bytes],
    schedule: str | None, said: str,
) -> None:
    config, env = setup(tmp_path, variables, files)
    if schedule is not None:
        config.write_text(WITH_DIGEST.format(state=tmp_path / "n.db", schedule=schedule))
    proc = run_notifier("check", "-c", str(config), env=env)
    assert (proc.returncode, proc.stdout) == (78, ""), proc.stderr
    assert proc.stderr == said.replace(CREDS, f"{tmp_path / 'creds'}/").replace(
        "{config}", str(config))


INHERITING = """\
[notifier]
state = "{state}"

[defaults]
timezone = "Asia/Baku"

[channels.console]
url = "console://"

[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2027-01-01
"""
"""A deadline that takes its channels and reminders from [defaults]."""

# (name, variables, what `check` prints on stderr, exactly, its exit status): a value
# from a variable is said at the variable alone, never again at the file's line it
# reaches; what the value holds is hidden, what the product knows (a zone's name, a
# kind, a template's variable, a suggestion) or the file says (a deadline's id) is not.
AT_THE_VARIABLE: list[tuple[str, dict[str, str], str, int]] = [
    ("unknown default channel", {"NOTIFIER_DEFAULTS__CHANNELS": '["hunter2"]'},
     "NOTIFIER_DEFAULTS__CHANNELS: defaults.channels.0: unknown channel *** (not in"
     " [channels])\n", 78),
    ("default channel misspelt", {"NOTIFIER_DEFAULTS__CHANNELS": '["consle"]'},
     "NOTIFIER_DEFAULTS__CHANNELS: defaults.channels.0: unknown channel *** (not in"
     " [channels]; did you mean 'console'?)\n", 78),
    ("no default channel", {"NOTIFIER_DEFAULTS__CHANNELS": "[]"},
     "NOTIFIER_DEFAULTS__CHANNELS: no channel to send to\n", 78),
    ("a table for the list of deadlines", {"NOTIFIER_DEADLINES": '{"id": "b"}'},
     "NOTIFIER_DEADLINES: must be a list, in square brackets\n", 78),
    ("zone in the wrong case", {"NOTIFIER_DEFAULTS__TIMEZONE": "europe/berlin"},
     "NOTIFIER_DEFAULTS__TIMEZONE: unknown time zone; did you mean 'Europe/Berlin'?\n", 78),
    ("misspelt kind", {"NOTIFIER_CHANNELS":
     '{"console": {"url": "console://", "kinds": ["dues"]}}'},
     "NOTIFIER_CHANNELS: channels.console.kinds.0: must be one of 'reminder', 'rescheduled',"
     " 'due', 'overdue', 'completed', 'cancelled' or 'digest'; did you mean 'due'?\n", 78),
    ("reminders on one instant", {"NOTIFIER_DEFAULTS__REMINDERS": '["7d", "1w"]'},
     "NOTIFIER_DEFAULTS__REMINDERS: defaults.reminders.1: warning: reminders *** and *** land"
     " on the same instant before the due of 'kalbajar' (Fri 25 Dec 2026 09:00, Baku);"
     " it is sent once, as ***\n", 0),
    ("misspelt template variable", {"NOTIFIER_TEMPLATES__DUE__TITLE": "{{ deadline.titel }}"},
     "NOTIFIER_TEMPLATES__DUE__TITLE: unknown variable deadline.*** (did you mean"
     " deadline.title?)\n", 78),
]


@pytest.mark.parametrize(("name", "variables", "said", "status"), AT_THE_VARIABLE,
                         ids=[c[0] for c in AT_THE_VARIABLE])
def test_a_variables_value_is_said_at_it_alone(
    tmp_path: Path, name: str, variables: dict[str, str], said: str, status: int,
) -> None:
    config, env = setup(tmp_path, variables, {})
    config.write_text(INHERITING.format(state=tmp_path / "n.db"))
    proc = run_notifier("check", "-c", str(config), env=env)
    assert (proc.returncode, proc.stderr) == (status, said)


# (variable, its value, a part of the value a library's words quote)
QUOTED_BY_A_LIBRARY = [
    ("NOTIFIER_CHANNELS__CONSOLE__URL", "zqsecretscheme://x", "zqsecretscheme"),
    ("NOTIFIER_CHANNELS__CONSOLE__URL", "tgram://zqsecret", "tgram"),
    ("NOTIFIER_TEMPLATES__DUE__TITLE", "{{ zq_secret_name }}", "zq_secret_name"),
    ("NOTIFIER_TEMPLATES__DUE__TITLE", "{{ title | zqsecretfilter }}", "zqsecretfilter"),
]


@pytest.mark.parametrize(("variable", "value", "part"), QUOTED_BY_A_LIBRARY,
                         ids=[q[2] for q in QUOTED_BY_A_LIBRARY])
def test_no_part_of_the_value_in_a_librarys_words(
    tmp_path: Path, variable: str, value: str, part: str,
) -> None:
    """apprise and Jinja quote a URL's scheme, a template's name: unmarked, so any
    word of the value goes from their text."""
    config, env = setup(tmp_path, {variable: value}, {})
    proc = run_notifier("check", "-c", str(config), env=env)
    assert proc.returncode == 78, proc.stderr
    assert proc.stderr.startswith(f"{variable}: "), proc.stderr
    assert part not in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr

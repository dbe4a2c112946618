"""What a new operator reads from the commands, through the real CLI (issue 22, "Readable
output"): `check --strict`, terminal escapes, one shown form of a URL, empty results in
words, one --until rule, local times in a DST gap or fold, status's `next`, the digest's
title."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from support.configs import write_config
from support.env import clean_env
from support.ledger import alive_now, rows
from support.processes import daemon_process, run_notifier, wait_ready
from support.receivers import unused_port
from support.times import utc_now
from support.waits import wait_until

from notifier.delivery.ledger import Claim, open_ledger

ESC = "\x1b[31m"
SHOWN_ESC = "\\u001b[31m"


def config(tmp: Path, body: str, *, zone: str = "Europe/Berlin", mode: int = 0o600,
           urls: tuple[str, ...] = ("console://",)) -> Path:
    """tmp/config.toml: its ledger in tmp, one channel `out` with `urls`, then `body`."""
    return write_config(tmp / "config.toml", (
        f'[notifier]\nstate = "{tmp / "ledger.db"}"\n\n'
        f'[defaults]\ntimezone = "{zone}"\nreminders = []\n\n'
        f"[channels.out]\nurls = {json.dumps(list(urls))}\n\n{body}"), mode)


def deadline(ident: str, due: str, *, title: str = "Handover", extra: str = "") -> str:
    return (f'[[deadlines]]\nid = "{ident}"\ntitle = {json.dumps(title)}\ndue = {due}\n'
            f"{extra}\n")


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = run_notifier(*args, env=env)
    return done.returncode, done.stdout, done.stderr


# --------------------------------------------------------------------------- check --strict

GROUP_READABLE = "group-readable file holding a URL"
UNKNOWN_VARIABLE = "NOTIFIER_ variable that sets nothing"


@pytest.mark.parametrize("warning", [GROUP_READABLE, UNKNOWN_VARIABLE])
@pytest.mark.parametrize("strict", [False, True])
def test_check_strict_turns_warnings_into_errors_and_says_no_ok(
        tmp_path: Path, warning: str, strict: bool) -> None:
    readable = warning == GROUP_READABLE
    path = config(tmp_path, deadline("x", "2030-01-10T12:00:00Z"),
                  mode=0o644 if readable else 0o600,
                  urls=("json://ops:pw@127.0.0.1:9/",) if readable else ("console://",))
    env = clean_env() if readable else clean_env(NOTIFIER_DEFAULT__TIMEZONE="UTC")
    status, out, err = cli("check", "-c", str(path), *(["--strict"] if strict else []),
                           env=env)
    lines = err.splitlines()
    assert len(lines) == 1, err
    if strict:
        # A config that is not OK: its warnings are its errors, and nothing says "OK".
        assert (status, out) == (78, ""), (out, err)
        assert "warning" not in lines[0]
    else:
        assert status == 0, err
        assert ": OK: 1 deadline" in out
        assert ": warning: " in lines[0]


# --------------------------------------------------------------------------- terminal escapes


def test_every_table_and_check_show_a_terminal_escape_instead_of_sending_it(
        tmp_path: Path) -> None:
    due, moved = ((utc_now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
                  for days in (3, 10))
    path = config(tmp_path, deadline(
        "x", due, title=f"Red {ESC}ALERT",
        extra=f"note = {json.dumps('moved' + ESC)}\n\n[[deadlines.extensions]]\n"
              f"due = {moved}\nannounced = 2000-01-01T00:00:00Z\n"
              f"reason = {json.dumps('late ' + ESC + 'parts')}"))
    t = utc_now().replace(microsecond=0)
    with open_ledger(tmp_path / "ledger.db") as book:
        book.claim(Claim("x/due/y/", "out", deadline="x", kind="due", planned_at=t), now=t)
        book.mark_failed("x/due/y/", "out", now=t, error=f"refused {ESC}\x9b2J")
    outputs = {
        "check": cli("check", "-c", str(path)),
        "plan": cli("plan", "-c", str(path)),
        "status": cli("status", "-c", str(path)),
        "history": cli("history", "-c", str(path)),
    }
    for command, (status, out, err) in outputs.items():
        assert status == 0, (command, err)
        assert not {"\x1b", "\x9b"} & set(out), command
        assert SHOWN_ESC in out, (command, out)
    assert "\\u009b2J" in outputs["history"][1]


def test_an_error_line_shows_a_terminal_escape_instead_of_sending_it(tmp_path: Path) -> None:
    key = json.dumps(f"bad{ESC}key")
    path = config(tmp_path, deadline("x", "2030-01-10T12:00:00Z", extra=f"{key} = 1"))
    status, out, err = cli("check", "-c", str(path))
    assert (status, out) == (78, ""), err
    assert "\x1b" not in err
    assert f"deadlines.0.bad{SHOWN_ESC}key: unknown key" in err


# --------------------------------------------------------------------------- URLs shown


@pytest.fixture
def url_outputs(tmp_path: Path) -> tuple[dict[str, str], int]:
    """What send-test, the daemon's log and history show of one channel's URLs (a json://
    with a user of 4 letters, a mailtos:// with a recipient; both refused)."""
    port = unused_port()
    urls = ("console://", f"json://user:Pw-1234@127.0.0.1:{port}/hook",
            f"mailtos://ops:Pw-1234@127.0.0.1:{port}/?to=ops@example.org&from=notifier@example.org")
    due = (utc_now() + timedelta(seconds=3)).isoformat(timespec="seconds")
    body = deadline("x", due, extra='announced = 2000-01-01T00:00:00Z')
    path = config(tmp_path, body, urls=urls)
    _, sent, _ = cli("send-test", "-c", str(path), "out")
    alive_now(tmp_path / "ledger.db")  # a start slower than the due still sends it
    with daemon_process(tmp_path, path.read_text("utf-8")) as (daemon, _):
        wait_ready(daemon)
        wait_until(lambda: any(r.last_error for r in rows(tmp_path / "ledger.db")), 30,
                   "the failed delivery in the ledger")
    log = daemon.text()
    _, history, _ = cli("history", "-c", str(tmp_path / "config.toml"), "--json")
    return {"send-test": sent, "daemon log": log, "history": history}, port


@pytest.mark.parametrize("where", ["send-test", "daemon log", "history"])
def test_a_url_is_shown_one_way_everywhere(url_outputs: tuple[dict[str, str], int],
                                           where: str) -> None:
    outputs, port = url_outputs
    text = outputs[where]
    if where == "history":
        text = " ".join(item["last_error"] or "" for item in json.loads(text))
    # apprise's privacy form: the password masked, the user and the recipient shown...
    assert f"json://user:****@127.0.0.1:{port}/hook" in text, text
    assert f"mailtos://ops:****@127.0.0.1:{port}/ops%40example.org" in text, text
    # ...without the parameters that only repeat their defaults.
    for default in ("overflow=", "retry=0", "optional=no", "rto=", "method=POST"):
        assert default not in text, (default, text)
    assert "Pw-1234" not in text


def test_the_daemon_counts_its_deadlines_in_words(url_outputs: tuple[dict[str, str], int],
                                                  ) -> None:
    assert " ready: 1 deadline, " in url_outputs[0]["daemon log"]


# --------------------------------------------------------------------------- nothing to show

EMPTY = "[[deadlines]]\nid = \"x\"\ntitle = \"Handover\"\ndue = 2030-01-10T12:00:00Z\n"


@pytest.mark.parametrize(("body", "args", "words"), [
    ("", ["status"], "no deadlines in the config"),
    (EMPTY, ["status", "--state", "completed"], "no deadline in that state or with that tag"),
    (EMPTY, ["history"], "the ledger has no deliveries yet"),
    (EMPTY, ["history", "--deadline", "x"], "the ledger has no deliveries of x yet"),
    (EMPTY, ["plan", "--from", "2031-01-01"], "nothing planned in that interval"),
])
def test_nothing_to_show_is_said_in_words(tmp_path: Path, body: str, args: list[str],
                                          words: str) -> None:
    path = config(tmp_path, body)
    status, out, err = cli(*args, "-c", str(path))
    assert (status, out) == (0, words + "\n"), err


# --------------------------------------------------------------------------- command-line times


@pytest.mark.parametrize("args", [
    ["plan", "--from", "2030-01-02", "--until", "2030-01-01"],
    ["plan", "--from", "2030-01-02", "--until", "2030-01-02"],
    ["replay", "--from", "2030-01-02", "--until", "2030-01-01T23:00"],
    ["replay", "--from", "2030-01-02", "--until", "2030-01-02"],
])
def test_until_not_after_from_is_one_message(tmp_path: Path, args: list[str]) -> None:
    status, out, err = cli(*args, "-c", str(config(tmp_path, EMPTY)))
    assert (status, out, err) == (2, "", "Error: --until must be after --from\n")


@pytest.mark.parametrize(("args", "flag", "problem"), [
    (["status", "--at", "2027-03-28T02:30"], "--at",
     "2027-03-28T02:30:00 does not exist in Europe/Berlin (clocks skip it); "
     "write 2027-03-28T02:30:00+01:00 or 2027-03-28T02:30:00+02:00"),
    (["status", "--at", "2027-10-31T02:30"], "--at",
     "2027-10-31T02:30:00 is ambiguous in Europe/Berlin (clocks repeat it); "
     "write 2027-10-31T02:30:00+02:00 (first) or 2027-10-31T02:30:00+01:00 (second)"),
    (["plan", "--from", "2027-03-28T02:00"], "--from", "2027-03-28T02:00:00 does not exist"),
    (["plan", "--from", "2027-10-30", "--until", "2027-10-31T02:59:59"], "--until",
     "2027-10-31T02:59:59 is ambiguous"),
    (["replay", "--from", "2027-03-28T02:15"], "--from", "2027-03-28T02:15:00 does not exist"),
])
def test_a_local_time_clocks_skip_or_repeat_is_refused_as_in_the_config(
        tmp_path: Path, args: list[str], flag: str, problem: str) -> None:
    status, out, err = cli(*args, "-c", str(config(tmp_path, EMPTY)))
    assert (status, out) == (2, ""), err
    assert err.startswith(f"Error: {flag}: {problem}"), err
    assert len(err.splitlines()) == 1


def test_a_time_with_its_offset_in_a_fold_is_taken(tmp_path: Path) -> None:
    path = config(tmp_path, EMPTY)
    for at in ("2027-10-31T02:30+02:00", "2027-10-31T02:30+01:00", "2027-10-31"):
        status, _, err = cli("status", "-c", str(path), "--at", at, "--json")
        assert status == 0, err


def test_a_date_whose_midnight_clocks_skip_starts_when_the_day_does(tmp_path: Path) -> None:
    """`--at 2026-09-06` in Santiago, whose clocks go from 23:59:59 to 01:00 that night: the
    operator wrote a day, not a time, and the day starts at 01:00 (as in the config)."""
    path = config(tmp_path, deadline("x", "2026-09-10T12:00:00Z"), zone="America/Santiago")
    status, out, err = cli("status", "-c", str(path), "--at", "2026-09-06", "--json")
    assert status == 0, err
    (item,) = json.loads(out)
    # 01:00 -03:00 is 04:00Z: time left to the due is counted from there.
    assert item["time_left_seconds"] == (4 * 24 + 8) * 3600, item


# --------------------------------------------------------------------------- JSON and digest


def test_status_next_is_the_plan_item(tmp_path: Path) -> None:
    path = config(tmp_path, deadline("x", "2030-01-10T12:00:00Z", title="TLS certificate",
                                     extra='reminders = ["1d"]'))
    status, out, err = cli("status", "-c", str(path), "--at", "2030-01-05", "--json")
    assert status == 0, err
    nxt = json.loads(out)[0]["next"]
    status, out, err = cli("plan", "-c", str(path), "--from", "2030-01-05", "--json")
    assert status == 0, err
    assert nxt == json.loads(out)[0]
    assert nxt["title"].startswith("TLS certificate: due in 1 day")


DIGEST = '[digest]\nschedule = "0 8 * * *"\nalways = true\n\n'


@pytest.mark.parametrize(("dues", "title"), [
    ([], "notifier digest: no open deadlines"),
    (["2030-01-20"], "notifier digest: 1 open deadline"),
    (["2029-12-20"], "notifier digest: 1 open deadline, 1 overdue"),
    (["2029-12-20", "2030-01-20", "2030-01-21", "2030-01-22", "2030-01-23", "2030-01-24"],
     "notifier digest: 6 open deadlines, 1 overdue"),
    (["2029-12-20", "2029-12-21", "2030-01-20"], "notifier digest: 3 open deadlines, 2 overdue"),
])
def test_the_digest_title_counts_the_overdue_ones(tmp_path: Path, dues: list[str],
                                                  title: str) -> None:
    body = DIGEST + "".join(deadline(f"d{i}", due, extra="announced = 2029-01-01T00:00:00Z")
                            for i, due in enumerate(dues))
    path = config(tmp_path, body)
    status, out, err = cli("plan", "-c", str(path), "--from", "2030-01-01T12:00",
                           "--until", "2030-01-02T12:00", "--json")
    assert status == 0, err
    assert [i["title"] for i in json.loads(out) if i["kind"] == "digest"] == [title]


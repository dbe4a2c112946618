"""`notifier replay`: the real daemon path on a virtual clock, on the example config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.jsonl import read_jsonl
from support.ledger import rows
from support.processes import notifier_cmd, run_notifier
from support.receivers import HttpReceiver, SmtpReceiver, dead_url
from support.times import D, H

from notifier.cli import main
from notifier.delivery.ledger import DeliveryState, open_ledger

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


def test_replay_prints_the_2020_handover() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "notifier", "replay", "-c", str(ROOT / "config.example.toml"),
         "--from", "2020-11-08", "--until", "2020-12-03", "--speed", "100000"],
        capture_output=True, text=True, check=False, timeout=110,
    )
    elapsed = time.monotonic() - started
    print(f"\nreplay of 25 days at 100000x took {elapsed:.1f} s")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    timeline = [line for line in out if " -> console: " in line]
    kinds = [line.split()[5] for line in timeline]
    assert kinds.count("due") == 3
    assert kinds.count("rescheduled") == 1
    assert kinds.count("reminder") == 12
    # Each delivery once: replay's line, the message's body indented under it.
    assert all(line.startswith(("replay ", "    ")) or line in timeline for line in out), out
    # The header in the messages' date style, the speed as people write numbers.
    assert out[0] == ("replay Sun 8 Nov 2020 00:00 -> Thu 3 Dec 2020 00:00 (Asia/Baku), "
                      "100,000 times real speed"), out[0]
    rescheduled = out.index(next(line for line in timeline if " rescheduled " in line))
    assert out[rescheduled].startswith("Sun 15 Nov 18:54, Baku  rescheduled -> console: ")
    assert "Kalbajar handover: extended by 10 days, from 15 Nov to 25 Nov" in out[rescheduled]
    assert out[rescheduled + 1].startswith("    extended on 15 Nov from 15 Nov to 25 Nov")
    assert "damaged roads" in out[rescheduled + 1]
    # The old due's reminders stop at the extension; the new due's start after it.
    kalbajar = [line for line in timeline if "Kalbajar" in line]
    assert [line[:10] for line in kalbajar] == [
        "Thu 12 Nov", "Sat 14 Nov", "Sun 15 Nov", "Sun 15 Nov",
        "Sun 22 Nov", "Tue 24 Nov", "Wed 25 Nov", "Thu 26 Nov"]
    assert "replay done: 19 delivered, 0 failed" in proc.stdout
    assert "late by" not in proc.stdout
    assert elapsed < 60


# -- what a replay sends to, and what it only shows (SPEC 5, issue 22) -------

START = datetime(2021, 3, 1, tzinfo=UTC)
PASSWORD = "Kalbajar-s3cret"


@pytest.fixture
def mail_receiver() -> Iterator[SmtpReceiver]:
    """An SMTP server that takes the URL's user and password."""
    with SmtpReceiver(accept_auth=True) as receiver:
        yield receiver


def real_channels_config(tmp: Path, hook: HttpReceiver, mail: SmtpReceiver) -> Path:
    """A jsonl:// channel, a json:// webhook and an email, all with two deliveries
    (a reminder and the due) of one deadline; the webhook's and the email's URLs hold
    a password."""
    return write_config(tmp / "config.toml", config_toml(
        state=tmp / "never-created.db", log_level="DEBUG",
        channels={"file": f"jsonl://{tmp / 'out.jsonl'}",
                  "hook": hook.url_with_auth("ops", PASSWORD),
                  "mail": mail.url(user="ops", password=PASSWORD)},
        deadlines=deadline_toml("d01", START + H, announced=START - H, reminders=["30m"])))


def replay_of(config: Path, ledger: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_notifier("replay", "-c", str(config), "--from", START.isoformat(),
                        "--until", (START + 2 * H).isoformat(), "--speed", "100000",
                        "--ledger", str(ledger), *flags, timeout=110)


def delivery_lines(stdout: str, channel: str) -> list[str]:
    return [line for line in stdout.splitlines() if f" -> {channel}: " in line]


def test_replay_shows_but_never_sends_to_channels_that_are_not_local(
        tmp_path: Path, http_receiver: HttpReceiver, mail_receiver: SmtpReceiver) -> None:
    config = real_channels_config(tmp_path, http_receiver, mail_receiver)
    done = replay_of(config, tmp_path / "replay.db")
    assert done.returncode == 0, done.stderr
    # The process has ended: whatever it sent has arrived.
    assert http_receiver.requests == []
    assert mail_receiver.messages == []
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 2  # local: sent
    keys = [rec.key for rec in rows(tmp_path / "replay.db") if rec.channel == "file"]
    assert len(keys) == 2
    for channel, url in (("hook", f"json://ops:****@127.0.0.1:{http_receiver.port}/"),
                         ("mail", "mailto://ops:****@127.0.0.1")):
        lines = delivery_lines(done.stdout, channel)
        # One line per delivery, naming the URL in privacy form and the key.
        assert len(lines) == 2, done.stdout
        for line in lines:
            assert "Handover d01" in line
            assert f"[not sent to {url}" in line, line
        assert sorted(line.rsplit("; key ", 1)[1] for line in lines) == sorted(
            f"{key}]" for key in keys), lines
    for line in delivery_lines(done.stdout, "file"):
        assert "not sent" not in line
    assert "replay done: 6 delivered, 0 failed (4 of them shown, not sent" in done.stdout
    # The daemon's path ran for them too: claimed and marked sent in the ledger.
    states = Counter((rec.channel, rec.state) for rec in rows(tmp_path / "replay.db"))
    assert states == {(c, DeliveryState.SENT): 2 for c in ("file", "hook", "mail")}
    assert "--send-real" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_replay_with_send_real_sends_to_every_channel_and_says_so(
        tmp_path: Path, http_receiver: HttpReceiver, mail_receiver: SmtpReceiver) -> None:
    config = real_channels_config(tmp_path, http_receiver, mail_receiver)
    done = replay_of(config, tmp_path / "replay.db", "--send-real")
    assert done.returncode == 0, done.stderr
    assert len(http_receiver.requests) == 2
    assert len(mail_receiver.messages) == 2
    notices = [line for line in done.stderr.splitlines() if "--send-real" in line]
    assert notices == ["replay: --send-real: sending past events to every channel URL for "
                       "real, not only console:// and jsonl://"], done.stderr
    for channel in ("file", "hook", "mail"):
        lines = delivery_lines(done.stdout, channel)
        assert len(lines) == 2, done.stdout
        assert not any("not sent" in line for line in lines)
    assert "replay done: 6 delivered, 0 failed\n" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_replay_help_names_the_flag_that_sends_for_real() -> None:
    result = CliRunner().invoke(main, ["replay", "--help"])
    assert result.exit_code == 0, result.output
    assert "--send-real" in result.output
    assert "Only console:// and jsonl:// URLs are sent to" in result.output


def test_offsets_that_land_together_are_planned_and_sent_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(f"""\
[notifier]
state = "{tmp_path / 'state.db'}"

[defaults]
timezone = "UTC"

[channels.out]
url = "jsonl://{out}"

[[deadlines]]
id = "week"
title = "Week"
due = 2021-01-10T12:00:00Z
reminders = ["7d", "1w", "168h"]

[[deadlines]]
id = "sum"
title = "Sum"
due = 2021-01-10T12:00:00Z
reminders = ["1d12h", "36h"]
""")
    config.chmod(0o600)
    span = ["--from", "2021-01-01", "--until", "2021-01-11"]
    planned = subprocess.run(
        [sys.executable, "-m", "notifier", "plan", "-c", str(config), *span, "--json"],
        capture_output=True, text=True, check=False, timeout=60)
    assert planned.returncode == 0, planned.stderr
    items = json.loads(planned.stdout)
    reminders = sorted((i["deadline"], i["offset"], i["key"]) for i in items
                       if i["kind"] == "reminder")
    assert reminders == [("sum", "1d12h", "sum/reminder/2021-01-10T12:00:00Z/1d12h"),
                         ("week", "7d", "week/reminder/2021-01-10T12:00:00Z/7d")]
    replayed = subprocess.run(
        [sys.executable, "-m", "notifier", "replay", "-c", str(config), *span,
         "--speed", "1000000"], capture_output=True, text=True, check=False, timeout=110)
    assert replayed.returncode == 0, replayed.stderr
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((m["deadline"], m["kind"]) for m in sent) == [
        ("sum", "due"), ("sum", "reminder"), ("week", "due"), ("week", "reminder")]
    assert sorted(m["key"] for m in sent if m["kind"] == "reminder") == [
        r[2] for r in reminders]


def test_history_says_since_when_the_notifier_was_down_as_messages_write_it(
        tmp_path: Path) -> None:
    """A replay on a ledger last alive at 00:10:30 UTC, its virtual clock more than a day
    past the reminder and the due it missed (--epoch a second ago at 100000x): both are
    skipped, and `history` gives the reason in the default zone (issue 22; it was
    "notifier was down since 2021-03-01 00:10 UTC")."""
    ledger = tmp_path / "replay.db"
    config = write_config(tmp_path / "config.toml", config_toml(
        state=ledger, zone="Asia/Baku", channels={"file": f"jsonl://{tmp_path / 'out.jsonl'}"},
        deadlines=deadline_toml("d01", START + H, announced=START - H, reminders=["30m"])))
    book = open_ledger(ledger)
    book.touch_alive(START + timedelta(minutes=10, seconds=30))
    book.close()
    done = run_notifier("replay", "-c", str(config), "--from", START.isoformat(),
                        "--until", (START + 5 * D).isoformat(), "--speed", "100000",
                        "--epoch", f"{time.time() - 1:.6f}", "--ledger", str(ledger),
                        timeout=110)
    assert done.returncode == 0, done.stderr
    shown = run_notifier("history", "-c", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    skipped = {(i["kind"], i["last_error"]) for i in json.loads(shown.stdout)
               if i["state"] == "skipped"}
    reason = "notifier was down since Mon 1 Mar 04:10:30, Baku"
    assert skipped == {("reminder", reason), ("due", reason)}, shown.stdout
    env = {**clean_env(), "COLUMNS": "200"}
    table = run_notifier("history", "-c", str(config), env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count(reason) == 2, table.stdout


# -- each delivery once, a console:// body under its line (issue 22) ----------

def console_config(tmp: Path, hook: HttpReceiver) -> Path:
    """A console:// channel, and a channel with console:// and a webhook (a stand-in
    in a replay), both taking a reminder and the due of a deadline whose notes span
    two lines and hold an escape sequence."""
    return write_config(tmp / "config.toml", config_toml(
        state=tmp / "never-created.db",
        channels={"console": "console://", "both": ["console://", hook.url]},
        deadlines=deadline_toml("d01", START + H, announced=START - H, reminders=["30m"],
                                extra='notes = "first note\\nsecond\\u001b[31m note"')))


def test_replay_shows_each_delivery_once_with_its_console_body_under_it(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    config = console_config(tmp_path, http_receiver)
    done = replay_of(config, tmp_path / "replay.db")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    keys = sorted({rec.key for rec in rows(tmp_path / "replay.db")})
    assert len(keys) == 2
    for key in keys:
        kind = key.split("/")[1]
        for channel in ("console", "both"):
            # Replay's line once, and no other line of the message's (the console
            # plugin's own "[kind] title" line is gone).
            at = [i for i, line in enumerate(out) if f" {kind} " in line.split("->")[0]
                  and f"-> {channel}: Handover d01" in line]
            assert len(at) == 1, done.stdout
            line = out[at[0]]
            assert line.startswith("Mon 1 Mar 0"), line  # the messages' date style
            assert ("[not sent to json://" in line) == (channel == "both"), line
            if channel == "both":
                assert line.endswith(f"; key {key}]"), line
            # The body, line by line, indented under its delivery's line.
            body = []
            for following in out[at[0] + 1:]:
                if not following.startswith("    "):
                    break
                body.append(following)
            assert "    Notes: first note" in body, done.stdout
            assert "    second\\u001b[31m note" in body, done.stdout
    assert not [line for line in out if line.startswith(("[reminder]", "[due]"))], done.stdout
    assert sum(line == "    Notes: first note" for line in out) == 4, done.stdout
    assert "\\n" not in done.stdout
    assert "\x1b" not in done.stdout
    assert "replay done: 4 delivered, 0 failed (2 of them shown, not sent" in done.stdout


def test_replay_to_the_journal_shows_one_line_per_delivery(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    config = console_config(tmp_path, http_receiver)
    out = tmp_path / "stdout.txt"
    with out.open("w") as stdout:
        st = os.fstat(stdout.fileno())
        done = subprocess.run(
            notifier_cmd("replay", "-c", str(config), "--from", START.isoformat(),
                         "--until", (START + 2 * H).isoformat(), "--speed", "100000"),
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=110, check=False,
            env=clean_env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
    assert done.returncode == 0, done.stderr
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == 6, lines  # the header, 4 deliveries, the summary
    assert sum(" -> console: Handover d01" in line for line in lines) == 2, lines
    assert sum(" -> both: Handover d01" in line for line in lines) == 2, lines
    assert not any(line.startswith((" ", "[")) for line in lines), lines


def test_replay_prints_what_console_took_for_a_delivery_that_never_completed(
        tmp_path: Path) -> None:
    # console:// takes each message; the channel's other URL refuses every send, so
    # no delivery completes before the replay ends: console:// output is not lost.
    config = write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "never-created.db", channels={"both": ["console://", dead_url()]},
        deadlines=deadline_toml("d01", START + H, announced=START - H, reminders=["30m"],
                                extra='notes = "first note\\nsecond note"')))
    done = replay_of(config, tmp_path / "replay.db", "--send-real")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert " -> both: " not in done.stdout
    for kind in ("reminder", "due"):
        (at,) = [i for i, line in enumerate(out) if line.startswith(f"[{kind}] Handover d01")]
        assert out[at + 2: at + 4] == ["    Notes: first note", "    second note"], out
    assert sum(line == "    Notes: first note" for line in out) == 2, out
    assert "replay done: 0 delivered, 0 failed, 2 still retrying at --until" in done.stdout, out

"""`notifier send-test CHANNEL` against real receivers, and `notifier history`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from support.configs import config_toml, deadline_toml, write_config
from support.receivers import HttpReceiver, SmtpReceiver, dead_url
from support.times import utc_now

from notifier.cli import main
from notifier.delivery.ledger import Claim, Skip, open_ledger


def config_with(tmp: Path, channels: dict[str, str | list[str]], **delivery: str) -> Path:
    return write_config(tmp / "config.toml", config_toml(
        state=tmp / "ledger.db", channels=channels,
        deadlines=deadline_toml("kalbajar", utc_now() + timedelta(days=3),
                                channels=[next(iter(channels))]),
        delivery=delivery or None, zone="Asia/Baku"))


def cli(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# --------------------------------------------------------------------------- send-test


def test_send_test_reports_ok_per_url(tmp_path: Path, http_receiver: HttpReceiver,
                                      smtp_receiver: SmtpReceiver) -> None:
    cfg = config_with(tmp_path, {"ops": [http_receiver.url, smtp_receiver.url()]})
    result = cli("send-test", "ops", "-c", str(cfg))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"ok     json://127.0.0.1:{http_receiver.port}/")
    assert lines[1].startswith(f"ok     mailto://127.0.0.1:{smtp_receiver.port}/")
    (body,) = http_receiver.bodies
    assert "test message" in body["title"]
    assert "ops" in body["title"] + body["message"]
    assert smtp_receiver.wait_for(1)
    assert "test message" in smtp_receiver.messages[0].subject
    # A test message is not a delivery: the ledger is not touched.
    assert not (tmp_path / "ledger.db").exists()



def test_send_test_renders_the_test_template(tmp_path: Path) -> None:
    # README: `[templates.test]` overrides the test message; the built-in body stays.
    out = tmp_path / "out.jsonl"
    cfg = config_with(tmp_path, {"ops": f"jsonl://{out}"})
    with cfg.open("a") as f:
        f.write('\n[templates.test]\ntitle = "drill for {{ channel }} at {{ now_text }}"\n')
    before = datetime.now(UTC)
    result = cli("send-test", "ops", "-c", str(cfg))
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    (line,) = out.read_text().splitlines()
    record = json.loads(line)
    assert record["kind"] == "test"
    assert record["body"].startswith('This is a test message from notifier for channel "ops"')
    # Its time as messages write it, in the default zone (issue 22; was "2026-12-02 09:00:05+00:00").
    said = {_as_messages_write(before + timedelta(seconds=s))
            for s in range(int((after - before).total_seconds()) + 2)}
    title_time = record["title"].removeprefix("drill for ops at ")
    assert title_time in said, (record["title"], said)
    assert f"sent {title_time}.\n" in record["body"], record["body"]


def _as_messages_write(t: datetime) -> str:
    """"Wed 2 Dec 13:05:07, Baku", the second left out when it is 0."""
    local = t.replace(microsecond=0).astimezone(ZoneInfo("Asia/Baku"))
    seconds = f":{local.second:02d}" if local.second else ""
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}{seconds}, Baku"

def test_send_test_against_a_dead_url_says_which_and_why_and_exits_1(tmp_path: Path) -> None:
    url = dead_url()
    port = url.split(":")[2].rstrip("/")
    cfg = config_with(tmp_path, {"ops": url})
    # The real entry point, as an operator runs it.
    done = subprocess.run([sys.executable, "-m", "notifier", "send-test", "ops", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"FAILED json://127.0.0.1:{port}/")
    assert "Connection error" in line  # what failed
    assert "Connection refused" in line  # why: nothing listens there
    assert "Traceback" not in done.stdout + done.stderr


def test_send_test_with_one_good_and_one_dead_url(tmp_path: Path,
                                                  http_receiver: HttpReceiver) -> None:
    cfg = config_with(tmp_path, {"ops": [dead_url(), http_receiver.url]})
    result = cli("send-test", "ops", "-c", str(cfg))
    assert result.exit_code == 1
    first, second = result.output.splitlines()
    assert first.startswith("FAILED json://127.0.0.1:")
    assert second.startswith(f"ok     json://127.0.0.1:{http_receiver.port}/")
    assert len(http_receiver.requests) == 1


def test_send_test_to_a_hanging_url_gives_up_within_the_timeout(tmp_path: Path,
                                                                http_receiver: HttpReceiver) -> None:
    http_receiver.hang()
    cfg = config_with(tmp_path, {"ops": http_receiver.url}, timeout="1s")
    began = time.monotonic()
    result = cli("send-test", "ops", "-c", str(cfg))
    took = time.monotonic() - began
    http_receiver.release()
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert "no answer within 1 s" in result.output
    assert took < 5, took


def test_send_test_to_an_http_error_reports_the_status(tmp_path: Path,
                                                       http_receiver: HttpReceiver) -> None:
    http_receiver.set_status(404)
    cfg = config_with(tmp_path, {"ops": http_receiver.url})
    result = cli("send-test", "ops", "-c", str(cfg))
    assert result.exit_code == 1
    assert "error=404" in result.output


SMTP_PASSWORD = "Canary-smtp-pw-4411"
"""A password planted in mailto:// URLs; it must never appear in what send-test prints."""


@pytest.mark.parametrize(("server", "url", "reason"), [
    pytest.param({}, {}, "SMTP AUTH extension not supported by server", id="no-auth-offered"),
    pytest.param({"reject_auth": True}, {}, "535 5.7.8 Authentication credentials invalid",
                 id="credentials-rejected"),
    pytest.param({"accept_auth": True, "refuse": frozenset({"gone@example.com"})},
                 {"to": "gone@example.com"},
                 "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
                 id="recipient-rejected"),
])
def test_send_test_on_smtp_gives_the_servers_reason_without_the_password(
        tmp_path: Path, server: dict[str, Any], url: dict[str, str], reason: str) -> None:
    with SmtpReceiver(**server) as smtp:
        cfg = config_with(tmp_path, {"mail": smtp.url(user="ops", password=SMTP_PASSWORD,
                                                      **url)})
        done = subprocess.run(
            [sys.executable, "-m", "notifier", "send-test", "mail", "-c", str(cfg)],
            capture_output=True, text=True, timeout=60, check=False)
        assert smtp.messages == []
    assert done.returncode == 1, done
    (line,) = done.stdout.splitlines()
    assert line.startswith("FAILED mailto://ops:")
    assert reason in line, line
    assert SMTP_PASSWORD not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_send_test_unknown_channel_is_a_usage_error(tmp_path: Path,
                                                    http_receiver: HttpReceiver) -> None:
    cfg = config_with(tmp_path, {"ops": http_receiver.url, "pager": http_receiver.url})
    result = cli("send-test", "nosuch", "-c", str(cfg))
    assert result.exit_code == 2
    assert "'nosuch'" in result.output
    assert "ops, pager" in result.output
    assert http_receiver.requests == []


# --------------------------------------------------------------------------- history


def test_history_without_a_ledger_is_empty(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, {"ops": "console://"})
    result = cli("history", "-c", str(cfg), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_history_shows_the_ledger_newest_first(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, {"ops": "console://"})
    t = utc_now().replace(microsecond=0)
    with open_ledger(tmp_path / "ledger.db") as book:
        book.claim(Claim("kalbajar/due/x/", "ops", deadline="kalbajar", kind="due", planned_at=t),
                   now=t)
        book.mark_sent("kalbajar/due/x/", "ops", now=t + timedelta(seconds=1))
        book.claim(Claim("aghdam/due/y/", "ops", deadline="aghdam", kind="due", planned_at=t),
                   now=t)
        book.mark_failed("aghdam/due/y/", "ops", now=t + timedelta(seconds=2),
                         error="channel 'ops': 1 of 1 URL failed: error=500.")
        book.mark_skipped(Skip("lachin/reminder/z/1d", "ops", deadline="lachin", kind="reminder",
                               planned_at=t), now=t + timedelta(seconds=3),
                          reason="notifier was down")
    result = cli("history", "-c", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [(i["deadline"], i["state"], i["attempts"]) for i in items] == [
        ("lachin", "skipped", 0), ("aghdam", "failed", 1), ("kalbajar", "sent", 1)]
    assert items[1]["last_error"].endswith("error=500.")
    assert items[2]["updated_at"].endswith("Z")
    only = json.loads(cli("history", "-c", str(cfg), "--json", "--deadline", "aghdam").output)
    assert [i["key"] for i in only] == ["aghdam/due/y/"]
    assert len(json.loads(cli("history", "-c", str(cfg), "--json", "--limit", "2").output)) == 2
    table = cli("history", "-c", str(cfg))
    assert table.exit_code == 0
    for word in ("sent", "failed", "skipped", "kalbajar", "aghdam", "lachin"):
        assert word in table.output


def test_history_table_writes_dates_as_messages_do(tmp_path: Path) -> None:
    # In the default zone (named in the title), the year only when it is not this year's,
    # seconds only where there are some (issue 22).
    cfg = config_with(tmp_path, {"ops": "console://"})
    t = datetime(2020, 11, 15, 14, 54, 7, tzinfo=UTC)
    with open_ledger(tmp_path / "ledger.db") as book:
        book.claim(Claim("kalbajar/rescheduled/x/", "ops", deadline="kalbajar",
                         kind="rescheduled", planned_at=t), now=t)
        book.mark_sent("kalbajar/rescheduled/x/", "ops", now=t)
    table = cli("history", "-c", str(cfg))
    assert table.exit_code == 0, table.output
    assert "history (Asia/Baku)" in table.output
    assert "Sun 15 Nov 2020 18:54:07" in table.output


def test_history_of_no_such_deadline_says_so(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, {"ops": "console://"})
    t = utc_now().replace(microsecond=0)
    with open_ledger(tmp_path / "ledger.db") as book:
        book.claim(Claim("aghdam/due/y/", "ops", deadline="aghdam", kind="due", planned_at=t),
                   now=t)
    # In the config only, in the ledger only (removed from the config since): its rows.
    for known, rows in (("kalbajar", 0), ("aghdam", 1)):
        result = cli("history", "-c", str(cfg), "--json", "--deadline", known)
        assert (result.exit_code, len(json.loads(result.output))) == (0, rows), result.output
    for as_json in ((), ("--json",)):
        result = CliRunner().invoke(
            main, ["history", "-c", str(cfg), "--deadline", "nosuch", *as_json])
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert result.stderr == \
            "no such deadline: 'nosuch' is neither in the config nor in the ledger\n"


def test_send_test_writes_a_plugins_reason_without_its_control_characters(tmp_path: Path) -> None:
    """A third-party plugin's reason (here an exception with an ANSI colour) cannot
    recolour the operator's terminal: it is written out, as tables and logs do."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "notifier_colour_plugin.py").write_text(textwrap.dedent(
        """
        from apprise.decorators import notify

        @notify(on="nfcolour")
        def deliver(body, title, notify_type, *args, **kwargs):
            raise RuntimeError("relay \\x1b[31mquota\\x1b[0m exceeded")
        """), "utf-8")
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [notifier]
        plugin_paths = [{json.dumps(str(plugins))}]
        [defaults]
        timezone = "UTC"
        [channels.odd]
        url = "nfcolour://"
        [[deadlines]]
        id = "x"
        title = "X"
        due = 2030-01-01
        """), "utf-8")
    proc = subprocess.run([sys.executable, "-m", "notifier", "send-test", "-c", str(config),
                           "odd"], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stdout
    assert "relay \\u001b[31mquota\\u001b[0m exceeded" in proc.stdout, proc.stdout

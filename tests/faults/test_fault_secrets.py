"""Fault 9: canary secrets never leak, whatever goes wrong, at log level DEBUG.

Canary passwords and tokens are planted every way an operator can give them:
in the TOML file (a json:// password, a Telegram bot token, a key in a
webhook's path and an ntfy topic that is its own key), in
NOTIFIER_CHANNELS__ENVCH__URL, and in a credential file
$CREDENTIALS_DIRECTORY/channels__credch__url. The real daemon (`notifier
run`, DEBUG) then goes through the faults of this tier with them: deliveries
that succeed, fail (HTTP 500), are refused (connection refused), are
refused for good (401, given up), hang past the timeout, fail name
resolution (Telegram); a reload to a file with a syntax error on the
secret's line and one with an invalid URL holding the secret; a SIGKILL and
a restart that recovers; SIGTERM. Around it every command runs: check
(valid and broken files), plan, status, history, send-test per channel.

Every byte a user can see is searched for each canary, raw and in the forms
it travels in (URL-encoded, base64 user:password): all logs, all command
output, the ledger with its -wal and -shm (while running and after), and
every file the daemon wrote. Zero hits. Also: a config file readable by
others that holds a secret gets a warning (from check and run);
the ledger (and its directory, -wal, -shm) and the jsonl output are created
private even under umask 000.

Then the final failures: each channel failing its own way (500, refused,
401) with no retries, the error text each leaves in the ledger, `history`
and `send-test`; and a secret in a custom HTTP header, which `send-test` and
the channel's error text leave out too.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from support.configs import config_toml, deadline_toml, toml_str, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl
from support.ledger import alive_now, rows
from support.processes import Proc, run_notifier, wait_ready
from support.receivers import HttpReceiver
from support.times import H, S, utc_now
from support.waits import wait_until

from notifier.cli import main
from notifier.delivery.channels import ChannelSender
from notifier.delivery.ledger import DeliveryState, open_ledger
from notifier.delivery.outcomes import OutgoingMessage
from notifier.errors import ChannelDeliveryError
from notifier.schedule.model import Channel

pytestmark = pytest.mark.timeout(150)

TOML_SECRET = "CanaryTomlPw-81f3a9"
TOKEN_SECRET = "AAHcanaryBotToken-4d7e29b1c0ffee42abc"
ENV_SECRET = "CanaryEnvPw-2b6c4e"
CRED_SECRET = "CanaryCredPw-9d1e7f"
# A key in a webhook's path (Slack-style) and an ntfy topic that is its own password:
# apprise's privacy form shows both in clear.
HOOK_SECRET = "XcanaryHookKey5e8d2a7b9c"
TOPIC_SECRET = "CanaryTopic_3b9f6a1d0e"
SECRETS = (TOML_SECRET, TOKEN_SECRET, ENV_SECRET, CRED_SECRET, HOOK_SECRET, TOPIC_SECRET)
BOT = f"123456789:{TOKEN_SECRET}"


def forms(secret: str) -> set[bytes]:
    texts = {secret, quote(secret, safe=""), quote_plus(secret),
             base64.b64encode(f"ops:{secret}".encode()).decode()}
    return {t.encode() for t in texts}


def leaks(data: bytes) -> list[str]:
    return [s for s in SECRETS if any(f in data for f in forms(s))]


def config_text(tmp: Path, *, toml_url: str, dues: str, delivery: str, extra: str = "") -> str:
    return f"""\
[notifier]
state = {toml_str(str(tmp / "state" / "sub" / "ledger.db"))}
log_level = "DEBUG"

[defaults]
timezone = "UTC"
reminders = []

[delivery]
timeout = "2s"
{delivery}

[channels.toml]
url = {toml_str(toml_url)}

[channels.envch]
url = "json://127.0.0.1:9/"

[channels.credch]
url = "json://127.0.0.1:9/"

[channels.tgram]
url = {toml_str(f"tgram://{BOT}/12345")}

[channels.file]
url = {toml_str(f"jsonl://{tmp / 'out' / 'out.jsonl'}")}

[channels.hook]
url = "json://127.0.0.1:9/services/T0AAAAAAA/B0BBBBBBB/{HOOK_SECRET}"

[channels.topic]
url = "ntfy://127.0.0.1:9/{TOPIC_SECRET}"
{extra}
{dues}"""


def test_canaries_never_leak(tmp_path: Path,
                             record_property: Callable[[str, object], None]) -> None:
    outputs: dict[str, bytes] = {}
    (tmp_path / "out").mkdir()
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    with HttpReceiver() as toml_rx, HttpReceiver() as env_rx, HttpReceiver() as cred_rx:
        (creds / "channels__credch__url").write_text(cred_rx.url_with_auth("ops", CRED_SECRET))
        env = clean_env(NOTIFIER_CHANNELS__ENVCH__URL=env_rx.url_with_auth("ops", ENV_SECRET),
                        CREDENTIALS_DIRECTORY=str(creds))
        toml_url = toml_rx.url_with_auth("ops", TOML_SECRET)
        start = utc_now() + 5 * S
        names = ["toml", "envch", "credch", "tgram", "file", "hook", "topic"]

        def dues(*items: tuple[str, float]) -> str:
            return "".join(deadline_toml(k, start + t * S, channels=names) for k, t in items)

        first = dues(("ok", 0.0), ("failing", 2.0))
        config = tmp_path / "config.toml"
        # Readable by others while holding secrets: a warning, not an error.
        write_config(config, config_text(tmp_path, toml_url=toml_url, dues=first,
                                         delivery='give_up_after = "1h"'), mode=0o644)
        checked = run_notifier("check", "-c", str(config), env=env)
        outputs["check (0644)"] = (checked.stdout + checked.stderr).encode()
        assert checked.returncode == 0, checked.stderr
        assert "holds a secret and this file is readable by others" in checked.stderr
        config.chmod(0o600)

        log = tmp_path / "daemon.log"
        old_umask = os.umask(0)  # the daemon must make its files private by itself
        try:
            proc = Proc(["run", "-c", str(config)], log, env).start()
        finally:
            os.umask(old_umask)
        try:
            wait_ready(proc)
            for rx in (toml_rx, env_rx, cred_rx):
                assert rx.wait_for(1, timeout=20), proc.text()[-2000:]
            # Now each channel fails its own way for "failing".
            toml_rx.set_status(500)
            env_rx.refuse()
            cred_rx.set_status(401)
            db = tmp_path / "state" / "sub" / "ledger.db"

            def states() -> dict[tuple[str, str], DeliveryState]:
                with open_ledger(db, readonly=True) as book:
                    return {(r.deadline or "", r.channel): r.state for r in book.history()}
            wait_until(lambda: sum(s == DeliveryState.RETRYING for (d, _), s in states().items()
                                   if d == "failing") >= 4, 20, "the failures")
            # A reload to a file with a syntax error on the secret's line...
            good = config.read_text()
            broken = good.replace(f'url = {toml_str(toml_url)}',
                                  f'url = {toml_str(toml_url)} trailing "{TOML_SECRET}"')
            assert broken != good
            mark = proc.size()
            write_config(config, broken)
            proc.signal(signal.SIGHUP)
            wait_until(lambda: "reload rejected: keeping" in proc.text(mark), 10,
                       "the rejected reload")
            # ...one with an invalid URL holding it...
            mark = proc.size()
            write_config(config, good.replace(toml_url, f"jsn://ops:{TOML_SECRET}@127.0.0.1/"))
            proc.signal(signal.SIGHUP)
            wait_until(lambda: "reload rejected: keeping" in proc.text(mark), 10,
                       "the rejected URL")
            # ...and a valid one that gives up at once and hangs one channel.
            toml_rx.ok()
            toml_rx.hang()
            held = len(toml_rx.requests)
            later = dues(("ok", 0.0), ("failing", 2.0), ("given-up", 9.0), ("hung", 10.0))
            write_config(config, config_text(tmp_path, toml_url=toml_url, dues=later,
                                             delivery='give_up_after = "0s"'))
            proc.signal(signal.SIGHUP)
            wait_until(lambda: len(toml_rx.requests) > held, 20, "a send to hang")
            outputs["ledger while running"] = b"".join(
                p.read_bytes() for p in sorted(db.parent.glob("ledger.db*")))
            assert Path(f"{db}-wal").exists()
            # SIGKILL while that send hangs, and a restart that recovers it.
            proc.signal(signal.SIGKILL)
            proc.wait(10)
            toml_rx.ok()
            mark = proc.size()
            proc.start()
            wait_ready(proc, after=mark)
            wait_until(lambda: "in flight at a crash" in proc.text(mark), 30, "the recovery")
        finally:
            toml_rx.release()
            status = proc.stop()
        assert status == 0, proc.text()[-3000:]
        for rx, secret in ((toml_rx, TOML_SECRET), (env_rx, ENV_SECRET), (cred_rx, CRED_SECRET)):
            auth = rx.requests[0].headers["Authorization"]  # the canary was really used
            assert base64.b64decode(auth.split()[1]).decode() == f"ops:{secret}"

        # Every command, on the final file.
        commands = [["check"], ["plan", "--json"], ["status"], ["status", "--json"],
                    ["history"], ["history", "--json"], ["history", "--deadline", "failing"],
                    *(["send-test", n] for n in names)]
        for args in commands:
            done = run_notifier(*args, "-c", str(config), env=env)
            outputs[" ".join(args)] = (done.stdout + done.stderr).encode()
        # A broken file at start: the secret sits in an unknown key and a bad URL.
        bad = tmp_path / "bad.toml"
        write_config(bad, config_text(tmp_path, toml_url=f"jsn://ops:{TOML_SECRET}@h/",
                                      dues="", delivery="",
                                      extra=f'[channels.odd]\nurl = "console://"\n'
                                            f'token = "{TOML_SECRET}"\n'))
        for args in (["check"], ["run"]):
            done = run_notifier(*args, "-c", str(bad), env=env)
            assert done.returncode == 78, done
            outputs[f"{args[0]} (broken file)"] = (done.stdout + done.stderr).encode()

    db = tmp_path / "state" / "sub" / "ledger.db"
    outputs["daemon log"] = log.read_bytes()
    for p in sorted(tmp_path.rglob("*")):
        if p.is_file() and p.parent != creds and p.name not in ("config.toml", "bad.toml"):
            outputs[f"file {p.relative_to(tmp_path)}"] = p.read_bytes()
    daemon_log = outputs["daemon log"].decode()
    assert " DEBUG " in daemon_log
    assert "readable by others" not in daemon_log  # 0600 by the time it ran
    for needle in ("error=500", "error=401", "gave up on given-up", "reload rejected",
                   "in flight at a crash"):
        assert needle in daemon_log, needle
    assert b"tgram://" in outputs["send-test tgram"]  # in privacy form
    found = {where: leaks(data) for where, data in outputs.items() if leaks(data)}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.glob("ledger.db*")}
    modes["state/sub/"] = stat.S_IMODE(db.parent.stat().st_mode)
    modes["out.jsonl"] = stat.S_IMODE((tmp_path / "out" / "out.jsonl").stat().st_mode)
    report("secrets", {
        "canaries": len(SECRETS), "outputs_searched": len(outputs),
        "bytes_searched": sum(len(v) for v in outputs.values()), "hits": len(found),
        "modes": {k: oct(v) for k, v in modes.items()},
        "deliveries": len(read_jsonl(tmp_path / "out" / "out.jsonl")),
    }, record_property)
    assert not found, found
    assert modes["ledger.db"] == 0o600
    assert all(v == 0o600 for k, v in modes.items() if k.startswith("ledger.db")), modes
    assert modes["state/sub/"] == 0o700
    assert modes["out.jsonl"] == 0o600


def ledger_bytes(db: Path) -> bytes:
    """The ledger file and its -wal/-shm companions, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def test_final_failures_leave_no_secret_in_their_error_text(tmp_path: Path) -> None:
    with HttpReceiver() as toml_rx, HttpReceiver() as env_rx, HttpReceiver() as cred_rx:
        db = tmp_path / "ledger.db"
        creds = tmp_path / "credentials"
        creds.mkdir(mode=0o700)
        (creds / "channels__credch__url").write_text(
            cred_rx.url_with_auth("ops", CRED_SECRET) + "\n", "utf-8")
        env = clean_env(NOTIFIER_CHANNELS__ENVCH__URL=env_rx.url_with_auth("ops", ENV_SECRET),
                        CREDENTIALS_DIRECTORY=str(creds))
        alive_now(db)  # a start slower than 2.5 s still sends (late) what fell due
        start = utc_now() + 2.5 * S
        names = ["toml", "envch", "credch"]
        cfg = write_config(tmp_path / "config.toml", config_toml(
            state=db, log_level="DEBUG",
            channels={
                "toml": toml_rx.url_with_auth("ops", TOML_SECRET),
                # Placeholders: the environment and the credential file override them.
                "envch": "json://127.0.0.1:9/",
                "credch": "json://127.0.0.1:9/",
            },
            deadlines=(deadline_toml("kalbajar", start, channels=names)
                       + deadline_toml("aghdam", start + 1.5 * S, channels=names)),
            # No retries: every failure is final at once, so the test sees
            # both the retry path's and the give-up path's error text quickly.
            delivery={"give_up_after": "0s"}, zone="Asia/Baku"))
        proc = Proc(["run", "-c", str(cfg)], tmp_path / "daemon.log", env).start()
        try:
            # The first deadline goes through all three channels...
            for rx in (toml_rx, env_rx, cred_rx):
                assert rx.wait_for(1, timeout=20), proc.text()
            # ...then each channel fails its own way for the second one.
            toml_rx.set_status(500)
            env_rx.refuse()
            cred_rx.set_status(401)
            wait_until(lambda: sum(r.state == DeliveryState.FAILED for r in rows(db)) == 3, 20,
                       "three failed deliveries in the ledger")
            while_running = ledger_bytes(db)
            assert (tmp_path / "ledger.db-wal").exists()  # the WAL was searched too
        finally:
            status = proc.stop(timeout=30)
        assert status == 0

        # The secrets were really in use: each receiver saw its own in Basic auth.
        for rx, secret in ((toml_rx, TOML_SECRET), (env_rx, ENV_SECRET), (cred_rx, CRED_SECRET)):
            auth = rx.requests[0].headers["Authorization"]
            assert base64.b64decode(auth.split()[1]).decode() == f"ops:{secret}"

        failed = {r.channel: r.last_error or "" for r in rows(db) if r.state == "failed"}
        assert set(failed) == set(names)
        assert "500" in failed["toml"]
        assert "401" in failed["credch"]
        assert failed["envch"]

        outputs: dict[str, bytes] = {
            "daemon log": proc.log.read_bytes(),
            "ledger (running)": while_running,
            "ledger (stopped)": ledger_bytes(db),
            "last_error": "\n".join(failed.values()).encode(),
        }
        for args in (["history"], ["history", "--json"], ["status", "--json"], ["check"],
                     ["send-test", "toml"], ["send-test", "envch"], ["send-test", "credch"]):
            done = run_notifier(*args, "-c", str(cfg), env=env)
            outputs[" ".join(args)] = (done.stdout + done.stderr).encode()
            if args == ["history", "--json"]:
                history = json.loads(done.stdout)
            if args[0] == "send-test":
                assert done.returncode == 1, done  # every channel fails by now
        # send-test reports each failing URL and why, in the privacy form.
        assert b"FAILED json://ops:****@" in outputs["send-test toml"]
        assert b"error=500" in outputs["send-test toml"]

        daemon_log = outputs["daemon log"].decode()
        assert " DEBUG " in daemon_log  # the level really was DEBUG
        assert "gave up on aghdam" in daemon_log
        assert "error=500" in daemon_log
        assert "error=401" in daemon_log
        found = {where: leaks(data) for where, data in outputs.items() if leaks(data)}
        assert not found, found
        assert {item["state"] for item in history} == {"sent", "failed"}


HEADER_SECRET = "HdrPlantedKey-2718"


def test_a_secret_in_a_custom_header_is_not_shown_either(tmp_path: Path,
                                                         http_receiver: HttpReceiver) -> None:
    url = f"{http_receiver.url}?+X-Api-Key={HEADER_SECRET}"
    http_receiver.set_status(500)
    cfg = write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "ledger.db", channels={"hook": url},
        deadlines=deadline_toml("kalbajar", utc_now() + 1 * H), zone="Asia/Baku"))
    result = CliRunner().invoke(main, ["send-test", "hook", "-c", str(cfg)])
    assert result.exit_code == 1
    assert http_receiver.requests[0].headers["X-Api-Key"] == HEADER_SECRET  # really used
    now = utc_now()
    msg = OutgoingMessage(key="k", kind="due", deadline="kalbajar", title="t", body="b",
                          due=now, planned_at=now)
    with pytest.raises(ChannelDeliveryError) as caught:
        ChannelSender(Channel("hook", (url,)), timeout=5).send(msg)
    error_text = str(caught.value)  # what the dispatcher stores as last_error
    assert HEADER_SECRET not in result.output
    assert HEADER_SECRET not in error_text

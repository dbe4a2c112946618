"""Planted secrets never leak: not in DEBUG logs, history, error text or the ledger file.

Three channel passwords are planted the three ways an operator can give them:
in the TOML file (a json:// URL), in NOTIFIER_CHANNELS__ENVCH__URL, and in a
credential file $CREDENTIALS_DIRECTORY/channels__credch__url (systemd
LoadCredential=). The real daemon (`python -m notifier run`, log level DEBUG)
delivers through each of them to real HTTP receivers, which then fail in three
ways (HTTP 500, connection refused, HTTP 401) so error text is produced,
logged, and stored. Everything a user can see is then searched for the
secrets, and the receivers prove the secrets were really in use.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.ledger import rows
from support.receivers import HttpReceiver
from support.times import utc_now
from support.waits import wait_until

from notifier.cli import main
from notifier.delivery.channels import ChannelSender
from notifier.delivery.ledger import DeliveryState
from notifier.delivery.outcomes import OutgoingMessage
from notifier.errors import ChannelDeliveryError
from notifier.schedule.model import Channel

TOML_SECRET = "T0mlPlantedPw-417"
ENV_SECRET = "EnvPlantedPw-5309"
CRED_SECRET = "CredPlantedPw-8675"
SECRETS = (TOML_SECRET, ENV_SECRET, CRED_SECRET)


def leaks(text: str | bytes) -> list[str]:
    """The planted secrets found in `text`, raw or in the forms they travel in."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    found = []
    for secret in SECRETS:
        forms = {secret, base64.b64encode(f"ops:{secret}".encode()).decode()}
        if any(form.encode() in data for form in forms):
            found.append(secret)
    return found


def notifier(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "notifier", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def ledger_bytes(db: Path) -> bytes:
    """The ledger file and its -wal/-shm companions, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


@pytest.mark.timeout(120)
def test_planted_secrets_never_appear(tmp_path: Path) -> None:
    with HttpReceiver() as toml_rx, HttpReceiver() as env_rx, HttpReceiver() as cred_rx:
        db = tmp_path / "ledger.db"
        creds = tmp_path / "credentials"
        creds.mkdir(mode=0o700)
        (creds / "channels__credch__url").write_text(
            cred_rx.url_with_auth("ops", CRED_SECRET) + "\n", "utf-8")
        env = clean_env() | {
            "NOTIFIER_CHANNELS__ENVCH__URL": env_rx.url_with_auth("ops", ENV_SECRET),
            "CREDENTIALS_DIRECTORY": str(creds),
        }
        start = utc_now() + timedelta(seconds=2.5)
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
                       + deadline_toml("aghdam", start + timedelta(seconds=1.5), channels=names)),
            # No retries: every failure is final at once, so the test sees
            # both the retry path's and the give-up path's error text quickly.
            delivery={"give_up_after": "0s"}, zone="Asia/Baku"))
        log = tmp_path / "daemon.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "notifier", "run", "-c", str(cfg)],
                                    stdout=sink, stderr=sink, env=env)
            try:
                # The first deadline goes through all three channels...
                for rx in (toml_rx, env_rx, cred_rx):
                    assert rx.wait_for(1, timeout=20), log.read_text()
                # ...then each channel fails its own way for the second one.
                toml_rx.set_status(500)
                env_rx.refuse()
                cred_rx.set_status(401)
                wait_until(lambda: sum(r.state == DeliveryState.FAILED for r in rows(db)) == 3, 20,
                           "three failed deliveries in the ledger")
                while_running = ledger_bytes(db)
                assert (tmp_path / "ledger.db-wal").exists()  # the WAL was searched too
            finally:
                proc.send_signal(signal.SIGTERM)
                status = proc.wait(30)
        assert status == 0

        # The secrets were really in use: each receiver saw its own in Basic auth.
        for rx, secret in ((toml_rx, TOML_SECRET), (env_rx, ENV_SECRET), (cred_rx, CRED_SECRET)):
            auth = rx.requests[0].headers["Authorization"]
            assert base64.b64decode(auth.split()[1]).decode() == f"ops:{secret}"

        records = rows(db)
        failed = {r.channel: r.last_error or "" for r in records if r.state == "failed"}
        assert set(failed) == set(names)
        assert "500" in failed["toml"]
        assert "401" in failed["credch"]
        assert failed["envch"]

        outputs: dict[str, str | bytes] = {
            "daemon log": log.read_text("utf-8"),
            "ledger (running)": while_running,
            "ledger (stopped)": ledger_bytes(db),
            "last_error": "\n".join(failed.values()),
        }
        for args in (["history"], ["history", "--json"], ["status", "--json"], ["check"],
                     ["send-test", "toml"], ["send-test", "envch"], ["send-test", "credch"]):
            done = notifier(*args, "-c", str(cfg), env=env)
            outputs[" ".join(args)] = done.stdout + done.stderr
            if args == ["history", "--json"]:
                history = json.loads(done.stdout)
            if args[0] == "send-test":
                assert done.returncode == 1, done  # every channel fails by now
        # send-test reports each failing URL and why, in the privacy form.
        assert "FAILED json://ops:****@" in str(outputs["send-test toml"])
        assert "error=500" in str(outputs["send-test toml"])

        daemon_log = str(outputs["daemon log"])
        assert " DEBUG " in daemon_log  # the level really was DEBUG
        assert "gave up on aghdam" in daemon_log
        assert "error=500" in daemon_log
        assert "error=401" in daemon_log
        for where in ("send-test toml", "send-test envch", "send-test credch"):
            print(f"\n{where}: {outputs[where]!s}".rstrip())
        print(f"\nsearched {len(outputs)} outputs "
              f"({sum(len(v) for v in outputs.values())} bytes) for {len(SECRETS)} secrets")
        found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
        assert not found, found
        assert {item["state"] for item in history} == {"sent", "failed"}


HEADER_SECRET = "HdrPlantedKey-2718"


def test_a_secret_in_a_custom_header_is_not_shown_either(tmp_path: Path,
                                                         http_receiver: HttpReceiver) -> None:
    url = f"{http_receiver.url}?+X-Api-Key={HEADER_SECRET}"
    http_receiver.set_status(500)
    cfg = write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "ledger.db", channels={"hook": url},
        deadlines=deadline_toml("kalbajar", utc_now() + timedelta(hours=1)),
        zone="Asia/Baku"))
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

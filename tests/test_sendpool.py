"""Send helpers: real child processes delivering to a real HTTP receiver.

What an operator would notice: a message sent through a helper arrives and
is reported exactly as one sent by the daemon itself; a helper that dies
costs a retry, not a message; helpers never outlive the daemon; and a
SIGTERM to the whole service (systemd signals every process of the unit)
lets the send in flight finish.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.configs import deadline_toml, jsonl_config, write_config
from support.ledger import rows
from support.processes import NotifySocket, Proc, daemon_setup
from support.receivers import HttpReceiver, dead_url
from support.times import utc_now
from support.waits import wait_until

from notifier.delivery.channels import ChannelSender
from notifier.delivery.ledger import DeliveryState
from notifier.delivery.outcomes import OutgoingMessage, UrlResult
from notifier.delivery.sendpool import SendPool
from notifier.errors import ChannelDeliveryError
from notifier.schedule import model


@pytest.fixture
def pool() -> Iterator[SendPool]:
    p = SendPool(1, respawn_gap=0.2)
    p.start()
    try:
        wait_until(lambda: len(p.pids()) == 1, 20, "the helper to say it is ready")
        yield p
    finally:
        p.close()


def message(key: str) -> OutgoingMessage:
    now = utc_now()
    return OutgoingMessage(key=key, kind="due", deadline="kalbajar",
                           title="Kalbajar: handover due now", body="Due 25 Nov 2020.",
                           due=now, planned_at=now)


def outcome(sender: ChannelSender, key: str) -> tuple[UrlResult, ...]:
    try:
        return tuple(sender.send(message(key)))
    except ChannelDeliveryError as e:
        return e.results


def test_a_helper_delivers_and_reports_as_the_daemon_itself(
        pool: SendPool, http_receiver: HttpReceiver) -> None:
    channel = model.Channel(name="hook", urls=(http_receiver.url,))
    here = ChannelSender(channel, timeout=10)
    there = ChannelSender(channel, timeout=10, offload=pool)
    assert there.offloads
    assert not here.offloads
    for setup in (http_receiver.ok, lambda: http_receiver.set_status(404),
                  lambda: http_receiver.set_status(503)):
        setup()
        before = len(http_receiver.requests)
        ours, theirs = outcome(here, "a"), outcome(there, "b")
        assert ours == theirs
        sent = http_receiver.requests[before:]
        assert len(sent) == 2
        assert sent[0].json == sent[1].json
        assert sent[0].json["title"] == "Kalbajar: handover due now"
    assert outcome(here, "c")[0].permanent is False  # 503
    http_receiver.set_status(404)
    assert outcome(there, "d")[0].permanent is True
    refused = model.Channel(name="gone", urls=(dead_url(),))
    assert outcome(ChannelSender(refused, timeout=10), "e") == \
        outcome(ChannelSender(refused, timeout=10, offload=pool), "f")


def test_a_killed_helper_costs_a_retry_not_a_message(
        pool: SendPool, http_receiver: HttpReceiver) -> None:
    sender = ChannelSender(model.Channel(name="hook", urls=(http_receiver.url,)),
                           timeout=20, offload=pool)
    http_receiver.hang()
    (helper,) = pool.pids()
    failed: list[BaseException] = []

    def send() -> None:
        try:
            sender.send(message("k1"))
        except ChannelDeliveryError as e:
            failed.append(e)

    t = threading.Thread(target=send)
    started = time.monotonic()
    t.start()
    assert http_receiver.wait_for(1, timeout=10)
    os.kill(helper, signal.SIGKILL)
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - started < 10
    (error,) = failed
    assert isinstance(error, ChannelDeliveryError)
    assert not error.permanent
    assert "send helper" in str(error)
    assert str(helper) in str(error)
    http_receiver.release()
    http_receiver.ok()
    # Meanwhile the daemon sends itself; then a new helper takes over.
    assert sender.send(message("k2"))[0].ok
    wait_until(lambda: pool.pids() not in ([], [helper]), 20, "a new helper")
    assert sender.send(message("k3"))[0].ok
    titles = [r.json["title"] for r in http_receiver.requests]
    assert len(titles) == 3


@pytest.mark.parametrize("command", [["/nonexistent/python"], [sys.executable, "-c", "pass"]],
                         ids=["cannot-start", "exits-at-once"])
def test_without_a_helper_the_daemon_sends_itself(
        command: list[str], http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="notifier.sendpool")
    pool = SendPool(2, command=command, respawn_gap=0.05)
    pool.start()
    try:
        sender = ChannelSender(model.Channel(name="hook", urls=(http_receiver.url,)),
                               timeout=10, offload=pool)
        for i in range(5):
            assert sender.send(message(f"k{i}"))[0].ok
            time.sleep(0.05)
        assert len(http_receiver.requests) == 5
        assert pool.pids() == []
    finally:
        pool.close()
    if command[-1] == "pass":  # it started, then ended without saying it was ready
        said = [r.getMessage() for r in caplog.records if r.name == "notifier.sendpool"]
        assert said, "nothing said of the helper that ended"
        assert all(m.endswith("before it was ready; sending in the daemon") for m in said), said


def helper_pids(daemon: int) -> set[int]:
    """The daemon's children that are send helpers and still running (not zombies)."""
    found: set[int] = set()
    for task in Path(f"/proc/{daemon}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return {p for p in found if alive(p) and b"notifier.delivery.sendhelper"
            in Path(f"/proc/{p}/cmdline").read_bytes()}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def hook_config(tmp: Path, deadlines: str, url: str, helpers: int = 0) -> str:
    """The jsonl config plus a channel "hook" to `url`, with `helpers` send helpers."""
    return jsonl_config(tmp, deadlines, more_channels={"hook": url},
                        delivery={"helpers": helpers} if helpers else None)


def send_soon(tmp: Path, daemon: int, deadlines: str, url: str, helpers: int = 0) -> None:
    """Add a deadline due in 2 s to the running daemon's config, by a reload."""
    soon = deadline_toml("d2", utc_now().replace(microsecond=0) + timedelta(seconds=2),
                         channels=["hook"])
    write_config(tmp / "config.toml", hook_config(tmp, deadlines + soon, url, helpers))
    os.kill(daemon, signal.SIGHUP)


def start_daemon(tmp: Path, text: str) -> tuple[Proc, NotifySocket]:
    config, notify, env = daemon_setup(tmp, text)
    return Proc(["run", "-c", str(config)], tmp / "daemon.log", env, new_session=True).start(), \
        notify


def test_by_default_the_daemon_sends_without_helpers(tmp_path: Path,
                                                     http_receiver: HttpReceiver) -> None:
    later = deadline_toml("d1", utc_now() + timedelta(days=1), channels=["hook"])
    proc, notify = start_daemon(tmp_path, hook_config(tmp_path, later, http_receiver.url))
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        # Helpers would start right after READY=1, before this send.
        send_soon(tmp_path, proc.pid, later, http_receiver.url)
        assert http_receiver.wait_for(1, timeout=20)
        assert helper_pids(proc.pid) == set()
    finally:
        proc.signal(signal.SIGKILL)
        proc.wait(10)
        notify.close()


def test_helpers_do_not_outlive_a_killed_daemon(tmp_path: Path,
                                                http_receiver: HttpReceiver) -> None:
    due = utc_now() + timedelta(days=1)
    text = hook_config(tmp_path, deadline_toml("d1", due), http_receiver.url, helpers=2)
    proc, notify = start_daemon(tmp_path, text)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        wait_until(lambda: len(helper_pids(proc.pid)) == 2, 20, "two helpers")
        helpers = helper_pids(proc.pid)
        proc.signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: not any(alive(p) for p in helpers), 10, "the helpers to exit")
    finally:
        if proc.alive():
            proc.signal(signal.SIGKILL)
        notify.close()


def test_sigterm_to_the_whole_service_lets_the_send_in_flight_finish(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    later = deadline_toml("d1", utc_now() + timedelta(days=1), channels=["hook"])
    http_receiver.hang()
    proc, notify = start_daemon(tmp_path, hook_config(tmp_path, later, http_receiver.url,
                                                      helpers=2))
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        # Only a helper that is ready takes sends (and ignores SIGTERM): the
        # deadline comes with a reload once both are.
        log = tmp_path / "daemon.log"
        wait_until(lambda: log.read_text().count("send helper ready") == 2, 30,
                   "two helpers ready")
        send_soon(tmp_path, proc.pid, later, http_receiver.url, helpers=2)
        assert http_receiver.wait_for(1, timeout=20)
        assert len(helper_pids(proc.pid)) == 2
        helpers = helper_pids(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)  # what systemd does to the unit's processes
        # The daemon has handled it, so every helper has had it too.
        notify.wait_for(lambda m: "STOPPING=1" in m)
        assert all(alive(p) for p in helpers)  # still sending
        http_receiver.release()
        assert proc.wait(20) == 0
        wait_until(lambda: not any(alive(p) for p in helpers), 10, "the helpers to exit")
    finally:
        if proc.alive():
            proc.signal(signal.SIGKILL)
        notify.close()
    (record,) = [r for r in rows(tmp_path / "state.db") if r.channel == "hook"]
    assert record.state == DeliveryState.SENT, record
    assert len(http_receiver.requests) == 1


@pytest.mark.parametrize("args", [[], ["x"], ["99"], ["0"], ["3", "4"]],
                         ids=["none", "not-a-number", "closed", "not-a-socket", "two"])
def test_a_helper_started_by_hand_says_how_in_one_line(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "notifier.delivery.sendhelper", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("notifier.delivery.sendhelper: ")
    assert "usage: python -m notifier.delivery.sendhelper FD" in line

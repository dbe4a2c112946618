"""One daemon owns a SQLite ledger at a time (SPEC 3): a second refuses to start.

Real `notifier run` subprocesses with a NOTIFY_SOCKET on one real ledger;
read-only commands and `replay` beside them. In-process, the lock itself.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from support.configs import deadline_toml, jsonl_config, write_config
from support.jsonl import read_jsonl
from support.processes import Proc, daemon_process, run_notifier
from support.times import utc_now
from support.waits import wait_until

from notifier.delivery.ledger import open_ledger
from notifier.errors import LedgerError

pytestmark = pytest.mark.timeout(120)

EX_LEDGER = 74


def second_daemon(first: Proc, name: str) -> tuple[int, str]:
    """Another `notifier run` on the first's config and environment; its exit status
    and output."""
    second = Proc(first.args, first.log.with_name(f"{name}.log"), first.env).start()
    try:
        status = second.wait(timeout=30)
    finally:
        second.stop()
    return status, second.text()


def test_second_daemon_refuses_naming_the_first_which_keeps_delivering(tmp_path: Path) -> None:
    ledger, config = tmp_path / "state.db", tmp_path / "config.toml"
    later = utc_now() + timedelta(hours=1)
    with daemon_process(tmp_path, jsonl_config(tmp_path, deadline_toml("later", later))) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        status, output = second_daemon(d, "second")
        assert status == EX_LEDGER, output
        assert output.splitlines() == [
            f"ledger {ledger}: in use by pid {d.pid} on host {socket.gethostname()}; "
            "one daemon owns a ledger at a time"
        ]
        # Read-only commands never take the lock: they work beside the daemon.
        for command in ("status", "plan", "history"):
            result = run_notifier(command, "-c", str(config), env=d.env)
            assert result.returncode == 0, (command, result.stderr)
        # The first still owns the ledger and delivers: a deadline added now is sent.
        soon = utc_now().replace(microsecond=0) + timedelta(seconds=10)  # after the reload, even on a loaded machine
        count = len(sd.texts())
        write_config(config, jsonl_config(tmp_path, deadline_toml("later", later)
                                          + deadline_toml("soon", soon)))
        d.signal(signal.SIGHUP)
        sd.wait_for(lambda m: "READY=1" in m, after=count)
        out = tmp_path / "out.jsonl"
        wait_until(lambda: len(read_jsonl(out)) >= 1, timeout=40, what="the new deadline")
        assert d.alive()
    assert [r["deadline"] for r in read_jsonl(out)] == ["soon"]
    assert (ledger.with_name("state.db.lock").stat().st_mode & 0o777) == 0o600


def test_sigkilled_owner_leaves_no_stale_lock(tmp_path: Path) -> None:
    later = utc_now() + timedelta(hours=1)
    with daemon_process(tmp_path, jsonl_config(tmp_path, deadline_toml("later", later))) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        d.signal(signal.SIGKILL)
        d.wait()
        count = len(sd.texts())
        d.start()  # the same ledger, its lock file as the killed owner left it
        sd.wait_for(lambda m: "READY=1" in m, after=count)
        # The new daemon owns the ledger now: a third is refused, naming it.
        status, output = second_daemon(d, "third")
        assert status == EX_LEDGER, output
        assert f"in use by pid {d.pid} " in output


def test_replay_never_takes_the_daemons_lock_nor_writes_its_ledger(tmp_path: Path) -> None:
    later = utc_now() + timedelta(hours=1)
    ledger, config = tmp_path / "state.db", tmp_path / "config.toml"
    replay = ("replay", "-c", str(config), "--from", "2020-11-01", "--until", "2020-11-02",
              "--speed", "1e7")
    with daemon_process(tmp_path, jsonl_config(tmp_path, deadline_toml("later", later))) as (d, sd):
        sd.wait_for(lambda m: "READY=1" in m)
        # Its own temporary ledger: it runs beside the daemon.
        result = run_notifier(*replay, env=d.env)
        assert result.returncode == 0, result.stderr
        assert "replay done" in result.stdout
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
    # Pointed at the daemon's ledger (stopped or not): refused, the ledger untouched.
    before = {p.name: p.read_bytes() for p in tmp_path.glob("state.db*")}
    result = run_notifier(*replay, "--ledger", str(ledger), env=d.env)
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        f"Error: --ledger {ledger}: `notifier run` has used this ledger; a replay keeps "
        "its virtual deliveries in a ledger of its own"
    ]
    assert {p.name: p.read_bytes() for p in tmp_path.glob("state.db*")} == before


def test_the_lock_is_held_until_close_and_only_by_owners(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "ledger.db"
    old = os.umask(0o077)
    try:
        first = open_ledger(path, owner=True)
    finally:
        os.umask(old)
    with pytest.raises(LedgerError, match=rf"^ledger {path}: in use by pid {os.getpid()} "):
        open_ledger(path, owner=True)
    # Readers and other writers take no part in it.
    open_ledger(path, readonly=True).close()
    open_ledger(path).close()
    first.close()
    assert path.with_name("ledger.db.lock").read_text() == ""
    with open_ledger(path, owner=True):
        pass

"""Shared pieces of the fault-injection tier: processes, schedules, outputs, figures.

Everything here drives the real product (`python -m notifier ...` in a
subprocess, or the real `Daemon` in a thread); nothing is mocked. Figures
each test measures are printed (run with `-s` to see them) and recorded as
junit properties.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)

ENV_DROP = ("NOTIFIER_", "NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY",
            "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would change the daemon's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_DROP)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def notifier_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "notifier", *args]


def run_notifier(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(notifier_cmd(*args), env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every parseable line of a jsonl:// file (a line torn by a kill is left out)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "",
               step: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def report(name: str, figures: dict[str, object],
           record: Callable[[str, object], None] | None = None) -> None:
    """Print one line of figures (visible with -s) and record them as junit properties."""
    print(f"\n[fault figures] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    if record is not None:
        for k, v in figures.items():
            record(k, v)


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """One `python -m notifier ...` subprocess with stdout+stderr in a file."""

    args: list[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(notifier_cmd(*self.args), stdout=sink,
                                         stderr=subprocess.STDOUT, env=self.env)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_ready(p: Proc, timeout: float = 30, after: int = 0) -> None:
    """Until the daemon logs ` ready: ` (at or after byte `after` of its log)."""
    def ready() -> bool:
        assert p.alive(), p.text()[-3000:]
        return " ready: " in p.text()[after:]
    wait_until(ready, timeout, "the daemon to be ready")


# --------------------------------------------------------------------------- config files


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, "utf-8")
    path.chmod(mode)
    return path


def simple_config(*, state: Path, channels: dict[str, str], deadlines: str,
                  delivery: str = "", log_level: str = "INFO", kinds: dict[str, str] | None = None,
                  zone: str = "UTC", extra: str = "") -> str:
    """A config with `channels` (name -> url), the given [[deadlines]] text and `extra` tables."""
    parts = [f"[notifier]\nstate = {toml_str(str(state))}\nlog_level = {toml_str(log_level)}\n",
             f"[defaults]\ntimezone = {toml_str(zone)}\nreminders = []\n"]
    if delivery:
        parts.append(f"[delivery]\n{delivery}\n")
    if extra:
        parts.append(extra)
    for name, url in channels.items():
        extra = f"kinds = {kinds[name]}\n" if kinds and name in kinds else ""
        parts.append(f"[channels.{name}]\nurl = {toml_str(url)}\n{extra}")
    parts.append(deadlines)
    return "\n".join(parts)


def due_block(ident: str, due: datetime, *, announced: datetime | None = None,
              channels: Sequence[str] | None = None, reminders: Sequence[str] = (),
              title: str | None = None) -> str:
    lines = ["[[deadlines]]", f"id = {toml_str(ident)}",
             f"title = {toml_str(title or 'Handover ' + ident)}",
             f"due = {rfc3339(due)}",
             f"announced = {rfc3339(announced or due - 30 * D)}",
             f"reminders = {json.dumps(list(reminders))}"]
    if channels is not None:
        lines.append(f"channels = {json.dumps(list(channels))}")
    return "\n".join(lines) + "\n\n"


# --------------------------------------------------------------------------- random schedule


ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Baku",
         "America/Santiago", "Asia/Kolkata", "Pacific/Chatham")
REMINDER_SETS: tuple[list[str], ...] = (
    ["7d", "1d"], ["3d", "1d", "0d"], ["2h"], ["1w", "1d12h", "30m"], ["PT6H", "P2D"], [],
    ["14d", "7d", "3d", "1d", "2h"],
)
OVERDUE = ("12h", "1d", "1w", "2d6h")


@dataclass
class RandomSchedule:
    text: str
    deadlines: int
    extensions: int
    completed: int
    cancelled: int
    overdue: int
    zones: dict[str, int] = field(default_factory=dict)


def _local_ok(t: datetime, zone: ZoneInfo) -> bool:
    """A naive local time that exists once in `zone` (no DST gap, no fold)."""
    a, b = t.replace(tzinfo=zone, fold=0), t.replace(tzinfo=zone, fold=1)
    if a.utcoffset() != b.utcoffset():
        return False
    back = a.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == t


def _when_text(rng: random.Random, t: datetime, zone: ZoneInfo, *, allow_date: bool) -> str:
    """`t` written as a TOML date, local datetime or offset datetime, at random."""
    local = t.astimezone(zone)
    choice = rng.random()
    if allow_date and choice < 0.4:
        return local.date().isoformat()
    naive = local.replace(tzinfo=None, microsecond=0)
    if choice < 0.7 and _local_ok(naive, zone):
        return naive.isoformat()
    return local.replace(microsecond=0).isoformat()


def random_schedule(seed: int, *, start: datetime, end: datetime, count: int,
                    state: Path, channels: dict[str, str],
                    default_zone: str = "Australia/Lord_Howe") -> RandomSchedule:
    """A year-long schedule of `count` deadlines over several zones, with extensions
    announced at random times, completions, cancellations, overdue repeats and a
    weekly digest (Sundays 01:45 in Lord Howe: once a year inside the repeated
    half hour of its 30-minute DST change).

    Every deadline and extension carries an explicit `announced`, so `plan`
    and a daemon agree on what is known when without first-seen times.
    Channel "a" takes every kind; "b" only reminders, dues, overdues and digests.
    """
    rng = random.Random(seed)
    names = list(channels)
    out = [
        "[notifier]", f"state = {toml_str(str(state))}", 'log_level = "INFO"', "",
        "[defaults]", f"timezone = {toml_str(default_zone)}", 'reminders = ["1d"]',
        'remind_at = "09:00"', "",
        "[delivery]", 'catchup = "24h"', "",
        "[digest]", 'schedule = "45 1 * * 0"', f"channels = {json.dumps(names[:1])}", "",
    ]
    for name, url in channels.items():
        out += [f"[channels.{name}]", f"url = {toml_str(url)}"]
        if name != names[0]:
            out.append('kinds = ["reminder", "due", "overdue", "digest"]')
        out.append("")
    sched = RandomSchedule("", count, 0, 0, 0, 0)
    span = (end - start).total_seconds()
    for i in range(count):
        zone_name = rng.choice(ZONES)
        zone = ZoneInfo(zone_name)
        sched.zones[zone_name] = sched.zones.get(zone_name, 0) + 1
        # Dues over the year and a little beyond both ends, at odd times.
        due = start + timedelta(seconds=rng.uniform(-0.05 * span, 1.05 * span))
        due = due.replace(second=0, microsecond=0)
        announced = due - timedelta(hours=rng.uniform(6, 24 * 60))
        lines = ["[[deadlines]]", f'id = "d{i:04d}"',
                 f'title = "Deadline {i} ({zone_name})"',
                 f"timezone = {toml_str(zone_name)}",
                 f"due = {_when_text(rng, due, zone, allow_date=True)}",
                 f"announced = {rfc3339(announced.replace(microsecond=0))}"]
        if rng.random() < 0.85:
            lines.append(f"reminders = {json.dumps(rng.choice(REMINDER_SETS))}")
        pick = rng.random()
        if pick < 0.4:
            lines.append(f"channels = {json.dumps(names[:1])}")
        elif pick < 0.6:
            lines.append(f"channels = {json.dumps(names[1:2])}")
        if rng.random() < 0.3:
            sched.overdue += 1
            lines += [f"overdue_every = {toml_str(rng.choice(OVERDUE))}",
                      f"overdue_limit = {rng.randint(1, 4)}"]
        exts: list[str] = []
        last_due, last_announced = due, announced
        for k in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
            # Announced at a random moment between the last announcement and a
            # little after the current due (an extension after the due passed).
            when = last_announced + (last_due + 2 * D - last_announced) * rng.random()
            when = when.replace(microsecond=0) + S
            new_due = last_due + timedelta(hours=rng.uniform(-48, 24 * 20))
            if new_due <= when:
                new_due = when + timedelta(hours=rng.uniform(2, 200))
            new_due = new_due.replace(second=0, microsecond=0)
            exts += ["[[deadlines.extensions]]",
                     f"due = {_when_text(rng, new_due, zone, allow_date=True)}",
                     f"announced = {rfc3339(when)}",
                     f'reason = "reason {i}.{k}: roads"', f'source = "source {i}.{k}"', ""]
            sched.extensions += 1
            last_due, last_announced = new_due, when
        closing = rng.random()
        if closing < 0.2:
            when = announced + (last_due + 3 * D - announced) * rng.random()
            kind = "completed" if closing < 0.15 else "cancelled"
            if kind == "completed":
                sched.completed += 1
            else:
                sched.cancelled += 1
            lines += [f"{kind} = {rfc3339(when.replace(microsecond=0))}", f'note = "closed {i}"']
        out += [*lines, "", *exts]
    sched.text = "\n".join(out) + "\n"
    return sched


def passed(t: datetime) -> Callable[[], bool]:
    """A predicate for wait_until: the wall clock is past `t`."""
    return lambda: utc_now() > t

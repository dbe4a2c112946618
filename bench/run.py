"""notifier at scale, side by side with baselines measured in the same run.

    .venv/bin/python bench/run.py [--sizes 1000,10000,100000] [--runs 3] [--quick]

Prints a Markdown table: each figure for notifier, its baseline, the ratio and
the target (see bench/README.md for what each row measures). Every workload is
generated here, deterministically from `--seed`, relative to the time the run
starts: N deadlines with 4 reminders each in zones with and without DST
(Australia/Lord_Howe's half-hour shift included), dues over a year, one in ten
extended; a burst of notifications due at one instant to a local json://
receiver; isolated notifications; a hanging channel next to a healthy one.

The daemon runs for real, in a subprocess: `notifier run` with a NOTIFY_SOCKET
datagram socket of ours (start to READY=1 is measured there) and its peak
memory read from the kernel (ru_maxrss from wait4). The APScheduler baseline
is `bench/run.py _baseline CONFIG`: the same config loading, ledger and
first-seen bookkeeping, then one APScheduler `date` job per reminder.

The daemon and `plan` run as `python -m notifier ...`: the product as
installed. The internal subcommand `_baseline CONFIG` is the baseline daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
    "America/Santiago", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham",
    "Asia/Baku", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland", "Asia/Kathmandu",
)
REMINDERS = ("7d", "3d", "1d", "2h")
EDITED = "d0000000"
"""The deadline the reload row edits; it always has notifications in the next two days."""
PLAN_BOUND = 7.0
"""`plan --json` may take up to 7x remind's time: twice the 3.5x measured at 9339505, the
last commit before issue 18 (bench/README.md). The earlier 3x target is retired: the
forked reader and the two-process plan that chased it cost more in moving parts than
users gained."""
PLAN_TARGET = f"within {PLAN_BOUND:.0f}x of remind (2x of before)"


# --------------------------------------------------------------------------- children


def baseline_main(config_path: str) -> None:
    """`_baseline CONFIG`: what notifier does at start, but one APScheduler job per reminder.

    Same config loading, same ledger and first-seen bookkeeping; then, instead
    of notifier's window over the plan and its three jobs, every reminder of
    every deadline becomes a `date` job of a BackgroundScheduler (added in
    file order, then the scheduler starts), and READY=1 goes to NOTIFY_SOCKET.
    """
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415

    from notifier.config import loader as config  # noqa: PLC0415 - in the child only
    from notifier.delivery.ledger import Ledger, open_ledger  # noqa: PLC0415
    from notifier.schedule import planning  # noqa: PLC0415

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    now = datetime.now(UTC)
    books: list[Ledger] = []

    def first_seen(where: Path) -> config.FirstSeen:
        books.append(open_ledger(where))
        return config.FirstSeen(books[0].first_seen(), now)

    cfg = config.load(Path(config_path), first_seen=first_seen)
    book = books[0]
    book.record_first_seen(config.first_seen_ids(cfg.schedule.deadlines), now)
    schedule = cfg.schedule
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    forever = datetime(9999, 1, 1, tzinfo=UTC)
    jobs = 0
    for d in schedule.deadlines:
        for n in planning.plan_deadline(d, schedule.channels, now, forever):
            if n.kind == "reminder":
                scheduler.add_job(print, "date", run_date=n.at, args=[n.key], id=n.key)
                jobs += 1
    scheduler.start()
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(f"READY=1\nSTATUS={jobs} jobs".encode(), address)
    stop.wait()
    scheduler.shutdown(wait=False)
    book.close()


def apprise_main(url: str, count: int, threads: int, start: float) -> None:
    """`_apprise URL COUNT THREADS START`: the burst's ceiling, apprise alone.

    `count` messages of the burst's size through `apprise.Apprise.notify` to
    `url`, from `threads` threads with an instance each (as notifier's
    channel does for json://), starting at the Unix time `start`. No ledger,
    templates or logging: what one process can push through apprise here.
    """
    import queue  # noqa: PLC0415 - in the child only

    import apprise  # noqa: PLC0415

    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(count):
        todo.put(i)
    body = "Kalbajar district: the handover is due now (15 Nov 2020, 00:00 Asia/Baku). " * 2

    def work() -> None:
        instance = apprise.Apprise()
        instance.add(url)
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            instance.notify(body=body, title=f"a{i:05d}: due now")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    time.sleep(max(0.0, start - time.time()))
    for w in workers:
        w.start()
    for w in workers:
        w.join()


# --------------------------------------------------------------------------- workloads


def toml_utc(t: datetime) -> str:
    text = t.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace(".000000", "").replace("+00:00", "Z")


def write_schedule(path: Path, n: int, *, base: datetime, seed: int, state: Path,
                   channel: str) -> None:
    """N deadlines, 4 reminders each, random zones and dues over a year, 10% extended.

    Dues are a mix of dates, local datetimes (moved off DST gaps and folds, as
    a user would have to) and UTC datetimes. Deadline `EDITED` is due 30 h
    after `base`, so it always has notifications in the daemon's first window.
    """
    from notifier.schedule import timing  # noqa: PLC0415 - the checks notifier itself makes

    rng = random.Random(seed)
    zones = {name: ZoneInfo(name) for name in ZONES}
    reminders = ", ".join(f'"{r}"' for r in REMINDERS)
    parts = [
        f'[notifier]\nstate = "{state}"\nlog_level = "INFO"\n\n'
        f'[defaults]\ntimezone = "UTC"\nreminders = [{reminders}]\n\n'
        f'[channels.out]\nurl = "{channel}"\n',
        f'\n[[deadlines]]\nid = "{EDITED}"\ntitle = "Deadline 0"\n'
        f"due = {toml_utc(base + timedelta(hours=30))}\n",
    ]
    for i in range(1, n):
        name = rng.choice(ZONES)
        zone = zones[name]
        t = base + timedelta(seconds=rng.randrange(3600, 365 * 86400))
        text = [f'\n[[deadlines]]\nid = "d{i:07d}"\ntitle = "Deadline {i}"\ntimezone = "{name}"\n']
        shape = rng.random()
        if shape < 0.4:
            text.append(f"due = {t.astimezone(zone).date().isoformat()}\n")
        elif shape < 0.8:
            wall = t.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
            while timing.check_local(wall, zone) is not None:
                wall += timedelta(hours=1)
            text.append(f"due = {wall.isoformat()}\n")
        else:
            text.append(f"due = {toml_utc(t)}\n")
        if rng.random() < 0.1:
            later = t + timedelta(days=rng.randint(1, 30))
            announced = base + (t - base) * rng.random()
            text.append(
                f"\n[[deadlines.extensions]]\ndue = {toml_utc(later)}\n"
                f'announced = {toml_utc(announced)}\nreason = "more time asked"\n'
            )
        parts.append("".join(text))
    path.write_text("".join(parts))
    path.chmod(0o600)


def edit_schedule(path: Path, base: datetime, shift_hours: int) -> None:
    """Move deadline `EDITED`'s due to `base` + 30 h + `shift_hours` (atomic replace)."""
    text = path.read_text()
    head, sep, rest = text.partition(f'id = "{EDITED}"\ntitle = "Deadline 0"\ndue = ')
    assert sep, "edited deadline not found"
    _, nl, tail = rest.partition("\n")
    new = head + sep + toml_utc(base + timedelta(hours=30 + shift_hours)) + nl + tail
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    tmp.chmod(0o600)
    os.replace(tmp, path)


def write_delivery_config(path: Path, *, state: Path, channels: dict[str, str],
                          dues: Sequence[tuple[str, datetime]], helpers: int = 0) -> None:
    lines = [
        f'[notifier]\nstate = "{state}"\nlog_level = "INFO"\n\n'
        '[defaults]\ntimezone = "UTC"\nreminders = []\n'
        f'\n[delivery]\nhelpers = {helpers}\n'
    ]
    lines += [f'\n[channels.{name}]\nurl = "{url}"\n' for name, url in channels.items()]
    announced = toml_utc(datetime.now(UTC) - timedelta(hours=1))
    lines += [
        f'\n[[deadlines]]\nid = "{ident}"\ntitle = "{ident.upper()}"\n'
        f"due = {toml_utc(due)}\nannounced = {announced}\n"
        for ident, due in dues
    ]
    path.write_text("".join(lines))
    path.chmod(0o600)


def write_remind_file(config: Path, path: Path, start: datetime) -> int:
    """Every reminder, rescheduled and due message of the schedule as a remind REM line.

    The instants are the ones notifier plans (in UTC; remind runs with TZ=UTC),
    so remind only has to read dates and times: it does no zone, DST or
    extension arithmetic, which makes it a generous baseline.
    """
    import notifier.config.loader as cfgmod  # noqa: PLC0415
    from notifier.schedule import planning  # noqa: PLC0415

    schedule = cfgmod.load(config).schedule
    forever = datetime(9999, 1, 1, tzinfo=UTC)
    count = 0
    with path.open("w") as out:
        for d in schedule.deadlines:
            for n in planning.plan_deadline(d, schedule.channels, start, forever):
                at = n.at.astimezone(UTC)
                out.write(f"REM {at:%Y-%m-%d} AT {at:%H:%M} MSG {n.deadline} {n.kind}"
                          f" {n.offset or ''}\n")
                count += 1
    return count


# --------------------------------------------------------------------------- processes


def child_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NOTIFIER_", "NOTIFY_", "WATCHDOG_", "JOURNAL_", "LISTEN_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Byte code cached once per bench run (an installed package has its .pyc).
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    env["PYTHONUNBUFFERED"] = "1"
    env["TZ"] = "UTC"
    return env


class NotifySocket:
    """A Unix datagram socket where a child's NOTIFY_SOCKET points."""

    def __init__(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)

    def wait_for(self, word: str, proc: subprocess.Popen[bytes], timeout: float,
                 log: Path) -> float:
        """perf_counter() when a datagram containing `word` arrived."""
        limit = time.perf_counter() + timeout
        while time.perf_counter() < limit:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if proc.poll() is not None:
                    raise RuntimeError(f"child exited ({proc.returncode}) before {word}:\n"
                                       + tail(log)) from None
                continue
            if word in data.decode(errors="replace"):
                return time.perf_counter()
        raise RuntimeError(f"no {word} within {timeout:.0f} s:\n{tail(log)}")

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    started: float
    sock: NotifySocket
    log: Path

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM, reap, and return the peak resident memory in MiB (ru_maxrss)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        limit = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > limit:
                self.proc.kill()
                _, status, usage = os.wait4(self.proc.pid, 0)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.02)
        self.sock.close()
        return usage.ru_maxrss / 1024


def start_child(argv: list[str], workdir: Path, name: str) -> Child:
    sock = NotifySocket(workdir / f"{name}.sock")
    env = child_env(workdir)
    env["NOTIFY_SOCKET"] = str(sock.path)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=workdir)
    return Child(proc, started, sock, log)


def fresh_state(state: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(state) + suffix).unlink()


def notifier_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "notifier", *args]


def baseline_argv(config: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "_baseline", str(config)]


# --------------------------------------------------------------------------- receiver


@dataclass
class Arrival:
    at: float
    """time.time() when the request had been read."""
    title: str


class Receiver:
    """A local HTTP server for apprise's json:// that records arrivals; can hang."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Condition()
        self.hanging = False
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                try:
                    title = str(json.loads(body).get("title", ""))
                except ValueError:
                    title = ""
                with receiver.lock:
                    receiver.arrivals.append(Arrival(now, title))
                    receiver.lock.notify_all()
                if receiver.hanging:
                    receiver.release.wait(120)
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 1024
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.arrivals) >= count, timeout)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    figure: str
    size: str
    ours: str
    base: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        mark = "" if row.ok is None else ("ok" if row.ok else "MISSED")
        print(f"  {row.figure} [{row.size}]: {row.ours}"
              + (f" | baseline {row.base}" if row.base else "")
              + (f" | {row.ratio}" if row.ratio else "") + (f" {mark}" if mark else ""),
              file=sys.stderr, flush=True)

    def markdown(self) -> str:
        out = ["| figure | N | notifier | baseline | ratio | target | met |",
               "|---|---:|---:|---:|---:|---|---|"]
        for r in self.rows:
            met = "" if r.ok is None else ("yes" if r.ok else "**no**")
            out.append(f"| {r.figure} | {r.size} | {r.ours} | {r.base} | {r.ratio} | "
                       f"{r.target} | {met} |")
        return "\n".join(out)


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def secs(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


def size_text(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------- measurements


def measure_check(report: Report, workdir: Path, runs: int) -> None:
    script = Path(sys.executable).with_name("notifier")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "notifier"]
    env = child_env(workdir)

    def wall(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0

    check = [*argv, "check", "-c", str(EXAMPLE)]
    bare = [sys.executable, "-c", "pass"]
    wall(check)  # warm the byte-code cache
    wall(bare)
    ours = med([wall(check) for _ in range(runs)])
    base = med([wall(bare) for _ in range(runs)])
    report.add(Row("`notifier check` config.example.toml, wall (baseline: `python -c pass`)",
                   "3", secs(ours), secs(base), f"{ours / base:.1f}x the bare interpreter",
                   "<= 0.5 s", ours <= 0.5))


@dataclass
class Start:
    ready: float
    rss: float


def start_once(argv: list[str], workdir: Path, state: Path, name: str,
               timeout: float) -> Start:
    fresh_state(state)
    child = start_child(argv, workdir, name)
    try:
        ready = child.sock.wait_for("READY=1", child.proc, timeout, child.log) - child.started
    except BaseException:
        child.stop()
        raise
    rss = child.stop()
    return Start(ready, rss)


def measure_start(report: Report, workdir: Path, n: int, config: Path, state: Path,
                  runs: int, baseline: bool) -> None:
    ours = [start_once(notifier_argv("run", "-c", str(config)), workdir, state,
                       f"run-{n}", 3600) for _ in range(runs)]
    ready, rss = med([s.ready for s in ours]), med([s.rss for s in ours])
    base: list[Start] = []
    if baseline:
        # Minutes per run at 100,000 (400,000 jobs): one run there is enough.
        base = [start_once(baseline_argv(config), workdir, state, f"baseline-{n}", 7200)
                for _ in range(runs if n < 100_000 else 1)]
    big = n >= 1_000_000
    if base:
        b_ready, b_rss = med([s.ready for s in base]), med([s.rss for s in base])
        speed, mem = b_ready / ready, b_rss / rss
        target_t = "<= 5 s and >= 5x" if n == 100_000 else ""
        ok_t = (ready <= 5 and speed >= 5) if n == 100_000 else None
        report.add(Row("daemon start to READY=1 (baseline: 1 APScheduler job per reminder)",
                       size_text(n), secs(ready), secs(b_ready), f"{speed:.1f}x faster",
                       target_t, ok_t))
        report.add(Row("daemon peak memory (ru_maxrss)", size_text(n), mib(rss), mib(b_rss),
                       f"{mem:.1f}x less", ">= 3x less" if n == 100_000 else "",
                       mem >= 3 if n == 100_000 else None))
    else:
        report.add(Row("daemon start to READY=1", size_text(n), secs(ready), "", "",
                       "<= 60 s" if big else "", ready <= 60 if big else None))
        report.add(Row("daemon peak memory (ru_maxrss)", size_text(n), mib(rss), "", "",
                       "<= 2 GB" if big else "", rss * 1.048576 <= 2000 if big else None))


def ensure_remind(allow_install: bool) -> str | None:
    """The remind binary, installing Debian's package if allowed; None with a reason noted."""
    found = shutil.which("remind")
    if found or not allow_install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "remind"],
                ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "remind"]):
        subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if shutil.which("remind"):
            break
    return shutil.which("remind")


def measure_plan(report: Report, workdir: Path, n: int, config: Path, state: Path,
                 base_time: datetime, runs: int, allow_install: bool) -> None:
    fresh_state(state)  # no ledger: plan counts every deadline as known from the start
    start = base_time
    until = start + timedelta(days=30)
    out = workdir / "plan.json"
    env = child_env(workdir)
    argv = notifier_argv("plan", "-c", str(config), "--json", "--from", start.isoformat(),
                         "--until", until.isoformat())

    def run_plan(*more: str) -> float:
        with out.open("wb") as f:
            t0 = time.perf_counter()
            subprocess.run([*argv, *more], env=env, cwd=workdir, check=True, stdout=f)
            return time.perf_counter() - t0

    check_argv = notifier_argv("check", "-c", str(config))

    def run_check() -> float:
        t0 = time.perf_counter()
        subprocess.run(check_argv, env=env, cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0

    remind = ensure_remind(allow_install)
    rem = workdir / f"schedule-{n}.rem"
    count = write_remind_file(config, rem, start) if remind is not None else 0

    def run_remind() -> float:
        assert remind is not None
        t0 = time.perf_counter()
        subprocess.run([remind, "-q", "-n", str(rem)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0

    # Round by round, so a slow spell of the machine weighs on every figure alike.
    plans: list[float] = []
    bodies: list[float] = []
    floors: list[float] = []
    reminds: list[float] = []
    for _ in range(runs):
        bodies.append(run_plan("--body"))
        floors.append(run_check())  # what plan pays first: read, validate and resolve
        if remind is not None:
            reminds.append(run_remind())
        plans.append(run_plan())
    items = len(json.loads(out.read_text()))
    out.unlink()
    ours, body, floor = med(plans), med(bodies), med(floors)
    what = f"`plan --json`, 30 days ({items:,} items"
    if remind is None:
        report.add(Row(f"{what})", size_text(n), secs(ours), "skipped", "",
                       PLAN_TARGET, None))
        report.notes.append("remind is not installed (and could not be installed here): the "
                            "`plan --json` baseline was skipped; `apt-get install remind`.")
        return
    theirs = med(reminds)
    ratio = ours / theirs
    report.add(Row(f"{what}; baseline: `remind -q -n`, {count:,} REMs)", size_text(n),
                   secs(ours), secs(theirs), f"{ratio:.1f}x remind's time",
                   PLAN_TARGET, ratio <= PLAN_BOUND))
    report.add(Row("`plan --json --body`: each item's message body rendered too",
                   size_text(n), secs(body), secs(theirs), f"{body / theirs:.1f}x remind's time",
                   "", None))
    report.add(Row("`check` of that schedule: reading and validating it, which `plan` "
                   "does first (baseline: `remind -q -n`)", size_text(n), secs(floor),
                   secs(theirs), f"{floor / theirs:.1f}x remind's time", "", None))


_RELOADED = re.compile(r"reloaded: \+(\d+) / -(\d+) notifications(.*)")


def measure_reload(report: Report, workdir: Path, n: int, config: Path, state: Path,
                   base_time: datetime, runs: int) -> None:
    fresh_state(state)
    child = start_child(notifier_argv("run", "-c", str(config)), workdir, f"reload-{n}")
    times: list[float] = []
    diffs: list[str] = []
    only_edited = True
    try:
        child.sock.wait_for("READY=1", child.proc, 3600, child.log)
        for k in range(runs):
            edit_schedule(config, base_time, 24 if k % 2 == 0 else 0)
            seen = len(_RELOADED.findall(child.log.read_text(errors="replace")))
            t0 = time.perf_counter()
            child.proc.send_signal(signal.SIGHUP)
            child.sock.wait_for("RELOADING=1", child.proc, 600, child.log)
            times.append(child.sock.wait_for("READY=1", child.proc, 3600, child.log) - t0)
            deadline = time.monotonic() + 10
            while True:
                found = _RELOADED.findall(child.log.read_text(errors="replace"))
                if len(found) > seen or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if len(found) <= seen:
                only_edited = False
                diffs.append("no reload line")
                continue
            added, removed, moves = found[seen]
            moved = re.findall(r", (\S+): due moved", moves)
            diffs.append(f"+{added}/-{removed} {','.join(moved) or 'no move'}")
            # A due moved by a day changes only its own deadline's notifications
            # (at most 4 reminders and the due, on each side of the diff).
            if moved != [EDITED] or not (0 < int(added) + int(removed) <= 10):
                only_edited = False
    finally:
        child.stop()
        edit_schedule(config, base_time, 0)
    value = med(times)
    report.add(Row("SIGHUP reload to READY=1, one deadline's due moved", size_text(n),
                   secs(value), "", "; ".join(dict.fromkeys(diffs)),
                   "<= 3 s, only that deadline changed",
                   value <= 3 and only_edited if n == 100_000 else None))
    if not only_edited:
        report.notes.append(f"reload at {n:,}: the diff touched more than {EDITED}: {diffs}")


def rss_mib(pid: int) -> float:
    """Resident memory of a live process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure_reload_memory(report: Report, workdir: Path, n: int, config: Path, state: Path,
                          base_time: datetime, counts: tuple[int, int]) -> None:
    """RSS of a running daemon after `counts[0]` and after `counts[1]` SIGHUP reloads.

    Each reload moves deadline `EDITED`'s due by a day and back, and waits for its
    RELOADING=1 and READY=1: the daemon folds requests into one reload every 0.5 s,
    so a signal sent before the last reload's READY=1 would not be one more reload.
    """
    early, late = counts
    fresh_state(state)
    child = start_child(notifier_argv("run", "-c", str(config)), workdir, f"reloads-{n}")
    rss: dict[int, float] = {}
    t0 = time.perf_counter()
    try:
        child.sock.wait_for("READY=1", child.proc, 3600, child.log)
        for k in range(1, late + 1):
            edit_schedule(config, base_time, 24 if k % 2 else 0)
            child.proc.send_signal(signal.SIGHUP)
            child.sock.wait_for("RELOADING=1", child.proc, 600, child.log)
            child.sock.wait_for("READY=1", child.proc, 3600, child.log)
            if k in (early, late):
                rss[k] = rss_mib(child.proc.pid)
            if k % 100 == 0:
                print(f"    {k} reloads, {rss_mib(child.proc.pid):.1f} MiB, "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        child.stop()
        edit_schedule(config, base_time, 0)
    growth = rss[late] - rss[early]
    per = growth * 1024 / (late - early)
    report.add(Row(f"daemon RSS after {late:,} SIGHUP reloads (after {early:,} in brackets)",
                   size_text(n), f"{rss[late]:.1f} MiB ({rss[early]:.1f} MiB)", "",
                   f"{growth:+.1f} MiB ({per:+.1f} KiB a reload)", "within 5 MiB",
                   abs(growth) <= 5))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Delivery:
    planned: dict[str, float]
    """Deadline id (upper case, as in titles) -> planned epoch seconds."""
    arrivals: dict[str, list[Arrival]]
    """Channel -> arrivals at its receiver."""
    records: dict[str, list[dict[str, Any]]]
    """jsonl channel -> its records (with notifier's own `sent_at` and `planned_at`)."""
    ready_margin: float
    """Seconds between READY=1 and the first planned instant (must be > 0)."""


def run_delivery(workdir: Path, name: str, dues_after: Sequence[float],
                 receivers: dict[str, Receiver], expect: dict[str, int], *,
                 jsonl: Sequence[str] = (), lead: float = 5.0, settle: float = 30.0,
                 helpers: int = 0) -> Delivery:
    """Run the daemon with one deadline per offset in `dues_after` (seconds after start + lead).

    Channels: one json:// per receiver, and one jsonl:// file per name in `jsonl`;
    `helpers` send helper processes (``[delivery] helpers``).
    Waits until each channel in `expect` has that many deliveries (or `settle`
    seconds after the last due), then stops the daemon.
    """
    state = workdir / f"{name}.db"
    fresh_state(state)
    config = workdir / f"{name}.toml"
    files = {c: workdir / f"{name}-{c}.jsonl" for c in jsonl}
    for f in files.values():
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    t0 = datetime.now(UTC) + timedelta(seconds=lead)
    dues = [(f"e{i:05d}", t0 + timedelta(seconds=s)) for i, s in enumerate(dues_after)]
    urls = {c: r.url for c, r in receivers.items()} | {c: f"jsonl://{f}" for c, f in files.items()}
    write_delivery_config(config, state=state, channels=urls, dues=dues, helpers=helpers)
    for r in receivers.values():
        r.arrivals.clear()
    child = start_child(notifier_argv("run", "-c", str(config)), workdir, name)
    try:
        child.sock.wait_for("READY=1", child.proc, 60, child.log)
        margin = t0.timestamp() - time.time()
        finish = time.monotonic() + lead + max(dues_after) + settle
        for channel, count in expect.items():
            if channel in receivers:
                receivers[channel].wait_for(count, max(0.0, finish - time.monotonic()))
            else:
                while len(read_jsonl(files[channel])) < count and time.monotonic() < finish:
                    time.sleep(0.1)
    finally:
        for r in receivers.values():
            r.release.set()
        child.stop()
        for r in receivers.values():
            r.release.clear()
    return Delivery({i.upper(): d.timestamp() for i, d in dues},
                    {c: list(r.arrivals) for c, r in receivers.items()},
                    {c: read_jsonl(f) for c, f in files.items()}, margin)


def lateness(delivery: Delivery, channel: str) -> list[float]:
    """Seconds late: arrival at the receiver, or for jsonl notifier's `sent_at`."""
    if channel in delivery.records:
        return [epoch(r["sent_at"]) - epoch(r["planned_at"]) for r in delivery.records[channel]]
    out = []
    for a in delivery.arrivals[channel]:
        ident = a.title.split(":", 1)[0].strip()
        if ident in delivery.planned:
            out.append(a.at - delivery.planned[ident])
    return out


def apprise_burst(rx: Receiver, size: int) -> float:
    """Seconds from the start to the last arrival of `size` messages sent by apprise alone."""
    from notifier.delivery.channels import PARALLEL_SENDS  # noqa: PLC0415 - the product's own limit

    rx.arrivals.clear()
    start = time.time() + 3.0  # after the child's imports
    argv = [sys.executable, str(Path(__file__).resolve()), "_apprise", rx.url, str(size),
            str(PARALLEL_SENDS), repr(start)]
    subprocess.run(argv, check=True, timeout=300)
    return max(a.at for a in rx.arrivals) - start if len(rx.arrivals) >= size else float("inf")


def measure_burst(report: Report, workdir: Path, size: int, runs: int, helpers: int) -> None:
    first: list[float] = []
    last: list[float] = []
    alone: list[float] = []
    with contextlib.closing(Receiver()) as rx:
        for k in range(runs):
            alone.append(apprise_burst(rx, size))
            d = run_delivery(workdir, f"burst-{k}", [0.0] * size, {"hook": rx}, {"hook": size},
                             settle=120, helpers=helpers)
            late = lateness(d, "hook")
            if d.ready_margin <= 0 or len(late) < size:
                report.notes.append(f"burst run {k}: {len(late)}/{size} delivered, READY "
                                    f"{d.ready_margin:.2f} s before the burst")
            if late:
                first.append(min(late))
                last.append(max(late))
    if not first:
        report.add(Row(f"burst of {size:,}: nothing delivered", size_text(size), "-", ok=False))
        return
    report.add(Row(f"burst of {size:,} at one instant: first send starts, late by "
                   "(median of runs; max)", size_text(size),
                   f"{ms(med(first))} ({ms(max(first))})", "", "", "p99 <= 50 ms",
                   max(first) <= 0.05))
    # A baseline run that did not deliver everything counts as infinitely slow.
    rate, ceiling = size / med(last), size / med(alone)
    ceiling = ceiling or float("nan")
    report.add(Row(f"burst of {size:,}: all delivered (json:// through apprise; baseline: "
                   "apprise alone, same threads)", size_text(size), secs(med(last)),
                   secs(med(alone)), f"{rate:.0f} vs {ceiling:.0f} msg/s ({rate / ceiling:.0%})",
                   "<= 5 s (>= 200 msg/s)", med(last) <= 5))


def spaced(count: int, gap: float) -> list[float]:
    return [i * gap for i in range(count)]


def measure_isolated(report: Report, workdir: Path, count: int, runs: int) -> None:
    """Start of send: the `sent_at` a jsonl:// channel writes as its send begins;
    arrival at a json:// receiver (a separate run) for comparison."""
    start: list[float] = []
    arrival: list[float] = []
    with contextlib.closing(Receiver()) as rx:
        for k in range(runs):
            d = run_delivery(workdir, f"isolated-{k}", spaced(count, 0.3), {}, {"file": count},
                             jsonl=["file"])
            start += lateness(d, "file")
            d = run_delivery(workdir, f"isolated-http-{k}", spaced(count, 0.3), {"hook": rx},
                             {"hook": count})
            arrival += lateness(d, "hook")
    if not start or not arrival:
        report.add(Row("isolated notification: nothing delivered", "", "-", ok=False))
        return
    report.add(Row(f"isolated notification, send starts late by: p99 (median), {len(start)} "
                   "samples (jsonl `sent_at`)", "1", f"{ms(p99(start))} ({ms(med(start))})",
                   "", "", "p99 <= 10 ms", p99(start) <= 0.010))
    report.add(Row(f"isolated notification, arrives at a json:// receiver late by: p99 "
                   f"(median), {len(arrival)} samples", "1",
                   f"{ms(p99(arrival))} ({ms(med(arrival))})", "", "", "", None))


def measure_hanging(report: Report, workdir: Path, count: int, runs: int) -> None:
    calm: list[float] = []
    stuck: list[float] = []
    with contextlib.closing(Receiver()) as healthy, contextlib.closing(Receiver()) as other:
        for k in range(runs):
            for hang, sink in ((False, calm), (True, stuck)):
                other.hanging = hang
                d = run_delivery(workdir, f"hang-{int(hang)}-{k}", spaced(count, 0.5),
                                 {"healthy": healthy, "other": other},
                                 {"healthy": count, "other": 1 if hang else count})
                sink.extend(lateness(d, "healthy"))
        other.hanging = False
    if not calm or not stuck:
        report.add(Row("hanging channel: nothing delivered", "", "-", ok=False))
        return
    growth = p99(stuck) - p99(calm)
    report.add(Row("healthy channel next to a hanging one: p99 lateness (baseline: next to "
                   "a healthy one)", "1", ms(p99(stuck)), ms(p99(calm)),
                   f"{growth * 1000:+.1f} ms", "grows <= 50 ms", growth <= 0.05))


# --------------------------------------------------------------------------- main


def warm_up(workdir: Path, seed: int) -> None:
    """Start each kind of child once, unmeasured, so byte code is compiled and cached."""
    config, state = workdir / "warm.toml", workdir / "warm.db"
    write_schedule(config, 20, base=datetime.now(UTC), seed=seed, state=state,
                   channel=f"jsonl://{workdir}/warm.jsonl")
    start_once(notifier_argv("run", "-c", str(config)), workdir, state, "warm", 120)
    start_once(baseline_argv(config), workdir, state, "warm-baseline", 120)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    # Which build of Python counts: the same code ran `plan` 15-27 % faster on
    # Debian's python3.11 than on a pyenv build of 3.11 here (bench/README.md).
    return (f"{cpu}, {os.cpu_count()} cores{mem}; {platform.platform()}; "
            f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})")


@contextlib.contextmanager
def working_dir(given: str | None) -> Iterator[Path]:
    if given:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    # On the real disk (not a tmpfs), like /var/lib: the ledger fsyncs.
    with tempfile.TemporaryDirectory(prefix="notifier-bench-", dir="/var/tmp") as tmp:
        yield Path(tmp)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000",
                   help="schedule sizes (deadlines), comma-separated; add 1000000 if the "
                        "machine allows")
    p.add_argument("--runs", type=int, default=3, help="runs per figure (medians)")
    p.add_argument("--baseline-max", type=int, default=100_000,
                   help="largest size the APScheduler baseline is run at")
    p.add_argument("--burst", type=int, default=1000, help="notifications in the burst")
    p.add_argument("--helpers", type=int, default=0,
                   help="[delivery] helpers for the burst's daemon (send helper processes)")
    p.add_argument("--isolated", type=int, default=30, help="isolated notifications per run")
    p.add_argument("--seed", type=int, default=20201110)
    p.add_argument("--workdir", default=None, help="keep files here (default: a temp dir)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install remind")
    p.add_argument("--reloads", default="10,1000",
                   help="the reload-memory row's two counts of reloads (RSS after each)")
    p.add_argument("--only", default="",
                   help="run only these rows: check,start,plan,reload,reloads,burst,isolated,"
                        "hanging")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, one run each: checks that everything runs (no timing)")
    return p.parse_args(argv)


def run_all(args: argparse.Namespace, report: Report, started: datetime) -> int:
    """Every measurement `args` asks for; returns the number of runs per figure."""
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    runs: int = args.runs
    burst: int = args.burst
    isolated: int = args.isolated
    early, late = (int(c) for c in args.reloads.split(","))
    if args.quick:
        sizes, runs, burst, isolated = [300], 1, 50, 4
        early, late = 2, 5
    only = set(filter(None, args.only.split(",")))

    def wanted(*rows: str) -> bool:
        return not only or bool(only.intersection(rows))

    with working_dir(args.workdir) as workdir:
        warm_up(workdir, args.seed)
        if wanted("check"):
            measure_check(report, workdir, 2 if args.quick else max(runs, 10))
        base_time = started.replace(minute=0, second=0, microsecond=0)
        largest = max((n for n in sizes if n <= 100_000), default=None)
        for n in sizes if wanted("start", "plan", "reload", "reloads") else []:
            config = workdir / f"schedule-{n}.toml"
            state = workdir / f"schedule-{n}.db"
            t0 = time.perf_counter()
            write_schedule(config, n, base=base_time, seed=args.seed, state=state,
                           channel=f"jsonl://{workdir}/out-{n}.jsonl")
            print(f"  generated {n:,} deadlines ({config.stat().st_size / 2**20:.1f} MiB) in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            if wanted("start"):
                measure_start(report, workdir, n, config, state,
                              1 if n >= 1_000_000 else runs, baseline=n <= args.baseline_max)
            if n == largest and wanted("plan"):
                measure_plan(report, workdir, n, config, state, base_time, runs,
                             allow_install=not (args.quick or args.no_install))
            if n == largest and wanted("reload"):
                measure_reload(report, workdir, n, config, state, base_time, runs)
            if n == min(sizes) and wanted("reloads"):
                # The smallest schedule: the row counts reloads (0.5 s apart at
                # least), not the time each takes.
                measure_reload_memory(report, workdir, n, config, state, base_time,
                                      (early, late))
            if not args.workdir:
                config.unlink()
        if wanted("burst"):
            measure_burst(report, workdir, burst, runs, args.helpers)
        if wanted("isolated"):
            measure_isolated(report, workdir, isolated, runs)
        if wanted("hanging"):
            measure_hanging(report, workdir, isolated, runs)
    return runs


def main(argv: list[str]) -> int:
    if argv[:1] == ["_baseline"]:
        baseline_main(argv[1])
        return 0
    if argv[:1] == ["_apprise"]:
        apprise_main(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
        return 0
    args = parse_args(argv)
    report = Report()
    started = datetime.now(UTC)
    print(f"notifier bench, {started:%Y-%m-%d %H:%M} UTC; {machine()}", file=sys.stderr)
    runs = run_all(args, report, started)
    if args.quick:
        report.notes.append("--quick: tiny sizes and one run each; the figures mean nothing.")
    print(f"\nMachine: {machine()}\nRun: {started:%Y-%m-%d %H:%M} UTC, "
          f"`bench/run.py {' '.join(argv)}`, medians of {runs} run(s) unless stated\n")
    print(report.markdown())
    for note in report.notes:
        print(f"\n- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Fault 7: broken, half-written and valid config files saved in quick succession.

`notifier run` (a subprocess) watches its config file (1 s) and reloads on
SIGHUP. Two five-second storms of saves hit it, 20-150 ms apart: valid versions, TOML
syntax errors, schema errors (an unknown key), an unknown time zone, an
empty file, a file cut short, and saves written in two halves with a pause between
(another process reading in between sees half a file); some by rename,
some in place, some followed by SIGHUP. Most saves keep the file's size, so
a change can hide from a size-and-mtime check. Every valid version `k` adds
a deadline `verk` due a few seconds after the storm. The first storm ends
with a valid save that stays until the daemon's reload line names its
deadline, then a few broken saves; the
second ends on a valid save. (A valid version replaced within a second may
never be read: the watch looks once a second and waits for the file to hold
still, so it cannot be the one expected.)

Checked by behaviour: at each storm's due time exactly the deadline of the
last valid version is delivered (so that is the configuration running);
a deadline present in every version is delivered once; the daemon never
exits and logs every rejection without a traceback.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.figures import report
from support.jsonl import read_jsonl
from support.processes import Proc, wait_ready
from support.threads import daemon_thread
from support.times import S, passed, utc_now
from support.waits import wait_until

pytestmark = pytest.mark.timeout(120)
SEED = int(os.environ.get("NOTIFIER_FAULT_SEED", "20201115"))
STORM = 5 * S
"""How long each storm of saves lasts."""


def version(tmp: Path, k: int, due: datetime, steady: datetime) -> str:
    """Valid version k: the steady deadline plus `verk` due at `due` (same size for every k)."""
    return config_toml(
        state=tmp / "ledger.db", channels={"file": f"jsonl://{tmp / 'out.jsonl'}"},
        deadlines=deadline_toml("steady", steady) + deadline_toml(f"ver{k:03d}", due))


def cut_in_a_string(text: str, rng: random.Random) -> int:
    """A position inside a quoted value: the text before it is never valid TOML."""
    opens = [i + 1 for i in range(2, len(text)) if text[i] == '"' and text[i - 2:i] == "= "]
    return min(rng.choice(opens) + 2, len(text) - 1) if opens else len(text) // 2


def broken(text: str, rng: random.Random) -> tuple[str, str]:
    """A broken variant of a valid text, mostly of the same length."""
    kind = rng.choice(["syntax", "schema", "zone", "empty", "truncated"])
    if kind == "syntax":
        return kind, text.replace("[[deadlines]]", "[[deadlines]", 1)
    if kind == "schema":
        return kind, text.replace('url = "jsonl:', 'urx = "jsonl:', 1)
    if kind == "zone":
        return kind, text.replace('timezone = "UTC"', 'timezone = "XTC"', 1)
    if kind == "empty":
        return kind, ""
    return kind, text[:cut_in_a_string(text, rng)]


def save(path: Path, text: str, rng: random.Random) -> str:
    """Write `text` to `path` the way an editor or a script might."""
    how = rng.choice(["in place", "rename", "two halves"]) if text else "in place"
    data = text.encode()
    if how == "rename":
        tmp = path.with_name(f".{path.name}.{rng.randint(0, 1 << 30)}")
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        tmp.replace(path)
    elif how == "in place":
        with path.open("r+b" if path.exists() else "wb") as f:
            f.truncate(0)
            f.write(data)
    else:
        # Cut inside a quoted value: the first half alone is never a valid config.
        cut = cut_in_a_string(text, rng)
        with path.open("r+b" if path.exists() else "wb") as f:
            f.truncate(0)
            f.write(data[:cut])
            f.flush()
            time.sleep(rng.uniform(0.05, 0.4))  # a reader here sees half a file
            f.write(data[cut:])
    return how


def test_edit_storms_end_on_the_last_valid_config(
        tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    rng = random.Random(SEED)
    out = tmp_path / "out.jsonl"
    steady = utc_now() + 9 * S
    config = write_config(tmp_path / "config.toml",
                          version(tmp_path, 0, utc_now() + 3600 * S, steady))
    proc = Proc(["run", "-c", str(config)], tmp_path / "daemon.log", clean_env()).start()
    kinds: Counter[str] = Counter()
    hows: Counter[str] = Counter()
    hups = 0
    expected: list[str] = []
    saved: list[str] = []
    k = 0

    def edit(text: str, kind: str) -> None:
        nonlocal hups, k
        kinds[kind] += 1
        how = save(config, text, rng)
        hows[how] += 1
        st = config.stat()
        saved.append(f"{time.time():.3f} ver{k:03d} {kind} {how} {st.st_mtime_ns} "
                     f"{st.st_size} {st.st_ino}")
        if rng.random() < 0.2:
            proc.signal(signal.SIGHUP)
            hups += 1
        time.sleep(rng.uniform(0.02, 0.15))
        assert proc.alive(), proc.text()[-3000:]

    try:
        wait_ready(proc)
        for storm, end_valid in enumerate((False, True)):
            begin = utc_now()
            # After the broken tail (storm 1) or time to read the last save (storm 2).
            due = begin + STORM + (4 * S if end_valid else 10 * S)
            # Quick succession: valid and broken saves, about 40 % valid.
            while utc_now() < begin + STORM:
                k += 1
                valid = version(tmp_path, k, due, steady)
                if rng.random() < 0.4:
                    edit(valid, "valid")
                else:
                    edit(*reversed(broken(valid, rng)))
            # The last valid version...
            k += 1
            edit(version(tmp_path, k, due, steady), "valid")
            expected.append(f"ver{k:03d}")
            if not end_valid:
                # ...stays until the daemon has taken it (its reload line names the
                # deadline it adds), then broken saves follow it.
                taken = f"deadlines added: ver{k:03d}"
                wait_until(lambda: taken in proc.text(), 20, taken)  # noqa: B023 - called here
                for _ in range(rng.randint(3, 6)):
                    k += 1
                    edit(*reversed(broken(version(tmp_path, k, due, steady), rng)))
            assert utc_now() < due - 1 * S, "the storm overran its due time"
            wait_until(passed(due + 2 * S), 40, f"storm {storm + 1}'s due time")
            assert proc.alive(), proc.text()[-3000:]
            delivered = [x["deadline"] for x in read_jsonl(out) if x["deadline"] != "steady"]
            assert delivered == expected, (delivered, expected, "\n".join(saved[-8:]))
    finally:
        status = proc.stop()
    assert status == 0, proc.text()[-3000:]
    logs = proc.text()
    lines = read_jsonl(out)
    assert [x["deadline"] for x in lines].count("steady") == 1
    assert "Traceback" not in logs
    rejected = logs.count("reload rejected: keeping the previous configuration")
    reloads = logs.count("reloaded: ")
    assert rejected >= 3
    report("bad edits", {
        "saves": sum(kinds.values()), "kinds": dict(kinds), "ways": dict(hows), "sighups": hups,
        "reloads_applied": reloads, "reloads_rejected": rejected,
        "running_at_the_end": expected, "steady_deliveries": 1, "crashes": 0,
    }, record_property)


def test_a_same_size_save_within_one_clock_tick_is_reloaded(tmp_path: Path) -> None:
    """A save that leaves size, mtime and inode as they were is still seen.

    File systems stamp mtimes from a coarse clock (a few ms), so two in-place
    saves of the same size in one tick look identical by `stat`. The watch
    compares the file's content. Run in-process, so the test can put the
    mtime back exactly as such a save would leave it.
    """
    out = tmp_path / "out.jsonl"
    later = utc_now() + 3600 * S
    first = version(tmp_path, 1, later, later)
    second = version(tmp_path, 2, utc_now() + 4 * S, later)
    assert len(first) == len(second)
    path = write_config(tmp_path / "config.toml", first)
    # Up (READY=1), and watching the file it has read.
    with daemon_thread(path, heartbeat=0.5, watch_interval=0.2):
        before = path.stat()
        with path.open("r+b") as f:
            f.write(second.encode())
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_mtime_ns, after.st_size, after.st_ino) == \
            (before.st_mtime_ns, before.st_size, before.st_ino)
        wait_until(lambda: [x["deadline"] for x in read_jsonl(out)] == ["ver002"], 10,
                   "the second version's deadline")

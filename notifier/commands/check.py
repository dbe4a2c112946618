"""`notifier check`: validate the config and summarise it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from notifier.commands.common import EX_CONFIG, EX_OK, Result, load_config, warning_lines
from notifier.schedule import planning
from notifier.text import rfc3339


def check(config_path: Path | None, *, strict: bool, clock: Callable[[], datetime]) -> Result:
    """Warnings are notes; with `strict`, any warning makes the status 78."""
    cfg = load_config(config_path)  # also compiles and test-renders template overrides
    nxt = planning.next_notification(cfg.schedule, clock())
    schedule = cfg.schedule
    lines = [f"{cfg.path}: OK: {len(schedule.deadlines)} deadline(s), "
             f"{len(schedule.channels)} channel(s), digest {'on' if schedule.digest else 'off'}"]
    if nxt is None:
        lines.append("next notification: none planned")
    else:
        what = f"{nxt.deadline} ({nxt.title})" if nxt.deadline else nxt.kind
        lines.append(f"next notification: {rfc3339(nxt.at)} {nxt.kind}: {what}")
    return Result("".join(line + "\n" for line in lines),
                  status=EX_CONFIG if strict and cfg.warnings else EX_OK,
                  notes=warning_lines(cfg))

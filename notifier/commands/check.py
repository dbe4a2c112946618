"""`notifier check`: validate the config and summarise it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from notifier.commands.common import EX_CONFIG, EX_OK, Result, load_config, warning_lines
from notifier.schedule import planning
from notifier.text import for_terminal
from notifier.wording import Fmt, plural


def check(config_path: Path | None, *, strict: bool, clock: Callable[[], datetime]) -> Result:
    """Warnings are notes; with `strict`, warnings are errors: printed as errors, with
    no summary (the config is not OK), and the status is 78."""
    cfg = load_config(config_path)  # also compiles and test-renders template overrides
    if strict and cfg.warnings:
        return Result(status=EX_CONFIG, notes=tuple(w.text() for w in cfg.warnings))
    now = clock()
    nxt = planning.next_notification(cfg.schedule, now)
    schedule = cfg.schedule
    lines = [f"{cfg.path}: OK: {plural(len(schedule.deadlines), 'deadline')}, "
             f"{plural(len(schedule.channels), 'channel')}, "
             f"digest {'on' if schedule.digest else 'off'}"]
    if nxt is None:
        lines.append("next notification: none planned")
    else:
        # In the default zone, as the tables write it, with the city: "Mon 7 Dec 08:00, Baku".
        when = Fmt(schedule.zone, now).instant(nxt.at)
        what = nxt.kind if not nxt.deadline \
            else f"{nxt.kind} for {nxt.deadline} ({for_terminal(nxt.title)})"
        lines.append(f"next notification: {when}: {what}")
    return Result("".join(line + "\n" for line in lines), status=EX_OK,
                  notes=warning_lines(cfg))

"""`notifier plan`: what will be sent, when, and where."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from notifier.commands.common import (
    DEFAULT_SPAN,
    Result,
    instant,
    ledger_first_seen,
    load_config,
    until_after_from,
)
from notifier.errors import UsageError
from notifier.messages.render import Renderer
from notifier.output import views
from notifier.schedule import planning


def plan(config_path: Path | None, *, start: datetime | date | None,
         end: datetime | date | None, as_json: bool, with_body: bool,
         clock: Callable[[], datetime]) -> Result:
    """The plan of [start, end) (now and 30 days by default), as a table or JSON."""
    if with_body and not as_json:
        raise UsageError("--body adds the body to JSON items; use it with --json")
    cfg = load_config(config_path, first_seen=ledger_first_seen)
    zone = cfg.schedule.zone
    begin = clock() if start is None else instant(start, zone, "--from")
    finish = begin + DEFAULT_SPAN if end is None else instant(end, zone, "--until")
    until_after_from(begin, finish)
    schedule = cfg.schedule
    messages = Renderer(cfg.templates)
    items = planning.plan(schedule, begin, finish)
    if as_json:
        encoded = views.plan_items(items, schedule, messages, make=views.plan_json,
                                   with_body=with_body)
        return Result(views.json_array(encoded) + "\n")
    from notifier.output.tables import plan_table  # noqa: PLC0415 - rich is slow to import

    shown = views.plan_items(items, schedule, messages, make=views.plan_item)
    return Result(plan_table(shown, schedule.zone, begin), verbatim=True)

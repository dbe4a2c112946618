"""`notifier status`: where each deadline stands at an instant."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime
from pathlib import Path

from notifier.commands.common import (
    Result,
    instant,
    ledger_first_seen,
    load_config,
    readonly_ledger,
)
from notifier.messages.render import Renderer
from notifier.output import views


def status(config_path: Path | None, *, at: datetime | date | None, as_json: bool,
           clock: Callable[[], datetime], states: Collection[str] = (),
           tags: Collection[str] = ()) -> Result:
    """Each deadline at `at` (default now), most urgent first, with its last delivery if
    the ledger has one; only those in one of `states` and with one of `tags`, if given."""
    cfg = load_config(config_path, first_seen=ledger_first_seen)
    t = clock() if at is None else instant(at, cfg.schedule.zone, "--at")
    with readonly_ledger(cfg) as book:
        schedule = cfg.schedule

        def last_of(deadline: str) -> views.LastDelivery | None:
            return None if book is None else views.last_delivery(
                book.last_delivery(deadline, upto=t))

        items = views.status_items(schedule, t, last_of, Renderer(cfg.templates),
                                   states=frozenset(states), tags=frozenset(tags))
    if as_json:
        return Result(views.json_lines(items) + "\n")
    from notifier.output.tables import status_table  # noqa: PLC0415 - rich is slow to import

    filtered = bool(states or tags)
    return Result(status_table(items, schedule.zone, t, filtered=filtered), verbatim=True)

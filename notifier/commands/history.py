"""`notifier history`: the delivery ledger, newest first."""

from __future__ import annotations

from pathlib import Path

from notifier.commands.common import Result, load_config, readonly_ledger
from notifier.output import views


def history(config_path: Path | None, *, deadline: str | None, limit: int | None,
            as_json: bool) -> Result:
    """At most `limit` rows (of `deadline` only, if given); none when there is no ledger."""
    cfg = load_config(config_path)
    with readonly_ledger(cfg) as book:
        rows = [] if book is None else book.history(deadline, limit)
    items = [views.history_item(r) for r in rows]
    if as_json:
        return Result(views.json_lines(items) + "\n")
    from notifier.output.tables import history_table  # noqa: PLC0415 - rich is slow to import

    return Result(history_table(items, cfg.schedule.zone), verbatim=True)

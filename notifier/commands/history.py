"""`notifier history`: the delivery ledger, newest first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from notifier.commands.common import EX_RUNTIME, Result, load_config, readonly_ledger
from notifier.output import views
from notifier.text import one_line


def history(config_path: Path | None, *, deadline: str | None, limit: int | None,
            as_json: bool, clock: Callable[[], datetime]) -> Result:
    """At most `limit` rows (of `deadline` only, if given); none when there is no ledger.

    A `deadline` neither in the config nor in the ledger is an error: most
    likely a typo, which an empty history would hide.
    """
    cfg = load_config(config_path)
    with readonly_ledger(cfg) as book:
        rows = [] if book is None else book.history(deadline, limit)
        # A deadline since removed from the config still has its history.
        known = deadline is None or bool(rows) \
            or any(d.id == deadline for d in cfg.schedule.deadlines) \
            or (book is not None and bool(book.history(deadline, 1)))
    if not known:
        return Result(status=EX_RUNTIME, notes=(
            f"no such deadline: {one_line(repr(deadline), 100)} is neither in the config"
            " nor in the ledger",))
    items = [views.history_item(r) for r in rows]
    if as_json:
        return Result(views.json_lines(items) + "\n")
    from notifier.output.tables import history_table  # noqa: PLC0415 - rich is slow to import

    return Result(history_table(items, cfg.schedule.zone, clock(), deadline), verbatim=True)

"""Human tables for `plan`, `status` and `history` (rich, imported only here), as text."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from notifier.messages.wording import move_verb


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _local(text: str | None, zone: ZoneInfo) -> str:
    if not text:
        return ""
    return _instant(text).astimezone(zone).strftime("%a %d %b %Y %H:%M")


def _cells(*values: str) -> list[Text]:
    """Cells shown as written: a title, reason or error with "[/]" or "[bold]" in it
    is the user's text, not rich markup (which would drop it, or raise)."""
    return [Text(v) for v in values]


def _shown(*renderables: Table | str) -> str:
    """What printing `renderables` to standard output would write there: styled for a
    terminal, else plain and 160 columns wide."""
    console = Console(soft_wrap=False, width=160 if not Console().is_terminal else None)
    with console.capture() as captured:
        for renderable in renderables:
            console.print(renderable)
    return captured.get()


def plan_table(items: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    table = Table(title=f"plan ({zone.key})", show_lines=False)
    for column in ("at", "deadline", "kind", "channels", "message"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*_cells(
            _local(item["at"], zone), item["deadline"] or "", item["kind"],
            ", ".join(item["channels"]), item["title"],
        ))
    return _shown(table) if items else _shown(table, "nothing planned in that interval")


def _history(item: dict[str, Any], zone: ZoneInfo) -> str:
    """Each move of the due known at the status's instant, with its reason."""
    moves: list[str] = []
    for before, stage in itertools.pairwise(item["history"]):
        if not stage["known"]:
            continue
        text = move_verb(_instant(before["due"]), _instant(stage["due"]))
        if stage["announced"]:
            text += f" on {_local(stage['announced'], zone)}"
        text += f" to {_local(stage['due'], zone)}"
        if stage["reason"]:
            text += f": {stage['reason']}"
        moves.append(text)
    return "; ".join(moves)


def status_table(items: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    table = Table(title=f"status ({zone.key})")
    for column in ("deadline", "state", "due", "original due", "history", "left", "next",
                   "last delivery"):
        table.add_column(column, overflow="fold")
    for item in items:
        nxt = item["next"]
        last = item["last_delivery"]
        table.add_row(*_cells(
            item["deadline"], item["state"], _local(item["effective_due"], zone),
            _local(item["original_due"], zone) if item["original_due"] != item["effective_due"]
            else "", _history(item, zone), item["time_left"] or "",
            f"{nxt['kind']} {_local(nxt['at'], zone)}" if nxt else "",
            f"{last['state']} {last['channel']} {_local(last['at'], zone)}" if last else "",
        ))
    return _shown(table)


def history_table(items: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    table = Table(title="history")
    for column in ("updated", "key", "channel", "state", "attempts", "error"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*_cells(
            _local(item["updated_at"], zone), item["key"], item["channel"], item["state"],
            str(item["attempts"]), item["last_error"] or "",
        ))
    return _shown(table)

"""Human tables for `plan`, `status` and `history` (rich, imported only here), as text."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from notifier.schedule.model import Stage
from notifier.text import for_terminal
from notifier.wording import Fmt, move_verb


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _local(text: str | None, fmt: Fmt) -> str:
    """An instant of a table in its zone, as messages write one: "Thu 12 Nov 09:00"."""
    return fmt.moment(_instant(text)) if text else ""


def _stage(entry: dict[str, Any]) -> Stage:
    """A `status` history entry back as the Stage it shows."""
    return Stage(due=_instant(entry["due"]), announced=None,
                 day=date.fromisoformat(entry["day"]) if entry["day"] else None)


class _Dues:
    """A deadline's dues as messages write them, in its own zone: "by the end of Sun
    28 Mar" for a date due, "Wed 25 Nov 17:00" for a timed one, the city added when
    that zone is not the table's."""

    def __init__(self, item: dict[str, Any], table: Fmt, ref: datetime) -> None:
        same = item["zone"] == table.zone.key
        self.fmt = table if same else Fmt(ZoneInfo(item["zone"]), ref)
        self.city = "" if self.fmt is table else f", {self.fmt.city}"

    def long(self, entry: dict[str, Any]) -> str:
        return self.fmt.due_long(_stage(entry), city=bool(self.city))

    def short(self, entry: dict[str, Any]) -> str:
        """Where the column says what it is ("to ..."): the day alone for a date due."""
        return self.fmt.stage_long(_stage(entry)) + self.city


def _cells(*values: str) -> list[Text]:
    """Cells shown as written: a title, reason or error with "[/]" or "[bold]" in it
    is the user's text, not rich markup (which would drop it, or raise); one with a
    terminal escape in it shows the escape, as `check` does (`for_terminal`)."""
    return [Text(for_terminal(v)) for v in values]


def _shown(*renderables: Table | str) -> str:
    """What printing `renderables` to standard output would write there: styled for a
    terminal, else plain and 160 columns wide."""
    console = Console(soft_wrap=False, width=160 if not Console().is_terminal else None)
    with console.capture() as captured:
        for renderable in renderables:
            console.print(renderable)
    return captured.get()


def plan_table(items: Sequence[dict[str, Any]], zone: ZoneInfo, ref: datetime) -> str:
    """`ref` (the plan's start) is the year a date need not repeat."""
    fmt = Fmt(zone, ref)
    table = Table(title=f"plan ({zone.key})", show_lines=False)
    for column in ("at", "deadline", "kind", "channels", "message"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*_cells(
            _local(item["at"], fmt), item["deadline"] or "", item["kind"],
            ", ".join(item["channels"]), item["title"],
        ))
    return _shown(table) if items else _shown("nothing planned in that interval")


def _history(item: dict[str, Any], fmt: Fmt, dues: _Dues) -> str:
    """Each move of the due known at the status's instant, with its reason."""
    moves: list[str] = []
    for before, stage in itertools.pairwise(item["history"]):
        if not stage["known"]:
            continue
        text = move_verb(_instant(before["due"]), _instant(stage["due"]))
        if stage["announced"]:
            text += f" on {_local(stage['announced'], fmt)}"
        text += f" to {dues.short(stage)}"
        if stage["reason"]:
            text += f": {stage['reason']}"
        moves.append(text)
    return "; ".join(moves)


def _left(item: dict[str, Any], fmt: Fmt) -> str:
    """Time left, or when (and why) a closed deadline was closed."""
    if item["closed_at"]:
        text = f"closed {_local(item['closed_at'], fmt)}"
        return f"{text}: {item['note']}" if item["note"] else text
    return item["time_left"] or ""


def status_table(items: Sequence[dict[str, Any]], zone: ZoneInfo, ref: datetime, *,
                 filtered: bool = False) -> str:
    """`ref` is the instant asked about; `filtered`: items were chosen by --state/--tag."""
    fmt = Fmt(zone, ref)
    table = Table(title=f"status ({zone.key})")
    for column in ("deadline", "state", "due", "original due", "history", "left", "next",
                   "last delivery"):
        table.add_column(column, overflow="fold")
    for item in items:
        nxt = item["next"]
        last = item["last_delivery"]
        dues = _Dues(item, fmt, ref)
        history = item["history"]
        effective = next((e for e in reversed(history) if e["known"]), history[0])
        table.add_row(*_cells(
            item["deadline"], item["state"], dues.long(effective),
            dues.long(history[0]) if item["original_due"] != item["effective_due"]
            else "",
            _history(item, fmt, dues), _left(item, fmt),
            f"{nxt['kind']} {_local(nxt['at'], fmt)}" if nxt else "",
            f"{last['state']} {last['channel']} {_local(last['at'], fmt)}" if last else "",
        ))
    if items:
        return _shown(table)
    return _shown("no deadline in that state or with that tag" if filtered
                  else "no deadlines in the config")


def history_table(items: Sequence[dict[str, Any]], zone: ZoneInfo, ref: datetime,
                  deadline: str | None = None) -> str:
    """`ref` (now) is the year a date need not repeat; `deadline`: the rows are its."""
    fmt = Fmt(zone, ref)
    table = Table(title=f"history ({zone.key})")
    for column in ("updated", "key", "channel", "state", "attempts", "error"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*_cells(
            _local(item["updated_at"], fmt), item["key"], item["channel"], item["state"],
            str(item["attempts"]), item["last_error"] or "",
        ))
    if items:
        return _shown(table)
    if deadline is not None:
        return _shown(f"the ledger has no deliveries of {for_terminal(deadline)} yet")
    return _shown("the ledger has no deliveries yet")

"""Catch-up after downtime or a late wake-up: late sends, skips and one summary per channel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, cast

from notifier.daemon.reload import Loaded
from notifier.daemon.timeline import find_notification
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ledger import DeliveryRecord, DeliveryState, Ledger, Skip
from notifier.messages.render import Message
from notifier.schedule import catchup, planning
from notifier.schedule.model import Kind, Notification, Schedule
from notifier.text import rfc3339
from notifier.wording import Fmt, plural

log = logging.getLogger("notifier.daemon")

STALE_AFTER = timedelta(minutes=5)
"""A notification found this late (downtime, suspend, clock jump) follows the catch-up rules."""

BEHIND = "late (suspend or clock jump)"
"""Why a catch-up while running skipped what it skipped (the ledger keeps the reason)."""

Cause = Literal["down", "behind"]


class CatchUp:
    """Applies the catch-up rule (schedule/catchup.py) to what was missed, and sends
    its summaries."""

    def __init__(self, ledger: Ledger, dispatcher: Dispatcher,
                 submit: Callable[[Notification, tuple[str, ...]], None], *,
                 origin: datetime | None, stop_at: datetime | None) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self._submit_late = submit
        """Hands a late first attempt over (the daemon keeps the "alive" mark behind it)."""
        self.origin = origin
        self.stop_at = stop_at

    def after_downtime(self, loaded: Loaded, now: datetime, since: datetime | None) -> None:
        if since is None or since >= now:
            return
        start = since - STALE_AFTER
        if self.origin is not None:
            start = max(start, self.origin)
        # Up to and including `now`: the timeline takes over right after it.
        end = now + timedelta(microseconds=1)
        if self.stop_at is not None:
            end = min(end, self.stop_at)
        missed = planning.plan(loaded.schedule, start, end)
        # In the default zone, as `history` and the summary write times.
        since_text = Fmt(loaded.schedule.zone, now).instant(since)
        self._catch_up(loaded, missed, now, reason=f"notifier was down since {since_text}")

    def behind(self, loaded: Loaded, stale: list[Notification], now: datetime) -> None:
        """Notifications the running daemon found too late (a suspend, a clock jump)."""
        self._catch_up(loaded, stale, now, reason=BEHIND, cause="behind")

    def _catch_up(self, loaded: Loaded, candidates: list[Notification], now: datetime, *,
                  reason: str, cause: Cause = "down") -> None:
        states = self.ledger.states(n.key for n in candidates)
        missed: list[Notification] = []
        routes: dict[str, tuple[str, ...]] = {}
        for n in candidates:
            todo = tuple(c for c in n.channels if (n.key, c) not in states)
            if todo:
                missed.append(n)
                routes[n.key] = todo
        decision = catchup.catch_up(missed, now, loaded.cfg.catchup)
        if not decision:
            return
        log.warning("%s: %s: sending %d late, skipping %d", reason,
                    plural(len(missed), "missed notification"), len(decision.send),
                    len(decision.skip))
        # Before any summary is handed over: a summary's text is built from these rows.
        self.ledger.mark_skipped_many(
            (Skip(n.key, c, n.deadline, n.kind, n.at)
             for n in decision.skip for c in routes[n.key]),
            now=now, reason=reason)
        for n in decision.send:
            # Sent because it was missed: marked late ("Sent late by ..."), however
            # short the downtime was.
            self._submit_late(n, routes[n.key])
        channels = sorted({c for n in (*decision.skip, *decision.send) for c in routes[n.key]})
        for channel in channels:
            skipped = [n for n in decision.skip if channel in routes[n.key]]
            late = [n for n in decision.send if channel in routes[n.key]]
            if skipped:
                summary, message = _summary(loaded, channel, skipped, late, now, cause)
                self.dispatcher.submit(summary, fixed=message)

    def retry_summary(self, loaded: Loaded, rec: DeliveryRecord, now: datetime) -> None:
        """Send a catch-up summary again, this run's or one an earlier run had in flight
        at a crash (SPEC 3: a send in flight at a crash is sent again).

        A summary is not in the plan: its text is built again from the ledger,
        which recorded the skips it reports before it was handed over. The
        deliveries it reports as sent late are those of its channel planned at
        or before it and first claimed at or after it (the catch-up hands them
        over just before the summary, on the same channel).
        """
        at, channel = rec.planned_at, rec.channel
        rows = [r for r in self._rows_updated_since(at) if r.channel == channel]
        skipped = [r for r in rows if r.state == DeliveryState.SKIPPED and r.updated_at == at]
        if not skipped:
            self.ledger.mark_failed(rec.key, channel, now=now,
                                    error="catch-up summary whose skips the ledger no longer has")
            return
        late = [r for r in rows if r.late and r.kind != "summary"
                and r.planned_at <= at <= r.created_at]
        cause: Cause = "behind" if skipped[0].last_error == BEHIND else "down"
        summary, message = _summary(loaded, channel, _as_planned(loaded.schedule, skipped),
                                    _as_planned(loaded.schedule, late), at, cause)
        self.dispatcher.submit(summary, channels=(channel,), attempt=rec.attempts + 1,
                               fixed=message)

    def _rows_updated_since(self, at: datetime) -> list[DeliveryRecord]:
        """The ledger's rows updated at or after `at` (its history is newest first)."""
        limit = 1024
        while True:
            rows = self.ledger.history(limit=limit)
            if len(rows) < limit or rows[-1].updated_at < at:
                return [r for r in rows if r.updated_at >= at]
            limit *= 8


def _summary(loaded: Loaded, channel: str, skipped: list[Notification],
             late: list[Notification], now: datetime, cause: Cause,
             ) -> tuple[Notification, Message]:
    """The catch-up summary made at `now` for one channel, and its text."""
    message = loaded.renderer.render_summary(skipped, late, loaded.schedule, now=now, cause=cause)
    summary = Notification(
        at=now, kind="summary", deadline=None, due=None, offset=None, seq=None,
        channels=(channel,), title=message.title, key=f"summary/{rfc3339(now)}", stage=None,
    )
    return summary, message


def _as_planned(schedule: Schedule, rows: list[DeliveryRecord]) -> list[Notification]:
    """The planned notifications behind ledger rows, in plan order; a row the
    schedule no longer plans stands for itself (its deadline's id as its title)."""
    out = []
    for r in rows:
        n = find_notification(schedule, r)
        if n is None:
            n = Notification(
                at=r.planned_at, kind=cast(Kind, r.kind),  # a row's kind is a planned one's
                deadline=r.deadline, due=None, offset=None, seq=None, channels=(r.channel,),
                title=r.deadline or r.kind, key=r.key, stage=None)
        out.append(n)
    return sorted(out, key=planning.order_key)

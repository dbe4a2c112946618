"""Catch-up after downtime or a late wake-up: late sends, skips and one summary per channel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from notifier.daemon.reload import Loaded
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ledger import DeliveryRecord, Ledger, Skip
from notifier.messages.render import Message
from notifier.schedule import catchup, planning
from notifier.schedule.model import Notification
from notifier.text import rfc3339

log = logging.getLogger("notifier.daemon")

STALE_AFTER = timedelta(minutes=5)
"""A notification found this late (downtime, suspend, clock jump) follows the catch-up rules."""

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
        self._summaries: dict[tuple[str, str], tuple[Notification, Message]] = {}
        """Catch-up summaries sent by this process, kept so that a failed one can be retried."""

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
        self.catch_up(loaded, missed, now,
                      reason=f"notifier was down since {since:%Y-%m-%d %H:%M} UTC")

    def catch_up(self, loaded: Loaded, candidates: list[Notification], now: datetime, *,
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
        log.warning("%s: %d missed notification(s): sending %d late, skipping %d",
                    reason, len(missed), len(decision.send), len(decision.skip))
        self.ledger.mark_skipped_many(
            (Skip(n.key, c, n.deadline, n.kind, n.at)
             for n in decision.skip for c in routes[n.key]),
            now=now, reason=reason)
        for n in decision.send:
            # Sent because it was missed: marked late ("Sent late by ..."), however
            # short the downtime was.
            self._submit_late(n, routes[n.key])
        self._send_summaries(loaded, decision, routes, now, cause)

    def _send_summaries(self, loaded: Loaded, decision: catchup.CatchUp,
                        routes: dict[str, tuple[str, ...]], now: datetime, cause: Cause) -> None:
        channels = sorted({c for n in (*decision.skip, *decision.send) for c in routes[n.key]})
        for channel in channels:
            skipped = [n for n in decision.skip if channel in routes[n.key]]
            late = [n for n in decision.send if channel in routes[n.key]]
            if not skipped:
                continue
            message = loaded.renderer.render_summary(skipped, late, loaded.schedule,
                                                     now=now, cause=cause)
            summary = Notification(
                at=now, kind="summary", deadline=None, due=None, offset=None, seq=None,
                channels=(channel,), title=message.title,
                key=f"summary/{rfc3339(now)}", stage=None,
            )
            if len(self._summaries) >= 100:
                self._summaries.pop(next(iter(self._summaries)))
            self._summaries[(summary.key, channel)] = (summary, message)
            self.dispatcher.submit(summary, fixed=message)

    def retry_summary(self, rec: DeliveryRecord, now: datetime) -> None:
        """A catch-up summary is not in the plan: retry the one this process rendered."""
        kept = self._summaries.get((rec.key, rec.channel))
        if kept is None:
            self.ledger.mark_failed(rec.key, rec.channel, now=now,
                                    error="catch-up summary of an earlier run; not sent again")
            return
        n, message = kept
        self.dispatcher.submit(n, channels=(rec.channel,), attempt=rec.attempts + 1,
                               fixed=message)

"""A channel's lane in the dispatcher: its jobs, its workers, and what it needs of the channel."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from notifier.delivery.outcomes import OutgoingMessage
from notifier.messages.render import Message
from notifier.schedule.model import Notification, Schedule

__all__ = ["Job", "Lane", "Render", "Sender", "parallel_of"]


class Sender(Protocol):
    """What the dispatcher needs of a channel (channels.ChannelSender is one).

    A sender may also have an int attribute `parallel`: how many sends it
    takes at once (1 if absent).
    """

    def send(self, msg: OutgoingMessage, /) -> object: ...


def parallel_of(sender: Sender | None) -> int:
    """How many sends `sender` takes at once."""
    value: object = getattr(sender, "parallel", 1)
    return value if isinstance(value, int) and value > 0 else 1


Render = Callable[[Notification, Schedule, datetime], Message]


@dataclass(frozen=True)
class Job:
    """One notification to deliver to one channel."""

    notification: Notification
    channel: str
    attempt: int = 1
    fixed: Message | None = None
    """A pre-rendered message (catch-up summaries)."""
    claimed: bool = False
    """Claimed in the ledger: when it was handed over (retries), or in a batch since."""
    late: bool = False
    """Marked late whatever its delay (a catch-up after downtime); once claimed,
    whether the claim recorded it as late."""


@dataclass(eq=False)
class Lane:
    """One channel's jobs and workers; everything below is guarded by `cond`."""

    channel: str
    limit: int = 1
    """Sends in flight at most: the channel sender's `parallel`."""
    inbox: deque[Job] = field(default_factory=deque)
    """Handed over, in order; not claimed yet unless `Job.claimed`."""
    ready: deque[Job] = field(default_factory=deque)
    """Claimed by a batch, not started yet."""
    busy: int = 0
    """Workers claiming or sending."""
    claiming: bool = False
    stopped: bool = False
    threads: list[threading.Thread] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

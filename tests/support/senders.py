"""Channel senders for a Dispatcher built in the test process."""

from __future__ import annotations

from notifier.delivery.channels import ChannelSender
from notifier.schedule.model import Schedule


def senders(schedule: Schedule, *, timeout: float, parallel: int | None = None
            ) -> dict[str, ChannelSender]:
    """A ChannelSender per channel; `parallel` caps the sends in flight (default: what
    each channel allows)."""
    out = {name: ChannelSender(ch, timeout=timeout) for name, ch in schedule.channels.items()}
    if parallel is not None:
        for sender in out.values():
            sender.parallel = min(sender.parallel, parallel)
    return out

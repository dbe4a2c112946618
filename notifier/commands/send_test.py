"""`notifier send-test CHANNEL`: the `test` message to each of a channel's URLs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from notifier.commands.common import EX_CONFIG, EX_OK, EX_RUNTIME, Result, load_config
from notifier.delivery.appriseset import load_plugin_paths
from notifier.delivery.channels import send_test as send_to_each_url
from notifier.errors import UsageError
from notifier.messages.render import Renderer, TemplateProblem
from notifier.text import for_terminal


def send_test(config_path: Path | None, *, channel: str,
              clock: Callable[[], datetime]) -> Result:
    """One line per URL; the status is 0 only if there are URLs and every send worked."""
    cfg = load_config(config_path)
    chan = cfg.schedule.channels.get(channel)
    if chan is None:
        names = ", ".join(sorted(cfg.schedule.channels)) or "none"
        raise UsageError(f"no channel {channel!r} in {cfg.path} (channels: {names})")
    at = clock().replace(microsecond=0)
    try:
        message = Renderer(cfg.templates).render_test(channel, now=at, zone=cfg.schedule.zone)
    except TemplateProblem as e:
        return Result(notes=(f"Error: {cfg.path}: {e}",), status=EX_CONFIG)
    load_plugin_paths(list(cfg.plugin_paths))
    results = send_to_each_url(chan, title=message.title, body=message.body, now=at,
                               timeout=cfg.send_timeout.total_seconds())
    # A reason is a server's or a plugin's text: written out so that it cannot
    # recolour or rewrite the terminal, as tables and logs write it.
    text = "".join(f"{'ok    ' if r.ok else 'FAILED'} {for_terminal(r.url_private)}"
                   + (f": {for_terminal(r.error)}" if r.error else "") + "\n" for r in results)
    return Result(text, status=EX_OK if results and all(r.ok for r in results) else EX_RUNTIME)

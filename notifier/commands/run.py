"""`notifier run`: the daemon."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from notifier.commands.common import (
    Result,
    load_config,
    start_logging,
    warning_lines,
    writable_ledger,
)
from notifier.config.loader import NOT_SEEN, Config, FirstSeen
from notifier.daemon.loop import run_daemon
from notifier.delivery.ledger import Ledger, open_ledger
from notifier.errors import LedgerError
from notifier.logs import setup_logging

log = logging.getLogger("notifier.daemon")


def run(config_path: Path | None) -> Result:
    """Runs until stopped; the config's warnings are logged as the daemon starts, as
    a reload logs them (a level, and a priority under journald)."""
    opened: list[Ledger] = []

    def first_seen(where: Path) -> FirstSeen:
        # The ledger opens as soon as the config names it, so that the schedule is
        # loaded with its first-seen times; one that does not open is reported after
        # the config's own problems.
        try:
            opened.append(open_ledger(where, owner=True))
            return FirstSeen(opened[0].first_seen(), datetime.now(UTC))
        except LedgerError:
            return NOT_SEEN

    cfg = load_config(config_path, for_reload=True, first_seen=first_seen)
    start_logging(cfg)
    for line in warning_lines(cfg):
        log.warning("start: %s", line)
    book = opened[0] if opened else writable_ledger(cfg, owner=True)
    secrets = set(cfg.secrets)

    def relog(new: Config) -> None:
        # A reload may bring new secrets; old ones stay redacted too.
        secrets.update(new.secrets)
        setup_logging(new.log_level, secrets=secrets)

    try:
        status = run_daemon(cfg, book, on_reload=relog)
    except LedgerError as e:
        raise LedgerError(f"ledger: {e}") from e
    finally:
        book.close()
    return Result(status=status)

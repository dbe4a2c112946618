"""`notifier run`: the daemon."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from notifier.commands.common import (
    Result,
    load_config,
    start_logging,
    warning_lines,
    writable_ledger,
)
from notifier.config.loader import Config
from notifier.daemon.loop import run_daemon
from notifier.errors import LedgerError
from notifier.logs import setup_logging


def run(config_path: Path | None, *, warn: Callable[[str], None]) -> Result:
    """Runs until stopped; the config's warnings go to `warn` before the daemon starts."""
    cfg = load_config(config_path, for_reload=True)
    start_logging(cfg)
    for line in warning_lines(cfg):
        warn(line)
    book = writable_ledger(cfg)
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

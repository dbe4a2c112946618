"""The environment a notifier subprocess gets: nothing of the runner's that changes its config."""

from __future__ import annotations

import os

DROPPED_PREFIXES = (
    "NOTIFIER_",                 # config overrides (pydantic-settings)
    "NOTIFY_",                   # NOTIFY_SOCKET: systemd notification
    "WATCHDOG_",                 # WATCHDOG_USEC / WATCHDOG_PID
    "JOURNAL_",                  # JOURNAL_STREAM: log format
    "CREDENTIALS_DIRECTORY",     # secrets from credential files
    "STATE_DIRECTORY",           # default ledger path
    "CONFIGURATION_DIRECTORY",   # default config path
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything systemd or the user set that the daemon
    reads, unbuffered output, then `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env

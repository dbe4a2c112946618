"""Where the config file and the ledger are (SPEC section 4, paths)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_config_path(env: Mapping[str, str]) -> Path:
    """$NOTIFIER_CONFIG, else $CONFIGURATION_DIRECTORY/config.toml, else /etc/notifier."""
    if env.get("NOTIFIER_CONFIG"):
        return Path(env["NOTIFIER_CONFIG"])
    if env.get("CONFIGURATION_DIRECTORY"):
        return Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
    return Path("/etc/notifier/config.toml")


def ledger_path(state: str | None, env: Mapping[str, str]) -> Path:
    """`[notifier] state`, else $STATE_DIRECTORY/notifier.db, else the XDG state dir."""
    if state:
        return Path(state).expanduser()
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / "notifier.db"
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "state")
    return Path(base).expanduser() / "notifier" / "notifier.db"

"""Where the config file and the ledger are (SPEC section 4, paths)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from notifier.errors import ConfigError, Problem

_NO_FILE = "empty path: give the config file's path"


def config_path(given: Path | None, env: Mapping[str, str]) -> Path:
    """The config file to read: `-c` if given, else the default. An empty path is a
    config error naming where it was given (exit 78, as a missing file), not the
    working directory read as a file (`-c ''`) nor the default taken silently
    (`NOTIFIER_CONFIG=`). `-c ''` reaches here as `.` (click's Path), which names
    no file either."""
    if given is not None:
        if given == Path():
            raise ConfigError([Problem("-c", 0, 0, "", f"{_NO_FILE} (an empty path, or `.`, "
                                       "is the working directory)")])
        return given
    if env.get("NOTIFIER_CONFIG") == "":
        raise ConfigError([Problem("NOTIFIER_CONFIG", 0, 0, "",
                                   f"{_NO_FILE}, or unset it for the default")])
    return default_config_path(env)


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

"""Config files: one builder for the whole file, one for a [[deadlines]] table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from support.times import D, rfc3339

TomlValue = str | int | bool | datetime | Sequence[str]


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def toml_value(value: TomlValue) -> str:
    """A TOML literal (datetimes as offset datetimes with microseconds, in UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, str):
        return toml_str(value)
    return "[" + ", ".join(toml_str(v) for v in value) + "]"


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write a config file (mode 0600 unless told: it may hold channel secrets)."""
    path.write_text(text, "utf-8")
    path.chmod(mode)
    return path


def config_toml(*, state: Path, channels: Mapping[str, str | Sequence[str]], deadlines: str,
                delivery: Mapping[str, TomlValue] | None = None, log_level: str = "INFO",
                kinds: Mapping[str, Sequence[str]] | None = None, zone: str = "UTC",
                extra: str = "") -> str:
    """A whole config: `channels` maps a name to a URL (or a list of URLs), `kinds` a
    channel to the kinds it takes, `deadlines` is [[deadlines]] text (see deadline_toml),
    `extra` more tables as text."""
    parts = [f"[notifier]\nstate = {toml_str(str(state))}\nlog_level = {toml_str(log_level)}\n",
             f"[defaults]\ntimezone = {toml_str(zone)}\nreminders = []\n"]
    if delivery:
        parts.append("[delivery]\n" + "".join(f"{k} = {toml_value(v)}\n"
                                              for k, v in delivery.items()))
    if extra:
        parts.append(extra)
    for name, url in channels.items():
        table = f"[channels.{name}]\n"
        if isinstance(url, str):
            table += f"url = {toml_str(url)}\n"
        else:
            table += f"urls = {toml_value(url)}\n"
        if kinds and name in kinds:
            table += f"kinds = {toml_value(kinds[name])}\n"
        parts.append(table)
    parts.append(deadlines)
    return "\n".join(parts)


def deadline_toml(ident: str, due: datetime, *, announced: datetime | None = None,
                  channels: Sequence[str] | None = None, reminders: Sequence[str] = (),
                  title: str | None = None, extra: str = "") -> str:
    """One [[deadlines]] table; announced 30 days before the due unless given."""
    lines = ["[[deadlines]]", f"id = {toml_str(ident)}",
             f"title = {toml_str(title or 'Handover ' + ident)}",
             f"due = {rfc3339(due)}",
             f"announced = {rfc3339(announced or due - 30 * D)}",
             f"reminders = {toml_value(list(reminders))}"]
    if channels is not None:
        lines.append(f"channels = {toml_value(list(channels))}")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n\n"


def jsonl_config(tmp: Path, deadlines: str, *, more_channels: Mapping[str, str] | None = None,
                 delivery: Mapping[str, TomlValue] | None = None) -> str:
    """A DEBUG-logging config with its ledger at tmp/state.db and a channel "out" writing
    tmp/out.jsonl (and `more_channels`)."""
    return config_toml(state=tmp / "state.db", log_level="DEBUG", deadlines=deadlines,
                       delivery=delivery,
                       channels={"out": f"jsonl://{tmp / 'out.jsonl'}", **(more_channels or {})})

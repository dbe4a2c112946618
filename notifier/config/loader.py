"""Load a config file into a resolved `Config`, or raise `ConfigError` with every problem located.

Reading the file (tomlread.py), validating it (schema.py) and resolving it
(resolve.py) happen here, a batch of deadlines at a time where the file
allows (batches.py); nothing is applied anywhere until the whole file is good.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from notifier.config.batches import load_in_parts
from notifier.config.located import Collector
from notifier.config.resolve import Config, resolve
from notifier.config.schema import load_settings
from notifier.config.secrets import raw_secrets, warn_if_exposed
from notifier.config.tomlread import parse_toml, read_text
from notifier.errors import ConfigError, Problem
from notifier.schedule.model import Deadline, fill_announced

__all__ = ["Config", "fill_first_seen", "first_seen_ids", "load"]


def load(
    path: Path, *, check_urls: bool = True, in_parts: bool = True,
    previous: Config | None = None, for_reload: bool = False,
) -> Config:
    """Read, validate and resolve `path`. Raises ConfigError; never half-applies.

    `for_reload` (the daemon): keep what a later `load(previous=...)` needs to
    take unchanged deadline tables over (a digest of each table: 0.2 s at
    100,000 deadlines, which `check` and `plan` need not pay).

    With `previous` (a reload), deadline tables whose text and inherited
    defaults are unchanged are taken from it instead of being read again.
    `in_parts=False` reads a large schedule whole (the same result, at twice
    the peak memory; for tests of `load_in_parts`).

    NOTIFIER_* variables and $CREDENTIALS_DIRECTORY come from the process
    environment, as pydantic-settings reads them.
    """
    env = dict(os.environ)
    # A large schedule allocates millions of objects and no cycles: the cyclic
    # collector would only re-scan them, over and over (half the validation
    # time at 100,000 deadlines). It is back on, as it was, when this returns.
    collecting = gc.isenabled()
    gc.disable()
    try:
        text = read_text(path)
        if in_parts:
            fast = load_in_parts(path, text, env, check_urls=check_urls, reuse=previous,
                                  remember=for_reload or previous is not None)
            if fast is not None:
                return fast
        data = parse_toml(str(path), text)
        # Taken now: `_load` frees the raw data once it is validated.
        secrets = raw_secrets(data, env)
        col = Collector(str(path), text, env)
        try:
            return _load(path, data, col, env, check_urls=check_urls)
        except ConfigError as e:
            raise ConfigError([p.scrubbed(secrets) for p in e.problems]) from None
    finally:
        if collecting:
            gc.enable()


def _load(
    path: Path, data: dict[str, Any], col: Collector, env: Mapping[str, str], *,
    check_urls: bool,
) -> Config:
    """Validate and resolve `data`; it is emptied once validated (its memory is freed)."""
    for key in data:
        if key.startswith("_"):
            col.add((key,), "unknown key")
    if col.problems:
        raise ConfigError(col.problems)
    creds = env.get("CREDENTIALS_DIRECTORY")
    try:
        settings = load_settings(data, Path(creds) if creds else None)
    except ValidationError as e:
        for err in e.errors(include_input=False, include_url=False):
            col.add(tuple(err["loc"]), _clean(err["msg"]))
        raise ConfigError(col.problems) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), 1, 1, "", "nested too deeply")]) from None
    # The validated settings hold everything from here on; the raw tables of a
    # large schedule are as big again.
    data.clear()
    config = resolve(settings, path, col, env, check_urls=check_urls)
    if col.problems:
        raise ConfigError(col.problems)
    warn_if_exposed(path, settings, col)
    return replace(config, warnings=tuple(col.warnings))


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    if msg == "Extra inputs are not permitted":
        return "unknown key"
    return msg


def first_seen_ids(deadlines: Iterable[Deadline]) -> list[str]:
    """Ids whose `announced` defaults to when a running daemon first saw them."""
    ids: list[str] = []
    for d in deadlines:
        ids.append(d.id)
        if len(d.stages) > 1:
            ids.extend(f"{d.id}/ext/{k}" for k in range(1, len(d.stages)))
    return ids


def fill_first_seen(deadlines: Iterable[Deadline], seen: Mapping[str, datetime]) -> None:
    """Fill every unset `announced` of `deadlines` from first-seen times, in place.

    Only for deadlines a load has just made, before anything else holds them
    (the daemon's `_prepare`, a command's `effective_schedule`): building a
    filled copy of 100,000 deadlines took about a second of the daemon's start,
    and held two schedules at once.
    """
    for d in deadlines:
        for k, stage in enumerate(d.stages):
            if stage.announced is None:
                at = seen.get(d.id if k == 0 else f"{d.id}/ext/{k}")
                if at is not None:
                    fill_announced(d, stage, at)

"""Load a config file into a resolved `Config`, or raise `ConfigError` with every problem located.

Reading the file (tomlread.py), validating it (schema.py) and resolving it
(resolve.py) happen here, a batch of deadlines at a time where the file
allows (batches.py); nothing is applied anywhere until the whole file is good.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from notifier.config import explain, paths
from notifier.config.batches import load_in_parts
from notifier.config.checks import EMPTY_FILE
from notifier.config.located import Collector, FileIndex
from notifier.config.overrides import read_overrides
from notifier.config.resolve import NOT_SEEN, Config, FirstSeen, first_seen_key, resolve
from notifier.config.schema import Settings, load_settings
from notifier.config.secrets import raw_secrets, warn_if_exposed
from notifier.config.tomlread import parse_toml, read_text
from notifier.errors import ConfigError, Problem, in_order
from notifier.schedule.model import Deadline

__all__ = ["NOT_SEEN", "Config", "FirstSeen", "FirstSeenFrom", "first_seen_ids", "load"]


FirstSeenFrom = Callable[[Path], FirstSeen]
"""The first-seen times kept in the ledger at a path: the config names its ledger."""


def load(
    path: Path, *, check_urls: bool = True, in_parts: bool = True,
    previous: Config | None = None, for_reload: bool = False,
    first_seen: FirstSeen | FirstSeenFrom = NOT_SEEN,
) -> Config:
    """Read, validate and resolve `path`. Raises ConfigError; never half-applies.

    `for_reload` (the daemon): keep what a later `load(previous=...)` needs to
    take unchanged deadline tables over (a digest of each table: 0.2 s at
    100,000 deadlines, which `check` and `plan` need not pay).

    With `previous` (a reload), deadline tables whose text and inherited
    defaults are unchanged are taken from it instead of being read again.
    `in_parts=False` reads a large schedule whole (the same result, at twice
    the peak memory; for tests of `load_in_parts`).

    `first_seen` (SPEC 3, live edits) fills every `announced` the file leaves
    out, so the schedule is final as loaded. Given as a function, it is asked
    (at most once) for the ledger's times as soon as the settings, valid, say
    where the ledger is (SPEC 4, paths): before any deadline is resolved.

    NOTIFIER_* variables and $CREDENTIALS_DIRECTORY come from the process
    environment, as pydantic-settings reads them; a problem with one is
    reported against it (overrides.py).
    """
    env = dict(os.environ)
    overrides = read_overrides(env)
    if overrides.problems:
        raise ConfigError(list(overrides.problems))
    asked: list[FirstSeen] = []

    def seen_for(settings: Settings) -> FirstSeen:
        if isinstance(first_seen, FirstSeen):
            return first_seen
        if not asked:  # the whole-file path may follow an attempt in parts
            asked.append(first_seen(paths.ledger_path(settings.notifier.state, env)))
        return asked[0]

    # A large schedule allocates millions of objects and no cycles: the cyclic
    # collector would only re-scan them, over and over (half the validation
    # time at 100,000 deadlines). It is back on, as it was, when this returns.
    collecting = gc.isenabled()
    gc.disable()
    try:
        text = read_text(path)
        # Located once: the whole-file path after a batched attempt that found a
        # problem reuses the positions that attempt indexed.
        index = FileIndex(text)
        if in_parts:
            fast = load_in_parts(path, index, env, check_urls=check_urls, overrides=overrides,
                                 reuse=previous,
                                 remember=for_reload or previous is not None,
                                 seen_for=seen_for)
            if fast is not None:
                return _not_empty(fast, text)
        data = parse_toml(str(path), text)
        # Taken now: `_load` frees the raw data once it is validated.
        secrets = raw_secrets(data, env)
        col = Collector(str(path), index, overrides)
        try:
            return _not_empty(_load(path, data, col, env, seen_for, check_urls=check_urls),
                              text)
        except ConfigError as e:
            # One located at a variable or credential file has its quoted parts
            # hidden already (located.py); scrubbing it again, by every value the
            # environment holds, would cut them out of the product's own words too.
            raise ConfigError([p.scrubbed(secrets) if p.line else p
                               for p in e.problems]) from None
    finally:
        if collecting:
            gc.enable()


def _load(
    path: Path, data: dict[str, Any], col: Collector, env: Mapping[str, str],
    seen_for: Callable[[Settings], FirstSeen], *, check_urls: bool,
) -> Config:
    """Validate and resolve `data`; it is emptied once validated (its memory is freed)."""
    for key, value in data.items():
        if key.startswith("_"):
            col.add((key,), explain.unknown((key,), value), at_key=True)
    if col.problems:
        raise ConfigError(col.problems)
    creds = env.get("CREDENTIALS_DIRECTORY")
    try:
        settings = load_settings(data, Path(creds) if creds else None)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            col.add(explain.location(err), explain.message(err), at_key=explain.about_key(err))
        raise ConfigError(col.problems) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), 1, 1, "", "nested too deeply")]) from None
    except SettingsError:
        # Each variable and credential read well alone a moment ago (overrides.py).
        raise ConfigError([Problem("$CREDENTIALS_DIRECTORY", 0, 0, "",
                                   "a credential file changed while it was read")]) from None
    col.warn_replaced(data)
    # The validated settings hold everything from here on; the raw tables of a
    # large schedule are as big again.
    data.clear()
    config = resolve(settings, path, col, env, seen_for(settings), check_urls=check_urls)
    if col.problems:
        raise ConfigError(col.problems)
    warn_if_exposed(path, settings, col)
    return replace(config, warnings=tuple(in_order(col.warnings)))


def _not_empty(config: Config, text: str) -> Config:
    """`config`, unless its file is empty and nothing else gave it a deadline: refused
    alike by `check`, `run` and a reload (checks.EMPTY_FILE says why)."""
    if not config.schedule.deadlines and not text.strip():
        raise ConfigError([Problem(str(config.path), 0, 0, "", EMPTY_FILE)])
    return config


def first_seen_ids(deadlines: Iterable[Deadline]) -> list[str]:
    """The ledger's first-seen keys of `deadlines`: each deadline's, each extension's."""
    return [first_seen_key(d.id, k) for d in deadlines for k in range(len(d.stages))]

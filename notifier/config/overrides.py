"""The `NOTIFIER_*` variables and credential files: what each one sets, and what is wrong with it.

pydantic-settings reads them all into the settings (schema.py). Here each one
is read alone through the same pydantic-settings source, so that its own
rules decide: a value it cannot decode (a list or table is JSON there) is a
problem named after its variable or file, a problem with a value that came
from one is located at it (not at the file's line it overrides), and a name
that sets nothing, which pydantic-settings ignores, is a warning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import EnvSettingsSource, SecretsSettingsSource, SettingsError
from pydantic_settings.sources import NestedSecretsSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from notifier.config.schema import Settings
from notifier.errors import Problem

NOT_SETTINGS = frozenset({"NOTIFIER_CONFIG", "NOTIFIER_FAULT_SEED", "NOTIFIER_KILL_SEED"})
"""`NOTIFIER_` variables that are not settings: the config file's path (paths.py) and
the fault tests' seeds. Every other `NOTIFIER_` name is meant to set something."""

SettingPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Override:
    """One variable or credential file and the settings it sets."""

    where: str
    """The variable's name, or the credential file's path."""
    target: SettingPath
    """The setting its name points at: ("defaults", "timezone")."""
    values: tuple[str, ...]
    """Its value, and each text in it if it is JSON: never to be printed."""


@dataclass(frozen=True)
class Overrides:
    """Every override with the settings it sets; its problems and warnings, located at it."""

    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    _by_setting: dict[SettingPath, Override] = field(default_factory=dict)

    def origin(self, path: SettingPath) -> Override | None:
        """The override that set the value at `path` (or a list or table holding it), if any."""
        if not self._by_setting:
            return None
        for end in range(len(path), 0, -1):
            found = self._by_setting.get(path[:end])
            if found is not None:
                return found
        return None

    @property
    def by_setting(self) -> Mapping[SettingPath, Override]:
        """Each setting an override sets, with it."""
        return self._by_setting

    def under(self, table: SettingPath) -> list[Override]:
        """The overrides that set something inside `table`."""
        n = len(table)
        return list({id(o): o for path, o in self._by_setting.items()
                     if len(path) > n and path[:n] == table}.values())


NO_OVERRIDES = Overrides()


def read_overrides(env: Mapping[str, str]) -> Overrides:
    """The overrides in `env` (its `NOTIFIER_*` variables and `$CREDENTIALS_DIRECTORY`)."""
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    names = sorted(k for k in env if k.upper().startswith(prefix) and k.upper() not in NOT_SETTINGS)
    creds = env.get("CREDENTIALS_DIRECTORY")
    if not names and not creds:
        return NO_OVERRIDES
    reading = _Reading()
    # Weakest first: a variable's value replaces a credential's (see schema.Settings).
    if creds:
        reading.credentials(Path(creds))
    if names:
        source = EnvSettingsSource(Settings)
        reading.each(source, ((name, name, env[name]) for name in names))
    return Overrides(tuple(reading.problems), tuple(reading.warnings), reading.by_setting)


@dataclass
class _Reading:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    by_setting: dict[SettingPath, Override] = field(default_factory=dict)

    def credentials(self, directory: Path) -> None:
        try:
            source = NestedSecretsSettingsSource(
                SecretsSettingsSource(Settings, secrets_dir=directory))
        except (OSError, UnicodeDecodeError, SettingsError) as e:
            self.problems.append(_unreadable_credentials(directory, e))
            return
        files = {name.lower(): name for name in _listed(directory)}
        self.each(source, ((str(directory / files.get(key, key)), key, value)
                           for key, value in source.env_vars.items() if value is not None))

    def each(self, source: EnvSettingsSource, items: Iterable[tuple[str, str, str]]) -> None:
        """Read every (where, name, value) alone through `source`."""
        delimiter = source.env_nested_delimiter or "__"
        for where, name, value in items:
            target: SettingPath = tuple(
                name[len(source.env_prefix):].lower().split(delimiter))
            source.env_vars = parse_env_vars({name: value}, source.case_sensitive,
                                             source.env_ignore_empty, source.env_parse_none_str)
            try:
                sets = source()
            except SettingsError as e:
                self.problems.append(Problem(where, 0, 0, "", _undecodable(e)))
                continue
            if not sets:
                why = _NULL_SETS_NOTHING if value.strip() == "null" \
                    else _matches_nothing(name, source)
                self.warnings.append(Problem(where, 0, 0, "", why))
                continue
            wrong = _wrong_path(target, name, source.env_prefix, delimiter)
            if wrong is not None:
                self.problems.append(Problem(where, 0, 0, "", wrong))
                continue
            override = Override(where, target, (value, *_texts(sets)))
            for path in _leaves(sets):
                self.by_setting[path] = override


def _leaves(value: dict[str, Any], at: SettingPath = ()) -> Iterable[SettingPath]:
    """The paths a source's output sets: a table is merged into the file's, anything
    else (a list, a value, a table where a list belongs) replaces what the file has
    there."""
    from notifier.config.explain import list_at  # noqa: PLC0415 - a variable's value only

    for key, item in value.items():
        # A table where a list belongs (NOTIFIER_DEADLINES='{"id": "b"}') is the
        # variable's wrong value, not keys merged into the file's list.
        if isinstance(item, dict) and item and not list_at((*at, key)):
            yield from _leaves(item, (*at, key))
        else:
            yield (*at, key)


def _texts(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _wrong_path(target: SettingPath, name: str, prefix: str, delimiter: str) -> str | None:
    """What is wrong with the setting a name points at, which pydantic-settings does
    not check: an item of a list, or a key its table does not have."""
    from notifier.config.explain import known_keys, list_at  # noqa: PLC0415 - a nested name only

    for cut in range(1, len(target)):
        if list_at(target[:cut]):
            whole = _spelled_like(name, prefix, delimiter.join(str(p) for p in target[:cut]))
            return (f"{'.'.join(str(p) for p in target[:cut])} is a list, which cannot be set"
                    f" an item at a time: set the whole list, in JSON, in {whole}")
    keys = known_keys(target[:-1])
    if not keys or target[-1] in keys:
        return None
    import difflib  # noqa: PLC0415 - only for an unknown key

    close = difflib.get_close_matches(str(target[-1]), keys, n=1, cutoff=0.6)
    if close:
        named = delimiter.join(str(p) for p in (*target[:-1], close[0]))
        return f"unknown key; did you mean {_spelled_like(name, prefix, named)}?"
    table = ".".join(str(p) for p in target[:-1])
    return f"unknown key: [{table}] has {', '.join(keys)}"


def _undecodable(e: SettingsError) -> str:
    cause = e.__cause__
    why = f" ({cause.msg} at character {cause.pos + 1})" \
        if isinstance(cause, json.JSONDecodeError) else ""
    # The value is never quoted: it may be a secret.
    return (f"not valid JSON{why}: a list or table set from the environment or a"
            " credential is written in JSON, e.g. [\"7d\", \"1d\"] or {\"url\": \"...\"}")


_NULL_SETS_NOTHING = ("null sets nothing, so it is ignored: a setting cannot be unset from "
                      "the environment; remove the variable, or give the value it should have")
"""pydantic-settings drops a JSON null: the name may be right, the value is what sets nothing."""


def _matches_nothing(name: str, source: EnvSettingsSource) -> str:
    """Why the name sets nothing, with the closest name that would."""
    import difflib  # noqa: PLC0415 - only for a name that sets nothing

    from notifier.config.explain import known_keys  # noqa: PLC0415 - likewise

    def close(word: str, words: Iterable[str], cutoff: float) -> str | None:
        return next(iter(difflib.get_close_matches(word, list(words), n=1, cutoff=cutoff)),
                    None)

    delimiter = source.env_nested_delimiter or "__"
    prefix = source.env_prefix
    rest = name[len(prefix):].lower()
    tops = list(Settings.model_fields)
    seconds = [f"{top}{delimiter}{sub}" for top in tops for sub in known_keys((top,))]
    head, sep, tail = rest.partition(delimiter)
    guess = close(rest, seconds, 0.85)
    top = close(head, tops, 0.75)
    if guess is None and top is None and not sep:
        # A setting's own name without its section (NOTIFIER_LOGLEVEL), where only
        # one section has it: letters alone compared, `_` aside.
        owners: dict[str, list[str]] = {}
        for second in seconds:
            owners.setdefault(second.partition(delimiter)[2].replace("_", ""), []).append(second)
        bare = close(rest.replace("_", ""), owners, 0.85)
        if bare is not None and len(owners[bare]) == 1:
            guess = owners[bare][0]
    if guess is None and top is not None:
        guess = top + sep + tail
    hint = f" (did you mean {_spelled_like(name, prefix, guess)}?)" if guess else ""
    return f"matches no setting, so it is ignored{hint}"


def _spelled_like(name: str, prefix: str, rest: str) -> str:
    """`prefix + rest` in the case `name` is written in."""
    text = prefix + rest
    return text.upper() if name.isupper() or not name else text


def _listed(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _unreadable_credentials(directory: Path, e: Exception) -> Problem:
    """The credential file (else the directory) that could not be read, and why."""
    for name in sorted(_listed(directory)):
        path = directory / name
        if name.startswith(".") or not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return Problem(str(path), 0, 0, "", "credential file is not valid UTF-8")
        except OSError as err:
            return Problem(str(path), 0, 0, "", f"cannot read credential file: {err.strerror}")
    if directory.exists() and not directory.is_dir():
        reason = "not a directory"
    elif isinstance(e, OSError):
        reason = f"cannot read: {e.strerror}"
    else:  # pydantic-settings' limits (size, number of files): its words name no value
        reason = str(e)
    return Problem(str(directory), 0, 0, "", f"$CREDENTIALS_DIRECTORY: {reason}")

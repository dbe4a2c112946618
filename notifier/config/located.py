"""Problems found while loading, each located in the file or the variable it came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifier.config import tomlpos
from notifier.config.overrides import NO_OVERRIDES, Override, Overrides
from notifier.errors import Problem
from notifier.redact import MASK, from_input, redact, shown
from notifier.wording import plural


class FileIndex:
    """The positions of one file's text, indexed once, when a problem or warning first
    needs them: the batched load and the whole-file one after it share it (indexing
    a file of 100,000 deadlines takes about a second)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._positions: tomlpos.Positions | None = None

    @property
    def positions(self) -> tomlpos.Positions:
        if self._positions is None:
            try:
                self._positions = tomlpos.index_positions(self.text)
            except RecursionError:  # nested too deeply to say more than the file
                self._positions = tomlpos.Positions(self.text)
        return self._positions


class Collector:
    """Gathers problems and turns dotted paths into file positions, or into the
    `NOTIFIER_*` variable or credential file that set the value."""

    def __init__(self, file: str, text: str | FileIndex,
                 overrides: Overrides = NO_OVERRIDES) -> None:
        self.file = file
        self.overrides = overrides
        self._index = text if isinstance(text, FileIndex) else FileIndex(text)
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = list(overrides.warnings)
        self._said: set[tuple[tomlpos.Path, str, bool]] = set()

    def where(self, path: tomlpos.Path, *, at_key: bool = False) -> tuple[int, int]:
        """Line and column of `path` in the file: where its value starts, or its key."""
        found = self._index.positions.locate(path, at_key=at_key)
        return (1, 1) if found is None else found

    def line_of(self, path: tomlpos.Path) -> int | None:
        """The file's line of `path`, or None where a variable or credential set it."""
        return None if self.overrides.origin(path) is not None else self.where(path)[0]

    def quoted(self, path: tomlpos.Path, text: str) -> str:
        """`text`, the value at `path` quoted in a message about another setting: marked
        as input (hidden at a variable) only where a variable or credential set it; the
        file's own text (a deadline's id written in it) is shown as written."""
        return text if self.line_of(path) is not None else from_input(text)

    def add(self, path: tomlpos.Path, message: str, *, warning: bool = False,
            foreign: bool = False, at_key: bool = False) -> None:
        """A problem at `path`: with its value, located where the value starts, or
        with the key itself (`at_key`: an unknown key, a bad table name). `message`
        marks each part it quotes from the input (redact.from_input); `foreign` (a
        library's words: apprise's, Jinja's) may quote it unmarked."""
        origin = self.overrides.origin(path)
        if origin is None:
            creators = self._created_by(path)
            if not creators:
                problem = Problem(self.file, *self.where(path, at_key=at_key), _dotted(path),
                                  shown(message))
                (self.warnings if warning else self.problems).append(problem)
                return
            # A table the file does not have, made by variables alone: at them.
            where = ", ".join(sorted({o.where for o in creators}))
            problem = Problem(where, 0, 0, _dotted(path), shown(message, hide=True))
        else:
            # The variable's name says the path when it points right at it.
            dotted = "" if path == origin.target else _dotted(path)
            # Never its value (it may be a secret): the parts a message quotes from
            # the input are hidden, the product's own words around them kept whole.
            text = shown(message, hide=True)
            problem = Problem(origin.where, 0, 0, dotted,
                              _scrubbed(text, origin.values) if foreign else text)
        (self.warnings if warning else self.problems).append(problem)

    def add_once(self, path: tomlpos.Path, message: str, *, warning: bool = False) -> None:
        """A problem of [defaults] met by every deadline that inherits it: said once."""
        if (path, message, warning) not in self._said:
            self._said.add((path, message, warning))
            self.add(path, message, warning=warning)

    def _created_by(self, path: tomlpos.Path) -> list[Override]:
        """The overrides that made the table holding `path`, if the file has no such table."""
        if not self.overrides.by_setting:
            return []
        positions = self._index.positions
        written = next((cut for cut in range(len(path), 0, -1)
                        if path[:cut] in positions), 0)
        for cut in range(len(path), written, -1):
            made = self.overrides.under(path[:cut])
            if made:
                return made
        return []

    def warn_replaced(self, data: Mapping[str, Any]) -> None:
        """A variable or credential that replaces a list the file sets is said: the
        file's items are then not read at all (NOTIFIER_DEADLINES='[]'). A table set
        so is merged into the file's, key by key, and a value replaced is the point."""
        for path, _origin in self.overrides.by_setting.items():
            found = _at(data, path)
            if isinstance(found, list) and found:
                noun = _NOUNS.get(str(path[-1]), "item")
                self.add(path, f"replaces the file's {plural(len(found), noun)}", warning=True)


def _scrubbed(text: str, values: tuple[str, ...]) -> str:
    """A library's words without a value or any word of it (a URL's scheme, a
    template's variable): they mark nothing, so every part that may come from it
    goes; a word only where it stands whole (`for` keeps its `or`)."""
    text = redact(text, values)
    # A suggestion names what the product knows (`did you mean deadline.title?`):
    # its words are not the value's, and are kept wherever they stand.
    known = {w for hint in _HINT.findall(text) for w in _WORD.findall(hint)}
    words = sorted({w for value in values for w in _WORD.findall(value)
                    if len(w) >= 3 and w not in known}, key=len, reverse=True)
    if not words:
        return text
    whole = re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(map(re.escape, words))
                       + r")(?![0-9A-Za-z])")
    return whole.sub(MASK, text)


_WORD = re.compile(r"[0-9A-Za-z]+")
_HINT = re.compile(r"did you mean ([^?]*)\?")


_NOUNS = {"deadlines": "deadline", "reminders": "reminder", "urls": "URL", "tags": "tag",
          "plugin_paths": "plugin path", "channels": "channel", "kinds": "kind",
          "extensions": "extension"}
"""What a list of the file holds, by its key (`item` for any other)."""


def _at(data: Mapping[str, Any], path: tomlpos.Path) -> object:
    """The file's value at `path`, or None."""
    found: object = data
    for part in path:
        if not isinstance(found, dict) or part not in found:
            return None
        found = found[part]
    return found


def _dotted(path: tomlpos.Path) -> str:
    return ".".join(str(p) for p in path)

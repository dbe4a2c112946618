"""Problems found while loading, each located in the file or the variable it came from."""

from __future__ import annotations

from notifier.config import tomlpos
from notifier.config.overrides import NO_OVERRIDES, Overrides
from notifier.errors import Problem
from notifier.redact import redact


class Collector:
    """Gathers problems and turns dotted paths into file positions, or into the
    `NOTIFIER_*` variable or credential file that set the value."""

    def __init__(self, file: str, text: str, overrides: Overrides = NO_OVERRIDES) -> None:
        self.file = file
        self.overrides = overrides
        self._text = text
        self._positions: dict[tomlpos.Path, tuple[int, int]] | None = None
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = list(overrides.warnings)

    def _where(self, path: tomlpos.Path) -> tuple[int, int]:
        if self._positions is None:
            self._positions = tomlpos.index_positions(self._text)
        found = tomlpos.locate(self._positions, path)
        return (1, 1) if found is None else found

    def add(self, path: tomlpos.Path, message: str, *, warning: bool = False) -> None:
        origin = self.overrides.origin(path)
        if origin is None:
            problem = Problem(self.file, *self._where(path), _dotted(path), message)
        else:
            # The variable's name says the path when it points right at it.
            dotted = "" if path == origin.target else _dotted(path)
            # Never its value (it may be a secret), even where a message quotes one.
            problem = Problem(origin.where, 0, 0, dotted, redact(message, origin.values))
        (self.warnings if warning else self.problems).append(problem)


def _dotted(path: tomlpos.Path) -> str:
    return ".".join(str(p) for p in path)

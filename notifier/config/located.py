"""Problems found while loading, each located in the file or the variable it came from."""

from __future__ import annotations

from collections.abc import Mapping

from notifier.config import tomlpos
from notifier.errors import Problem


class Collector:
    """Gathers problems and turns dotted paths into file positions."""

    def __init__(self, file: str, text: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self._text = text
        self._positions: dict[tomlpos.Path, tuple[int, int]] | None = None
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def _where(self, path: tomlpos.Path) -> tuple[str, int, int]:
        if self._positions is None:
            self._positions = tomlpos.index_positions(self._text)
        found = tomlpos.locate(self._positions, path)
        if found is None:
            env_name = "NOTIFIER_" + "__".join(str(p).upper() for p in path if isinstance(p, str))
            for name in self.env:
                if env_name.startswith(name) and name.startswith("NOTIFIER_"):
                    return (f"${name}", 1, 1)
            return (self.file, 1, 1)
        return (self.file, *found)

    def add(self, path: tomlpos.Path, message: str, *, warning: bool = False) -> None:
        file, line, col = self._where(path)
        dotted = ".".join(str(p) for p in path)
        problem = Problem(file, line, col, dotted, message)
        (self.warnings if warning else self.problems).append(problem)

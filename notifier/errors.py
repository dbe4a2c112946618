"""Typed errors shared by the core and the shell.

Every error that a user can cause carries a location and never the input value,
so printing one can never leak a secret.
"""

from __future__ import annotations

from typing import NamedTuple

from notifier.redact import Redactor


class Problem(NamedTuple):
    """One located complaint about a config file.

    A NamedTuple, not a frozen dataclass: immutable and compared by value all
    the same, and it costs a third as much to define at import (the dataclass
    generated and compiled six methods on every run of every command).
    """

    file: str
    line: int
    col: int
    path: str
    message: str

    def scrubbed(self, secrets: tuple[str, ...]) -> Problem:
        """The same problem with any known secret replaced by `***`."""
        redactor = Redactor(secrets)
        return Problem(self.file, self.line, self.col, redactor.redact(self.path),
                       redactor.redact(self.message))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(Exception):
    """The command line asks for what cannot be done (exit 2); the message says why."""


class LedgerError(Exception):
    """The ledger cannot be opened or used safely (corrupt, unreadable, too new)."""


class LedgerWriteError(LedgerError):
    """A write to the ledger failed (disk full, I/O error); nothing may be sent."""


class DeliveryError(Exception):
    """A channel failed to deliver. `permanent` errors are not worth retrying soon."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)

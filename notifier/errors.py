"""Typed errors shared by the core and the shell.

Every error that a user can cause carries a location and never the input value,
so printing one can never leak a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from notifier.redact import Redactor

if TYPE_CHECKING:
    from notifier.delivery.outcomes import UrlResult


class Problem(NamedTuple):
    """One located complaint about a config file, variable or credential file.

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

    @property
    def where(self) -> str:
        """FILE:LINE:COL, or the file or variable alone when there is no line to name
        (a file that cannot be read, a `NOTIFIER_*` variable, a credential file)."""
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file

    def text(self, *, warning: bool = False) -> str:
        """`WHERE: path: message` (`warning: ` before the message of a warning)."""
        message = f"warning: {self.message}" if warning else self.message
        return f"{self.where}: {self.path}: {message}" if self.path \
            else f"{self.where}: {message}"

    def __str__(self) -> str:
        return self.text()


def in_order(problems: Sequence[Problem]) -> list[Problem]:
    """Problems as the file reads: by (file, line, column); those located at a variable
    or credential file (no line) after them, in the order they were found."""
    return sorted(problems, key=lambda p: (0, p.file, p.line, p.col) if p.line else (1, "", 0, 0))


class ConfigError(Exception):
    """The configuration is invalid; `problems` says where and why, in the file's order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = in_order(problems)
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

    # Compared by value: a result is the same whichever process sent it.
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, DeliveryError) \
            and (self.args, self.permanent) == (other.args, other.permanent)

    def __hash__(self) -> int:
        return hash((type(self), self.args, self.permanent))


class PermanentDeliveryError(DeliveryError):
    """One URL's send will fail the same way until the operator acts: a URL that
    does not load, an HTTP 401/403/404/410. Its text is secret-free."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class TransientDeliveryError(DeliveryError):
    """One URL's send may work when tried again: no answer in time, a refused
    connection, an HTTP 5xx, a plugin's crash. Its text is secret-free."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)


UrlFailure = PermanentDeliveryError | TransientDeliveryError
"""Why one URL's send failed, typed by whether retrying soon can help."""


class ChannelDeliveryError(DeliveryError):
    """Some URL of a channel failed: permanent only when every failed URL failed
    permanently. Carries every URL's result of the send."""

    def __init__(self, message: str, *, results: Sequence[UrlResult]) -> None:
        self.results: tuple[UrlResult, ...] = tuple(results)
        failed = [r.failure for r in self.results if r.failure is not None]
        super().__init__(message, permanent=bool(failed) and all(
            isinstance(f, PermanentDeliveryError) for f in failed))

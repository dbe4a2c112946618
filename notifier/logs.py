"""Logging: one line per event, journald priorities, and never a known secret.

Under systemd (``$JOURNAL_STREAM`` names our stderr) each line starts with the
sd-daemon priority prefix ``<N>`` (see sd-daemon(3)) and carries no timestamp,
since journald records its own. Elsewhere a line reads
``2026-11-28T09:00:00Z WARNING notifier.daemon: message``.

A message or traceback spanning several lines is kept on one line: line breaks
are written as the two characters ``\\n``.

`SecretRedactor` replaces every known secret (and its URL-encoded form) with
``***``; it is the last line of defence behind logging channel URLs only in
apprise's privacy form.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

from notifier.redact import Redactor
from notifier.text import escaped

__all__ = ["OneLineFormatter", "SecretRedactor", "is_journal_stream", "setup_logging"]

_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

#: Loggers of libraries that are chatty (and may echo URLs) below WARNING.
_QUIET_LOGGERS = ("apprise",)


def _priority(levelno: int) -> int:
    """The syslog priority for a logging level (sd-daemon(3) prefixes)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


# Renders tracebacks for SecretRedactor, which runs before any formatter does.
_EXCEPTION_FORMATTER = logging.Formatter()


class SecretRedactor(logging.Filter):
    """Replaces known secrets with ``***`` in each record's message and traceback.

    A logging filter around `notifier.redact.Redactor` (which says what is
    replaced). Never drops a record and never raises.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secrets (e.g. after a config reload)."""
        self._redactor.add(secrets)

    def redact(self, text: str) -> str:
        """`text` with every known secret replaced by ``***``."""
        return self._redactor.redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Merge the message with its arguments and redact it, plus any traceback."""
        if not self._redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not escape the log call
            message = f"{record.msg!s} [unformattable log arguments: {record.args!r}]"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class OneLineFormatter(logging.Formatter):
    """Formats a record as exactly one line (see the module docstring).

    With `journal`, the line starts with ``<N>`` and has no timestamp. The
    optional `redactor` is applied to the finished line before line breaks are
    escaped, so even text that bypassed the filter is redacted.
    """

    def __init__(self, *, journal: bool, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self.journal = journal
        self.redactor = redactor
        self._stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """RFC 3339 UTC with a ``Z`` suffix, to the second."""
        if datefmt is not None:
            return time.strftime(datefmt, time.gmtime(record.created))
        # A burst logs hundreds of lines in one second: format that second once.
        second = int(record.created)
        stamp = self._stamp
        if second != stamp[0]:
            stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
            self._stamp = stamp
        return stamp[1]

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        if self.journal:
            line = f"<{_priority(record.levelno)}>{record.name}: {text}"
        else:
            line = f"{self.formatTime(record)} {record.levelname} {record.name}: {text}"
        if self.redactor is not None:
            line = self.redactor.redact(line)
        return escaped(line.rstrip("\r\n"))


def is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether `stream` is connected to journald, per ``$JOURNAL_STREAM``.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for the service's stdout and
    stderr. A child whose stderr was redirected elsewhere inherits the variable,
    so for a stream with a file descriptor the device and inode must match; a
    stream without one (an in-memory buffer) trusts the variable.
    """
    value = environ.get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    try:
        expected = (int(device, 10), int(inode, 10))
    except ValueError:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        # io.UnsupportedOperation is both an OSError and a ValueError.
        return True
    return (st.st_dev, st.st_ino) == expected


# Marks the handler setup_logging installed, so that calling it again replaces it.
_HANDLER_NAME = "notifier.logs"


def setup_logging(
    level: str = "INFO",
    stream: TextIO | None = None,
    *,
    secrets: Iterable[str] = (),
    journal: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Configure the root logger: one line per event on `stream` (default stderr).

    `level` is a level name (case-insensitive); an unknown one raises ValueError.
    `journal` forces the journald format on or off; by default it is detected
    from ``$JOURNAL_STREAM`` (`environ` defaults to ``os.environ``). Known
    `secrets` are redacted. apprise's own logger is held at WARNING unless
    `level` is DEBUG. Calling it again (e.g. after a reload brought new
    secrets) replaces the previous setup.
    """
    levelno = _LEVELS.get(level.strip().upper())
    if levelno is None:
        raise ValueError(
            f"unknown log level {level!r}; expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
        )
    out = sys.stderr if stream is None else stream
    if journal is None:
        journal = is_journal_stream(out, os.environ if environ is None else environ)

    redactor = SecretRedactor(secrets)
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(redactor)
    handler.setFormatter(OneLineFormatter(journal=journal, redactor=redactor))

    # Our lines show none of the caller's file, thread or process, so skip
    # finding them for every record (the logging HOWTO's "Optimization"):
    # a burst of sends logs a line each, under the GIL they all share.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(levelno)

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if levelno <= logging.DEBUG else logging.WARNING
        )
    # warnings.warn() output goes through logging too, so it is one line as well.
    logging.captureWarnings(True)

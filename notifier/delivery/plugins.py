"""notifier's own apprise plugins: ``console://`` and ``jsonl://``.

They are apprise plugins like any other (`notifier.delivery.appriseset` registers them
under their schemas), so a channel URL is an apprise URL whatever its
service. A plugin's ``send()`` gets only title, body and type from apprise;
the message's key, due and times come through `CURRENT`, which the channel
sets in the thread that sends (see `notifier.delivery.channels`).
``console://`` writes through a writer that `console_writer` can replace
(`notifier replay` shows each message under its delivery's line).

This module imports apprise at the top: `check` imports it only for a file
with a URL of another schema.
"""

from __future__ import annotations

import contextvars
import fcntl
import json
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote, urlencode, urlsplit

from apprise import NotifyBase, NotifyFormat, NotifyType, PersistentStoreMode

from notifier.logs import is_journal_stream
from notifier.text import escaped, rfc3339, shown_lines

if TYPE_CHECKING:
    from notifier.delivery.outcomes import OutgoingMessage

__all__ = [
    "BODY_INDENT",
    "BUILTINS",
    "CURRENT",
    "BuiltinPlugin",
    "BuiltinUrlError",
    "ConsoleMessage",
    "ConsoleWriter",
    "NotifyConsole",
    "NotifyJsonl",
    "console_writer",
    "write_to_stdout",
]

CURRENT: contextvars.ContextVar[OutgoingMessage | None] = contextvars.ContextVar(
    "notifier_outgoing_message", default=None
)
"""The message being sent from this thread (set by `ChannelSender`), else None."""


class BuiltinUrlError(ValueError):
    """Raised by the built-in plugins; its text is secret-free by construction."""


# apprise's NotifyBase is only partly annotated: its class attributes are typed
# from their None defaults and __init__, __init_subclass__ and url() carry no
# annotations, so no subclass of it can pass --strict. Subclass it through an
# Any-typed alias instead; the methods below are fully annotated and checked.
_NotifyBaseAny: Any = NotifyBase


class BuiltinPlugin(_NotifyBaseAny):  # type: ignore[misc]  # Any base: see the comment above
    """Common settings: no throttling, no length limits, no persistent storage."""

    request_rate_per_sec = 0
    title_maxlen = 1_000_000
    body_maxlen = 1_000_000
    storage_mode = PersistentStoreMode.MEMORY
    notify_format = NotifyFormat.TEXT

    @staticmethod
    def _message() -> OutgoingMessage | None:
        return CURRENT.get()


BODY_INDENT: Final = "    "
"""What each body line of a ``console://`` message starts with."""


@dataclass(frozen=True)
class ConsoleMessage:
    """One message as ``console://`` shows it."""

    kind: str
    title: str
    body: str
    key: str | None = None
    """The notification's key; None for a message not sent by notifier."""
    channel: str | None = None
    """The channel it went to; None for a message not sent by notifier."""

    def title_line(self) -> str:
        """``[kind] title``, on one line whatever the text holds."""
        return f"[{escaped(self.kind)}] {escaped(self.title)}"

    def body_lines(self) -> list[str]:
        """The body's lines, each indented by `BODY_INDENT` (see `shown_lines`)."""
        return [BODY_INDENT + line for line in shown_lines(self.body)]

    def lines(self, *, journal: bool) -> list[str]:
        """Every line ``console://`` writes: the title line, then the body's lines,
        unless `journal` (where one line per message is the rule: SPEC 3)."""
        return [self.title_line()] if journal else [self.title_line(), *self.body_lines()]

ConsoleWriter = Callable[[ConsoleMessage], None]
"""Where ``console://`` puts a message; raises OSError or ValueError if it could not."""

_CONSOLE_LOCK = threading.Lock()


def write_to_stdout(message: ConsoleMessage) -> None:
    """The default `ConsoleWriter`: the message's lines on stdout, in one write.

    On a terminal, pipe or file every line; when stdout is the journal (systemd's
    ``$JOURNAL_STREAM``) only the title line.
    """
    with _CONSOLE_LOCK:
        stream = sys.stdout
        lines = message.lines(journal=is_journal_stream(stream, os.environ))
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()


_WRITER_LOCK = threading.Lock()
_writer: ConsoleWriter = write_to_stdout


@contextmanager
def console_writer(writer: ConsoleWriter) -> Iterator[None]:
    """Within the block, ``console://`` hands each message to `writer` instead of
    writing it (`notifier replay` shows it under the delivery's line).

    Module-wide, for every thread: sends run on threads of their own, which a
    context variable set here would not reach. The previous writer is back
    when the block ends.
    """
    global _writer  # noqa: PLW0603 - the one switch, set and restored under its lock
    with _WRITER_LOCK:
        previous, _writer = _writer, writer
    try:
        yield
    finally:
        with _WRITER_LOCK:
            _writer = previous


class NotifyConsole(BuiltinPlugin):
    """``console://``: each message on stdout as readable lines.

    The title line ``[kind] title``, then each line of the body indented by four
    spaces; empty body lines are left out, so every line of a message but its
    first is indented and where a message ends stays plain. Line breaks in the
    title, and control characters anywhere, are written as ``\\n`` and
    ``\\uXXXX``, so a message never injects a line or a terminal escape. When
    stdout is the journal (systemd's ``$JOURNAL_STREAM``), one line per message:
    the title line alone (a ``jsonl://`` channel keeps whole messages).
    The lines go to stdout unless a `console_writer` block takes them.
    """

    service_name = "Console"
    protocol = "console"
    templates = ("{schema}://",)

    @staticmethod
    def parse_url(
        url: str, verify_host: bool = True, plus_to_space: bool = False
    ) -> dict[str, Any] | None:
        return NotifyBase.parse_url(url, verify_host=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.host or (self.fullpath or "/") != "/":
            raise BuiltinUrlError("console:// takes no host or path: write just console://")

    def send(
        self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any
    ) -> bool:
        msg = self._message()
        if msg is not None:
            message = ConsoleMessage(msg.kind, msg.title, msg.body, msg.key, msg.channel)
        else:
            message = ConsoleMessage(notify_type.value, title, body)
        with _WRITER_LOCK:
            writer = _writer
        try:
            writer(message)
        except (OSError, ValueError) as e:
            self.logger.warning("Could not write to stdout: %s", type(e).__name__)
            return False
        return True

    @property
    def url_identifier(self) -> tuple[str]:
        return ("console",)

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params = self.url_parameters(privacy=privacy, **kwargs)
        return f"console://?{urlencode(params)}"


class NotifyJsonl(BuiltinPlugin):
    """``jsonl:///abs/path/file.jsonl``: append one JSON object per delivery.

    Each line is written with one ``write()`` on an ``O_APPEND`` descriptor,
    under an exclusive ``flock``, and then ``fsync``-ed, so concurrent writers
    never interleave and a delivery reported as sent is on disk. A tail torn
    by an earlier crash or a full disk is terminated before the next line, so
    every later line stays parseable. A new file is created with mode 0600.
    """

    service_name = "JSON Lines file"
    protocol = "jsonl"
    templates = ("{schema}:///{path}",)

    def __init__(self, file_path: str | None = None, file_host: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if file_host or not file_path or not file_path.startswith("/"):
            raise BuiltinUrlError(
                "jsonl:// needs an absolute file path and no host: jsonl:///path/to/file.jsonl"
            )
        if file_path.endswith("/") or "\x00" in file_path:
            raise BuiltinUrlError("jsonl:// needs a file path, not a directory")
        self.file_path = file_path

    @staticmethod
    def parse_url(
        url: str, verify_host: bool = True, plus_to_space: bool = False
    ) -> dict[str, Any] | None:
        results = NotifyBase.parse_url(url, verify_host=False)
        if not results:
            return results
        # apprise's parser reads jsonl:///var/x as host "var"; take the path ourselves.
        parts = urlsplit(url)
        results["file_host"] = parts.netloc
        results["file_path"] = unquote(parts.path)
        return results

    def send(
        self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any
    ) -> bool:
        msg = self._message()
        if msg is None:
            self.logger.warning(
                "jsonl:// can only deliver messages sent by notifier (no message metadata)"
            )
            return False
        record = {
            "key": msg.key,
            "kind": msg.kind,
            "deadline": msg.deadline,
            "title": msg.title,
            "body": msg.body,
            "due": rfc3339(msg.due, fraction=True) if msg.due is not None else None,
            "planned_at": rfc3339(msg.planned_at, fraction=True),
            "sent_at": rfc3339(msg.sent_at or datetime.now(UTC), fraction=True),
            "late": msg.late,
        }
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        # json escapes C0 controls; these three would still split str.splitlines().
        for ch in "\x85\u2028\u2029":
            text = text.replace(ch, f"\\u{ord(ch):04x}")
        try:
            _append_line(self.file_path, (text + "\n").encode("utf-8"))
        except OSError as e:
            self.logger.warning(
                "Could not append to %s: %s", self.file_path, os.strerror(e.errno or 0)
            )
            return False
        return True

    @property
    def url_identifier(self) -> tuple[str, str]:
        return ("jsonl", self.file_path)

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params = self.url_parameters(privacy=privacy, **kwargs)
        return f"jsonl://{quote(self.file_path)}?{urlencode(params)}"


def _append_line(path: str, data: bytes) -> None:
    """Append `data` (one full line) with a single write, then fsync."""
    # RDWR: pread checks the tail. NONBLOCK: opening a FIFO must not hang.
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
    created = True
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        created = False
        fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(22, "not a regular file")  # EINVAL
        # Writers of this module take turns, so the tail check below never sees
        # another writer's line half-copied (i_size grows during a write).
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = os.fstat(fd)
        if info.st_size > 0 and os.pread(fd, 1, info.st_size - 1) != b"\n":
            data = b"\n" + data  # terminate a torn tail left by a crash or full disk
        written = os.write(fd, data)
        if written != len(data):
            # Short write (disk full): end the fragment so later lines stay whole.
            os.write(fd, b"\n")
            raise OSError(28, "short write")  # ENOSPC
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(os.path.dirname(path) or "/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


BUILTINS: Final[tuple[type[BuiltinPlugin], ...]] = (NotifyConsole, NotifyJsonl)

"""Cut a config file's text into its head and its `[[deadlines]]` tables.

A schedule of 100,000 deadlines read whole is a 200 MiB dictionary next to
its validated and resolved forms. Read a few thousand deadlines at a time,
the peak is the resolved schedule plus one batch (`notifier.config.batches` does that).

This is a cut by lines, not a TOML parser: a line that starts with `[` is a
table header. It is only trusted for files of the plain shape: anything
unusual (a header naming `deadlines` in another form, quoted keys in a
deadlines header, extensions before any deadline) gives None, and the caller
reads the whole file instead. A line inside a multi-line string or array
that looks like a header is cut wrongly, but then one of the pieces holds an
unterminated string or array, fails to parse, and again the whole file is
read. Pure: text in, text out.
"""

from __future__ import annotations

import re
from array import array

_HEADER = re.compile(
    # A header line as the newline before it and the line: the search for a
    # literal newline runs in C, twice as fast as trying `^` at every character.
    # The two forms of a plain schedule's deadline headers first (one match each,
    # no Python per line), then any other line that starts with "[".
    r"\n(?:(?P<deadline>\[\[deadlines\]\])|(?P<extension>\[\[deadlines\.extensions\]\]))"
    r"[ \t]*(?:#[^\n]*)?(?=\n|\Z)|\n(?P<other>[ \t]*\[[^\n]*)",
)
_BLANKS = re.compile(r"[ \t]+")


class Parts:
    """The file as `head` (every other table, in order) and spans of deadline tables.

    Not to be changed once made. A plain slotted class, not a frozen dataclass:
    that generated and compiled six methods at every import (about 2 ms of
    each `notifier check`), for a value only `split` builds.
    """

    __slots__ = ("ends", "head", "starts", "text")

    text: str
    head: str
    starts: array[int]
    ends: array[int]
    """Table k is text[starts[k]:ends[k]]: a `[[deadlines]]` table with its
    extensions, in file order (machine integers: 100,000 spans as tuples of
    ints were 11 MiB at the peak of a load)."""

    def __init__(self, text: str, head: str, starts: array[int], ends: array[int]) -> None:
        self.text = text
        self.head = head
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    def table(self, k: int) -> str:
        return self.text[self.starts[k]:self.ends[k]]

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))


def _line_ended(piece: str) -> str:
    return piece if piece.endswith("\n") else piece + "\n"


def _kind(line: str) -> str | None:
    """"deadline", "extension" or "other" for a header line; None if unusual."""
    if "deadlines" not in line:
        return "other"
    if '"' in line or "'" in line:
        return None
    compact = _BLANKS.sub("", line.split("#", 1)[0])
    if compact == "[[deadlines]]":
        return "deadline"
    if compact == "[[deadlines.extensions]]":
        return "extension"
    return None


def split(text: str) -> Parts | None:
    """The head and deadline tables of `text`, or None if it is not of the plain shape."""
    # In "\n" + text a match's start (its newline) is where its line starts in text.
    headers = [(m.start(), m.lastgroup if m.lastgroup != "other" else _kind(m.group(3)))
               for m in _HEADER.finditer("\n" + text)]
    if any(kind is None for _, kind in headers):
        return None
    head: list[str] = []
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    bounds = [start for start, _ in headers] + [len(text)]
    head.append(_line_ended(text[:bounds[0]]))
    current: int | None = None  # start of the deadline table being read
    for (start, kind), end in zip(headers, bounds[1:], strict=True):
        if kind == "extension":
            if current is None:
                return None
            continue
        if current is not None:
            starts.append(current)
            ends.append(start)
            current = None
        if kind == "deadline":
            current = start
        else:
            head.append(_line_ended(text[start:end]))
    if current is not None:
        starts.append(current)
        ends.append(len(text))
    return Parts(text=text, head="".join(head), starts=starts, ends=ends)

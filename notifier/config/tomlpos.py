"""Find where a dotted config path was written in a TOML text.

tomllib gives positions only for syntax errors; validation errors come with a
path such as ("deadlines", 2, "extensions", 0, "due"). This scanner maps table
headers and keys to the (line, column) where they are written, and values to
where each value starts, array elements and inline tables' keys included,
over as many lines as a value takes. It reads just enough TOML for that, and
only a file that TOML readers have taken (a problem of its meaning is being
located).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

Path = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BARE_KEY = re.compile(r"([A-Za-z0-9_-]+)[ \t]*=")
"""The common key, bare and alone before its `=`: read without the general parser."""
_BASIC_STRING = re.compile(r'"(?:[^"\\\n]|\\[\s\S])*')
_LITERAL_STRING = re.compile(r"'[^'\n]*")
_SCALAR_END = re.compile(r"[,\]}#\n]")
_MAX_DEPTH = 200
"""Values nested deeper are skipped, not indexed (a file that deep is refused anyway)."""


class Positions:
    """Where each path was written: its key (or table header), and its value, kept
    as offsets into the text; a place is turned into a line and column only when
    it is asked for (a large file has a million places, a problem a few)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.keys: dict[Path, int] = {}
        self.values: dict[Path, int] = {}
        self._starts: list[int] | None = None

    def __contains__(self, path: Path) -> bool:
        return path in self.keys or path in self.values

    def where(self, i: int) -> tuple[int, int]:
        """The 1-based line and column of offset `i`."""
        if self._starts is None:
            self._starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        line = bisect_right(self._starts, i)
        return line, i - self._starts[line - 1] + 1

    def locate(self, path: Path, *, at_key: bool = False) -> tuple[int, int] | None:
        """Where `path`'s value starts (its key's place with `at_key`), or where the
        longest written prefix of it is."""
        if not at_key and path in self.values:
            return self.where(self.values[path])
        for cut in range(len(path), 0, -1):
            found = self.keys.get(path[:cut])
            if found is None:
                found = self.values.get(path[:cut])
            if found is not None:
                return self.where(found)
        return None


def _split_key(text: str) -> list[str] | None:
    """Split `a."b.c".d` into its parts; None when it is not a key."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            while quote == '"' and end > 0 and _escaped(text, end):
                end = text.find(quote, end + 1)
            if end < 0:
                return None
            part = text[i + 1 : end]
            parts.append(_unescaped(part) if quote == '"' and "\\" in part else part)
            i = end + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n:
            if text[i] != ".":
                return None
            i += 1
    return parts or None


def _unescaped(part: str) -> str:
    """A basic string's text as TOML reads it (`ti\\u001btle`: its escapes undone),
    so that a key written with escapes is found under the name it is read as."""
    import tomllib  # noqa: PLC0415 - only for a quoted key with an escape

    try:
        return str(tomllib.loads(f'k = "{part}"')["k"])
    except tomllib.TOMLDecodeError:
        return part


def _key_end(text: str, start: int) -> int:
    """Index of the `=` that ends the key starting at `start`, or -1."""
    quote = ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and not (quote == '"' and _escaped(text, i)):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return i
        elif ch in "#\n":
            return -1
    return -1


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.found = Positions(text)

    def skip_blank(self, i: int, *, newlines: bool) -> int:
        """Past spaces (and newlines and comments, where a value may continue)."""
        text, n = self.text, len(self.text)
        while i < n:
            ch = text[i]
            if ch in " \t\r" or (newlines and ch == "\n"):
                i += 1
            elif ch == "#" and newlines:
                end = text.find("\n", i)
                i = n if end < 0 else end
            else:
                break
        return i

    def key(self, i: int, prefix: Path, first: int) -> tuple[Path, int] | None:
        """The path of the key at `i` and the index after its `=`, its places recorded."""
        bare = _BARE_KEY.match(self.text, i)
        if bare is not None:
            path: Path = (*prefix, bare.group(1))
            eq = bare.end() - 1
        else:
            eq = _key_end(self.text, i)
            parts = _split_key(self.text[i:eq]) if eq > i else None
            if not parts:
                return None
            path = (*prefix, *parts)
        keys = self.found.keys
        if len(path) == first:  # the key alone: no table named on the way
            keys.setdefault(path, i)
        else:
            _add_prefixes(keys, path, i, first)
        return path, eq + 1

    def value(self, i: int, path: Path, depth: int = 0) -> int:  # noqa: PLR0911 - one return a form
        """Record where the value at `i` starts (and its elements, keys); the index after it."""
        text, n = self.text, len(self.text)
        if i >= n:
            return i
        self.found.values.setdefault(path, i)
        ch = text[i]
        if text.startswith(('"""', "'''"), i):
            quote = text[i : i + 3]
            j = i + 3
            while True:
                end = text.find(quote, j)
                if end < 0:
                    return n
                if quote == '"""' and _escaped(text, end):
                    j = end + 1
                    continue
                end += 3
                extra = 0
                while end < n and text[end] == quote[0] and extra < 2:
                    end, extra = end + 1, extra + 1  # the string's own quotes before its end
                return end
        if ch == '"':  # to its closing quote (escapes skipped), or the line's end
            return _BASIC_STRING.match(text, i).end() + 1  # type: ignore[union-attr]
        if ch == "'":
            return _LITERAL_STRING.match(text, i).end() + 1  # type: ignore[union-attr]
        if ch in "[{":
            if depth >= _MAX_DEPTH:
                return n
            return self.array(i + 1, path, depth) if ch == "[" \
                else self.inline_table(i + 1, path, depth)
        m = _SCALAR_END.search(text, i)
        return n if m is None else m.start()

    def array(self, i: int, path: Path, depth: int) -> int:
        count = 0

        def element(at: int) -> int:
            nonlocal count
            count += 1
            return self.value(at, (*path, count - 1), depth + 1)

        return self.items(i, "]", element)

    def inline_table(self, i: int, path: Path, depth: int) -> int:
        def pair(at: int) -> int:
            found = self.key(at, path, len(path) + 1)
            if found is None:
                return -1  # no key here: the table ends unread
            inner, after_eq = found
            return self.value(self.skip_blank(after_eq, newlines=False), inner, depth + 1)

        return self.items(i, "}", pair)

    def items(self, i: int, close: str, item: Callable[[int], int]) -> int:
        """The items of an array or inline table from `i` to its `close`, each read by
        `item` (which returns where it ends, or not past `at` if it cannot be read):
        where the whole ends."""
        while True:
            i = self.skip_blank(i, newlines=True)
            if i >= len(self.text) or self.text[i] == close:
                return i + 1
            if self.text[i] == ",":
                i += 1
                continue
            after = item(i)
            if after <= i:
                return len(self.text)
            i = after


def _escaped(text: str, i: int) -> bool:
    """Whether the character at `i` follows an odd run of backslashes."""
    j = i
    while j > 0 and text[j - 1] == "\\":
        j -= 1
    return (i - j) % 2 == 1


def index_positions(text: str) -> Positions:
    """Every header and key path in `text` with its 1-based (line, column), and where
    each value starts."""
    scan = _Scanner(text)
    positions = scan.found
    counts: dict[Path, int] = {}
    latest: dict[tuple[str, ...], Path] = {}
    current: Path = ()
    i, n = 0, len(text)
    while i < n:
        i = scan.skip_blank(i, newlines=True)
        if i >= n:
            break
        eol = text.find("\n", i)
        eol = n if eol < 0 else eol
        if text[i] == "[":
            line = text[i:eol]
            brackets = 2 if line.startswith("[[") else 1  # an array of tables, or a table
            end = line.find("]" * brackets)
            parts = _split_key(line[brackets:end]) if end > 0 else None
            if parts:
                current = _resolve(tuple(parts), latest)
                _add_prefixes(positions.keys, current, i)
                if brackets == 2:
                    counts[current] = counts.get(current, 0) + 1
                    current = (*current, counts[current] - 1)
                    latest[tuple(parts)] = current
                    positions.keys.setdefault(current, i)
            i = eol
            continue
        found = scan.key(i, current, len(current) + 1)
        if found is None:
            i = eol
            continue
        path, after_eq = found
        after = scan.value(scan.skip_blank(after_eq, newlines=False), path)
        # The rest of the value's last line is a comment, at most.
        end = text.find("\n", after)
        i = n if end < 0 else max(end, i + 1)
    return positions


def _add_prefixes(keys: dict[Path, int], path: Path, where: int, first: int = 1) -> None:
    """`path` and each table it names on the way (`[a.b.c]`, `a.b.c = 1` write `a` and
    `a.b` too, if not written before) start here: an unknown table is located at its
    own header."""
    for cut in range(first, len(path) + 1):
        keys.setdefault(path[:cut], where)


def _resolve(parts: tuple[str, ...], latest: dict[tuple[str, ...], Path]) -> Path:
    """Turn header parts into a path, entering the latest element of any array of tables."""
    for cut in range(len(parts) - 1, 0, -1):
        prefix = parts[:cut]
        if prefix in latest:
            return (*latest[prefix], *parts[cut:])
    return parts

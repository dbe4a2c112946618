"""Find where a dotted config path was written in a TOML text.

tomllib gives positions only for syntax errors; validation errors come with a
path such as ("deadlines", 2, "extensions", 0, "due"). This scanner maps table
headers and keys to (line, column) so every error can name its line. It reads
just enough TOML for that: headers, arrays of tables, dotted and quoted keys,
and it skips multi-line strings and arrays.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


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
            if end < 0:
                return None
            parts.append(text[i + 1 : end])
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


def _key_end(line: str) -> int:
    """Index of the `=` that ends the key on this line, or -1."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return i
        elif ch == "#":
            return -1
    return -1


def index_positions(text: str) -> dict[Path, tuple[int, int]]:  # noqa: PLR0912 - one pass, one branch per TOML line form
    """Every header and key path in `text` with its 1-based (line, column)."""
    positions: dict[Path, tuple[int, int]] = {}
    counts: dict[Path, int] = {}
    latest: dict[tuple[str, ...], Path] = {}
    current: Path = ()
    depth = 0  # open brackets/braces of a multi-line value
    in_string = ""
    array: tuple[Path, list[int]] | None = None  # a multi-line array: its path, scan state
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        stripped = line.strip()
        if depth > 0:
            depth += _bracket_balance(stripped)
            if array is not None:
                _add_items(positions, array[0], lineno, line, 0, array[1])
            continue
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(line.lstrip()) + 1
        if stripped.startswith("["):
            brackets = 2 if stripped.startswith("[[") else 1  # an array of tables, or a table
            end = stripped.find("]" * brackets)
            parts = _split_key(stripped[brackets:end]) if end > 0 else None
            if parts:
                current = _resolve(tuple(parts), latest)
                _add_prefixes(positions, current, lineno, col)
                if brackets == 2:
                    counts[current] = counts.get(current, 0) + 1
                    current = (*current, counts[current] - 1)
                    latest[tuple(parts)] = current
                    positions.setdefault(current, (lineno, col))
            continue
        eq = _key_end(line)
        if eq < 0:
            continue
        parts = _split_key(line[:eq])
        if not parts:
            continue
        path = (*current, *parts)
        _add_prefixes(positions, path, lineno, col, len(current) + 1)
        value = line[eq + 1 :].strip()
        for quote in ('"""', "'''"):
            if value.startswith(quote) and value.count(quote) == 1:
                in_string = quote
        if not in_string:
            depth = max(0, _bracket_balance(value))
            array = _open_array(positions, path, lineno, line, eq, depth)
    return positions


def _add_prefixes(positions: dict[Path, tuple[int, int]], path: Path, lineno: int, col: int,
                  first: int = 1) -> None:
    """`path` and each table it names on the way (`[a.b.c]`, `a.b.c = 1` write `a` and
    `a.b` too, if not written before) start at this line: an unknown table is
    located at its own header."""
    for cut in range(first, len(path) + 1):
        positions.setdefault(path[:cut], (lineno, col))


def _open_array(positions: dict[Path, tuple[int, int]], path: Path, lineno: int, line: str,
                eq: int, depth: int) -> tuple[Path, list[int]] | None:
    """Record where the elements of an array value begin on its key's line; while the
    array stays open, its path and scan state for the lines that follow."""
    value = line[eq + 1 :].strip()
    if not value.startswith("[") or '"""' in value or "'''" in value:
        return None
    state = [0, 0, 0]
    _add_items(positions, path, lineno, line, line.index("[", eq), state)
    return (path, state) if depth > 0 else None


def _add_items(positions: dict[Path, tuple[int, int]], path: Path, lineno: int, line: str,
               start: int, state: list[int]) -> None:
    """Record where each element of the array at `path` starts in `line[start:]`.

    `state` is [depth, expecting an element (0/1), elements so far], carried from
    line to line of a multi-line array.
    """
    depth, expecting, count = state
    quote = ""
    i = start
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch == "#":
            break
        elif ch not in " \t":
            if expecting and depth == 1 and ch not in ",]":
                positions.setdefault((*path, count), (lineno, i + 1))
                count, expecting = count + 1, 0
            if ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
                expecting = int(depth == 1)
            elif ch in "]}":
                depth -= 1
            elif ch == "," and depth == 1:
                expecting = 1
        i += 1
    state[:] = [depth, expecting, count]


def _bracket_balance(value: str) -> int:
    balance = 0
    quote = ""
    for ch in value:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            balance += 1
        elif ch in "]}":
            balance -= 1
        elif ch == "#":
            break
    return balance


def _resolve(parts: tuple[str, ...], latest: dict[tuple[str, ...], Path]) -> Path:
    """Turn header parts into a path, entering the latest element of any array of tables."""
    for cut in range(len(parts) - 1, 0, -1):
        prefix = parts[:cut]
        if prefix in latest:
            return (*latest[prefix], *parts[cut:])
    return parts


def locate(positions: dict[Path, tuple[int, int]], path: Path) -> tuple[int, int] | None:
    """The position of `path`, or of its longest written prefix."""
    for cut in range(len(path), 0, -1):
        found = positions.get(path[:cut])
        if found is not None:
            return found
    return None

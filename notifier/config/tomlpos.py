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
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        stripped = line.strip()
        if depth > 0:
            depth += _bracket_balance(stripped)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(line.lstrip()) + 1
        if stripped.startswith("[["):
            end = stripped.find("]]")
            parts = _split_key(stripped[2:end]) if end > 0 else None
            if parts:
                current = _resolve(tuple(parts), latest)
                counts[current] = counts.get(current, 0) + 1
                current = (*current, counts[current] - 1)
                latest[tuple(parts)] = current
                positions.setdefault(current, (lineno, col))
            continue
        if stripped.startswith("["):
            end = stripped.find("]")
            parts = _split_key(stripped[1:end]) if end > 0 else None
            if parts:
                current = _resolve(tuple(parts), latest)
                positions.setdefault(current, (lineno, col))
            continue
        eq = _key_end(line)
        if eq < 0:
            continue
        parts = _split_key(line[:eq])
        if not parts:
            continue
        path = (*current, *parts)
        positions.setdefault(path, (lineno, col))
        value = line[eq + 1 :].strip()
        for quote in ('"""', "'''"):
            if value.startswith(quote) and value.count(quote) == 1:
                in_string = quote
        if not in_string:
            depth = max(0, _bracket_balance(value))
    return positions


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

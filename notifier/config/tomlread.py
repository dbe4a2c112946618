"""A config file's text and TOML data, or a `ConfigError` located in the file.

rtoml reads first (fast, and TOML 1.1); whatever it refuses, tomllib reads
again for its located message. Files too large and keys nested too deeply
are refused before either reads them.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import date, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rtoml

from notifier.errors import ConfigError, Problem
from notifier.text import one_line

if TYPE_CHECKING:
    from tomllib import TOMLDecodeError

MAX_FILE_BYTES = 128 << 20
"""Larger files are refused unread: about a million deadlines fit (118 MB)."""
MAX_KEY_PARTS = 32
"""A dotted key or table name with more parts is refused before tomllib reads it:
tomllib takes time and memory quadratic in the parts (30,000 parts: 17 s, 3 GiB).
rtoml, which reads first, refuses such keys itself, in linear time."""
_KEY_PART = r"""(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')"""
_DOTTED = re.compile(r"""(?<![A-Za-z0-9_\-"'.])(?:""" + _KEY_PART + r"""[ \t]*+\.[ \t]*+)++""")
"""Runs of `part.` (possessive, and never starting inside a part: linear time)."""


def read_text(path: Path) -> str:
    """The file's text (at most MAX_FILE_BYTES of UTF-8), or a located ConfigError."""
    file = str(path)
    try:
        with path.open("rb") as f:
            # read(n) allocates n bytes before reading: ask for what stat says is there
            # (plus one, to notice growth), not the cap (128 MiB).
            size = os.fstat(f.fileno()).st_size
            raw = f.read(min(size, MAX_FILE_BYTES) + 1)
            if len(raw) > size:  # not a regular file, or it grew meanwhile
                raw += f.read(MAX_FILE_BYTES + 1 - len(raw))
    except FileNotFoundError:
        raise ConfigError([Problem(file, 0, 0, "", "config file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(file, 0, 0, "", "is a directory, not a config file")]) from None
    except OSError as e:
        raise ConfigError([Problem(file, 0, 0, "", f"cannot read: {e.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([Problem(file, 1, 1, "",
                                   f"file is larger than {MAX_FILE_BYTES >> 20} MiB")])
    try:
        # A byte order mark (some Windows editors write one) is not TOML: it is dropped,
        # so the file reads as its author sees it.
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError([Problem(file, line, 1, "", "not valid UTF-8")]) from None


def parse_toml(file: str, text: str) -> dict[str, Any]:
    """The data of `text`, or a located ConfigError."""
    fast = fast_read(text)
    if fast is not None:
        return fast
    for run in _DOTTED.finditer(text):
        if run.group().count(".") >= MAX_KEY_PARTS:
            line = text.count("\n", 0, run.start()) + 1
            raise ConfigError([Problem(file, line, 1, "", "nested too deeply (a dotted key "
                                       f"of more than {MAX_KEY_PARTS} parts)")])
    import tomllib  # noqa: PLC0415 - only for what rtoml refuses: most runs never need it

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problem = _syntax_problem(file, e)
        later = _rtoml_problem(file, text)
        if later is not None and (later.line, later.col) > (problem.line, problem.col):
            # tomllib stopped at TOML 1.1 that rtoml reads (a time without seconds,
            # say): the real mistake is where rtoml stopped.
            problem = later
        raise ConfigError([_in_our_words(problem, text)]) from None
    except RecursionError:
        raise ConfigError([Problem(file, 1, 1, "", "nested too deeply")]) from None
    except (ValueError, MemoryError, OverflowError):
        # tomllib raises plain ValueError for integers past Python's digit limit.
        raise ConfigError([Problem(file, 1, 1, "", "a value is too large to read")]) from None


def fast_read(text: str) -> dict[str, Any] | None:
    """rtoml's reading of `text`, or None where tomllib must read it.

    rtoml (Rust) reads a large schedule 7x faster than tomllib (100,000
    deadlines: 0.8 s against 5.5 s), and reads TOML 1.1: times without
    seconds, `\\e` and `\\x` escapes, inline tables over several lines. Whatever
    it refuses, tomllib (TOML 1.0) reads again, for its located message; so a
    file is refused only if both refuse it. A byte order mark, which only
    rtoml takes, is left to tomllib (refused): `read_text` drops the one a file
    starts with, and any other is not TOML. The config fuzz test checks
    that both read every value alike and that rtoml takes more only in TOML 1.1.
    """
    if text.startswith("\ufeff"):
        return None
    try:
        data: dict[str, Any] = rtoml.loads(text)
    except Exception:  # noqa: BLE001 - any refusal is tomllib's to explain
        return None
    return data


_RTOML_AT = re.compile(r"^(.*) at line (\d+) column (\d+)$", re.DOTALL)


def _rtoml_problem(file: str, text: str) -> Problem | None:
    """rtoml's syntax error in `text`, located (its messages quote no values)."""
    try:
        rtoml.loads(text)
    except Exception as e:  # noqa: BLE001 - rtoml's errors are not one type
        m = _RTOML_AT.match(str(e).strip())
        if m is not None:
            return Problem(file, int(m.group(2)), int(m.group(3)), "",
                           f"TOML syntax: {one_line(m.group(1), 200)}")
    return None


def _syntax_problem(file: str, e: TOMLDecodeError) -> Problem:
    message = str(e)
    line, col = 1, 1
    if "(at line " in message:
        message, _, where = message.rpartition(" (at line ")
        nums = where.rstrip(")").split(", column ")
        with contextlib.suppress(ValueError, IndexError):
            line, col = int(nums[0]), int(nums[1])
    elif "(at end of document)" in message:
        message = message.replace(" (at end of document)", "")
    return Problem(file, line, col, "", f"TOML syntax: {message}")


_SYNTAX = "TOML syntax: "
_UNTERMINATED = ("unterminated string: its closing quote is missing on this line "
                 '(text over several lines goes in """...""")')
_NOT_A_VALUE = ('not a value: text needs quotes ("..."), a date is written 2020-11-15, '
                "a list [...]")
_ONE_A_LINE = "expected the end of the line after the value (one key = value a line)"
_TWICE = "is already set above (each key and table is written once)"
_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), w) for p, w in (
    # tomllib's words
    (r"Illegal character '\\n'$", _UNTERMINATED),
    (r"""Expected "'"$""", _UNTERMINATED),
    (r"Illegal character (.+)$", r"character \1 is not allowed here; write it as an escape"),
    (r"Cannot declare \((.+)\) twice$", "table [{}] is defined twice"),
    (r"Cannot overwrite a value$", f"this key {_TWICE}"),
    (r"Invalid value$", _NOT_A_VALUE),
    (r"Expected '=' after a key in a key/value pair$", "expected = after the key"),
    (r"Unclosed array$", "unclosed list: its ] is missing"),
    (r"Unclosed inline table$", "unclosed inline table: its } is missing"),
    (r"Unterminated string$", 'unterminated string: its closing """ is missing'),
    (r"Expected ']' at the end of a table declaration$", "unclosed table header: its ] is "
                                                         "missing"),
    (r"Expected newline or end of document after a statement$", _ONE_A_LINE),
    (r"Unescaped '\\' in a string$", "a backslash in \"...\" starts an escape (\\n, \\t, "
                                     "\\\\, ...): write \\\\ for one, or use '...'"),
    (r"Invalid initial character for a key part$", "not a key: bare keys use A-Z, a-z, 0-9, "
                                                   "- and _ (quote any other)"),
    # rtoml's, where it stopped later than tomllib
    (r"invalid (?:basic|literal) string, expected `[\"']`$", _UNTERMINATED),
    (r"invalid multi-line (?:basic|literal) string, expected `[\"']`$",
     'unterminated string: its closing """ is missing'),
    (r"duplicate key$", f"this key {_TWICE}"),
    (r"unclosed array, expected `\]`$", "unclosed list: its ] is missing"),
    (r"unclosed inline table, expected `}`$", "unclosed inline table: its } is missing"),
    (r"unclosed table, expected `\]`$", "unclosed table header: its ] is missing"),
    (r"key with no value, expected `=`$", "expected = after the key"),
    (r"string values must be quoted, expected literal string$", _NOT_A_VALUE),
    (r"unexpected key or value, expected newline, `#`$", _ONE_A_LINE),
    (r"Invalid statement$", "not a key = value line, nor a [table] header"),
))


_DATE_LIKE = re.compile(
    r"(?<![\w.:\"'-])(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"?|'[^']*'?")
_NOT_A_DATE = ("not a real date or time: months 01-12, days as the month has them, "
               "hours 00-23, minutes and seconds 00-59")


def _impossible_date(line: str) -> int | None:
    """The column of a date or datetime on `line` that names no real day or time
    (2020-13-45, 2021-02-29, 24:00): TOML readers refuse it in words about syntax."""
    # Strings blanked out (positions kept): a date in a title, or in a string left
    # open, is the string's business, not a value's.
    bare = _STRING.sub(lambda m: " " * len(m.group()), line)
    for m in _DATE_LIKE.finditer(bare.split("#", 1)[0]):
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
        try:
            date(year, month, day)
            time(hour, minute, second)
        except ValueError:
            return m.start() + 1
    return None


def _in_our_words(problem: Problem, text: str) -> Problem:
    """A reader's syntax error in the product's words, located where the mistake starts
    (the opening quote of an unterminated string, a table's header written twice, an
    impossible date)."""
    lines = text.split("\n")
    here = lines[problem.line - 1] if 0 < problem.line <= len(lines) else ""
    col = _impossible_date(here)
    if col is not None:
        return problem._replace(col=col, message=_SYNTAX + _NOT_A_DATE)
    raw = problem.message.removeprefix(_SYNTAX)
    for pattern, words in _WORDS:
        m = pattern.match(raw)
        if m is None:
            continue
        col = problem.col
        if words == _UNTERMINATED:
            col = _open_quote(here) or col
        elif m.re.pattern.startswith(("Cannot", "duplicate")):
            col = len(here) - len(here.lstrip()) + 1  # the key or header itself
        said = words
        if "{}" in words:
            parts = re.findall(r"'((?:[^'\\]|\\.)*)'", m.group(1))
            said = words.format(".".join(
                p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in parts))
        elif "\\1" in words:
            said = m.expand(words)
        return problem._replace(col=col, message=_SYNTAX + said)
    return problem


def _open_quote(line: str) -> int | None:
    """The column of the quote that opens a string left open at the end of `line`."""
    quote, opened = "", None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote, opened = ch, i + 1
        elif ch == "#":
            break
        i += 1
    return opened if quote else None

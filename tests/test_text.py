"""The shared text forms (one line, escaped breaks, RFC 3339) and the one redactor, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifier.errors import Problem
from notifier.redact import Redactor, redact
from notifier.text import escaped, listed, one_line, rfc3339, shown_lines
from notifier.wording import plural


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("disk  full\n(SQLITE_FULL)\r\n", None, "disk full (SQLITE_FULL)"),
    ("a\u2028b\tc", None, "a b c"),
    ("x" * 10, 10, "x" * 10),
    ("x" * 11, 10, "x" * 9 + "\u2026"),
    ("", 5, ""),
])
def test_one_line_folds_white_space_and_caps(text: str, limit: int | None, expected: str) -> None:
    assert one_line(text, limit) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("one\ntwo", "one\\ntwo"),
    ("one\r\ntwo\rthree", "one\\ntwo\\nthree"),
    ("a\u2028b\x85c", "a\\nb\\nc"),
    ("bell\x07 esc\x1b[31m tab\t", "bell\\u0007 esc\\u001b[31m tab\t"),
    ("csi\x9b31m del\x7f nbsp\xa0", "csi\\u009b31m del\\u007f nbsp\xa0"),  # C1 CSI too
])
def test_escaped_keeps_everything_visible_on_one_line(text: str, expected: str) -> None:
    assert escaped(text) == expected
    assert "\n" not in escaped(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("one\ntwo", ["one", "two"]),
    ("one\r\n\n\ntwo  \rthree\u2028four\x85five", ["one", "two", "three", "four", "five"]),
    ("  indented\n\t tab\n \n", ["  indented", "\t tab"]),
    ("esc\x1b[2J csi\x9b31m", ["esc\\u001b[2J csi\\u009b31m"]),
    ("", []),
])
def test_shown_lines_are_real_lines_each_safe_to_print(text: str, expected: list[str]) -> None:
    assert shown_lines(text) == expected


@pytest.mark.parametrize(("instant", "fraction", "expected"), [
    (datetime(2020, 11, 15, 14, 54, tzinfo=UTC), False, "2020-11-15T14:54:00Z"),
    (datetime(2020, 11, 15, 18, 54, 0, 250, tzinfo=timezone(timedelta(hours=4))), False,
     "2020-11-15T14:54:00Z"),
    (datetime(2020, 11, 15, 18, 54, 0, 250, tzinfo=timezone(timedelta(hours=4))), True,
     "2020-11-15T14:54:00.000250Z"),
    (datetime(2020, 11, 15, 14, 54, tzinfo=UTC), True, "2020-11-15T14:54:00Z"),
])
def test_rfc3339_is_utc_with_z(instant: datetime, fraction: bool, expected: str) -> None:
    assert rfc3339(instant, fraction=fraction) == expected


def test_one_redactor_for_errors_and_logs() -> None:
    secret = "s3cr/et+pass"
    problem = Problem("c.toml", 3, 7, "channels.ops.url", f"bad URL near {secret} and s3cr%2Fet%2Bpass")
    assert "s3cr" not in str(problem.scrubbed((secret,)))
    assert Redactor([secret]).redact(f"x {secret} y") == "x *** y"
    assert redact("abc abcd", ["abc", "abcd"]) == "abc ***"  # shorter than 4: left alone
    assert redact("abc", ["abc"], min_length=3) == "***"


@pytest.mark.parametrize(("items", "expected"), [
    ([], ""),
    (["a"], "a"),
    ([f"d{i}" for i in range(10)], "d0, d1, d2, d3, d4, d5, d6, d7, d8, d9"),
    ([f"d{i}" for i in range(1000)], "d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 and 990 more"),
])
def test_listed_names_ten_then_counts(items: list[str], expected: str) -> None:
    assert listed(items) == expected


@pytest.mark.parametrize(("n", "word", "many", "expected"), [
    (0, "deadline", None, "0 deadlines"),
    (1, "deadline", None, "1 deadline"),
    (2, "deadline", None, "2 deadlines"),
    (1, "delivery", "deliveries", "1 delivery"),
    (3, "delivery", "deliveries", "3 deliveries"),
])
def test_plural(n: int, word: str, many: str | None, expected: str) -> None:
    assert plural(n, word, many) == expected

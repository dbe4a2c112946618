"""Random and mutated TOML: only our ConfigError escapes, and never with a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier import config
from notifier.errors import ConfigError

SECRET = "Zq9-canary-Pw-7731"
BASE = f"""\
[notifier]
log_level = "INFO"

[defaults]
timezone = "Europe/Berlin"
reminders = ["7d", "1d", "2h"]
remind_at = "09:00"

[channels.hook]
url = "json://ops:{SECRET}@127.0.0.1:9/"
kinds = ["reminder", "due"]

[channels.console]
url = "console://"

[digest]
schedule = "0 8 * * 1"

[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
announced = 2020-11-10T01:00:00+04:00
channels = ["hook", "console"]

[[deadlines.extensions]]
due = 2020-11-25
announced = 2020-11-15T20:24:00+05:30
reason = "roads"

[[deadlines]]
id = "lachin"
title = "Lachin handover"
due = 2021-03-28T02:30:00
overdue_every = "1d"
overdue_limit = 2
"""

FRAGMENTS = ["[", "]", "[[", "]]", "=", '"', "'", "\n", "{", "}", ",", ".", "#", "-", ":", "T",
             "9" * 30, "1e999", "nan", "inf", "true", "2020-13-45", "24:61:00", "P1M",
             "deadlines", "extensions", "channels", "url", SECRET, "\x00", "\\u0000", "é"]


def secret_only_in_values(text: str) -> bool:
    """Keys and table names are not secret: the property covers secrets in string values."""
    for line in text.splitlines():
        at = line.find(SECRET)
        if at >= 0 and not ('"' in line[:at] and "=" in line[:at]):
            return False
    return True


def load_text(tmp: Path, text: str) -> None:
    path = tmp / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    os.chmod(path, 0o600)
    try:
        config.load(path)
    except ConfigError as e:
        message = str(e)
        if secret_only_in_values(text):
            assert SECRET not in message
        assert "Traceback" not in message
        assert all(p.line >= 0 for p in e.problems)  # noqa: PT017 - loading may also succeed


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = BASE
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
        pos = draw(st.integers(0, len(text)))
        if op == "delete":
            length = draw(st.integers(1, 40))
            text = text[:pos] + text[pos + length:]
        elif op == "insert":
            text = text[:pos] + draw(st.sampled_from(FRAGMENTS)) + text[pos:]
        elif op == "duplicate":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        else:
            lines = text.splitlines(keepends=True)
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


def test_base_is_rejected_only_for_the_dst_gap(tmp_path: Path) -> None:
    # The base file is valid but for one nonexistent local time, so mutations
    # explore both sides of validity.
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert [p.path for p in caught.value.problems] == ["deadlines.1.due"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutated_config(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from([*FRAGMENTS, "a", "b", " ", "1", "x = "]),
                     max_size=60).map("".join))
def test_random_config(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


def test_pathological_inputs(tmp_path: Path) -> None:
    for text in ("a = " + "[" * 100_000, "a = " + "{b = " * 5000 + "1" + "}" * 5000,
                 "a = " + "9" * 100_000, BASE.replace('"Kalbajar handover"', '"' + "x" * 10**5 + '"'),
                 "\ufeff" + BASE, BASE.replace("[[deadlines]]", "[[deadlines]]\n" * 3)):
        load_text(tmp_path, text)

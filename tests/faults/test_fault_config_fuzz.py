"""Fault 10: hostile config input. Only ConfigError escapes, fast, small, secret-free.

A Hypothesis test of 2,400 examples per run: a valid base file mutated
(deletions, insertions of hostile fragments, duplicated and swapped lines,
flipped bytes), random TOML from a grammar of the schema's own keys with
values of the wrong types, and random fragment soup; plus explicit examples
for the inputs that make `tomllib` raise something other than
TOMLDecodeError (arrays and inline tables nested thousands deep:
RecursionError; integers of 100,000 digits: ValueError) or take time and
memory quadratic in their size (dotted keys and table names of tens of
thousands of parts), a file over the size limit, invalid UTF-8, NUL bytes
and a BOM. A channel URL with a
canary password is also set through NOTIFIER_CHANNELS__ENV__URL.

For every input, `config.load` either returns or raises ConfigError (any
other exception fails the test), within `MAX_SECONDS`, allocating at most
`MAX_PEAK` bytes at its peak (tracemalloc, on every pathological input and
every fifth random one), and its error text never holds a
canary that sat in a string value. Figures: examples, ConfigError share,
slowest, largest peak.
"""

from __future__ import annotations

import math
import os
import re
import time
import tomllib
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.figures import report

from notifier.config import loader as config
from notifier.config import tomlread
from notifier.errors import ConfigError

pytestmark = pytest.mark.timeout(300)
SECRET = "Fz7-canary-Pw-5521"
ENV_SECRET = "Fz7-envcanary-0937"
MAX_SECONDS = 10.0
"""Per example, with tracemalloc on (which slows allocation two- to threefold)."""
MAX_PEAK = 200 * 1024 * 1024
EXAMPLES = 800
"""Per strategy; three strategies."""

BASE = f"""\
[notifier]
log_level = "INFO"

[defaults]
timezone = "Europe/Berlin"
reminders = ["7d", "1d", "2h"]
remind_at = "09:00"
overdue_every = "1d"
overdue_limit = 1

[channels.hook]
url = "json://ops:{SECRET}@127.0.0.1:9/"
kinds = ["reminder", "due"]

[channels.env]
url = "json://127.0.0.1:9/"

[channels.console]
url = "console://"

[digest]
schedule = "0 8 * * 1"

[delivery]
give_up_after = "24h"
timeout = "30s"

[templates.due]
title = "{{{{ deadline.title }}}} is due"

[[deadlines]]
id = "kalbajar"
title = "Kalbajar handover"
due = 2020-11-15
timezone = "Asia/Baku"
announced = 2020-11-10T01:00:00+04:00
channels = ["hook", "console"]

[[deadlines.extensions]]
due = 2020-11-25
announced = 2020-11-15T20:24:00+05:30
reason = "roads"

[[deadlines]]
id = "lachin"
title = "Lachin handover"
due = 2020-12-01T12:00:00
overdue_limit = 2
completed = 2020-11-30
"""

FRAGMENTS = ["[", "]", "[[", "]]", "=", '"', "'", '"""', "\n", "{", "}", ",", ".", "#", "-",
             ":", "T", "Z", "9" * 40, "-0", "0x1F", "1e999", "nan", "-inf", "true", "1979-05-27",
             "2020-13-45", "24:61:00", "02:30:00", "P1M", "P1D", "1w2d", "-1d", "0s",
             "deadlines", "extensions", "channels", "url", "urls", "kinds", "templates",
             "{{", "}}", "{% for x in y %}", SECRET, "\x00", "\\u0000", "\\", "é", "\u2028",
             "\ufeff", " " * 50, "a" * 300]

KEYS = {
    "": ["notifier", "defaults", "channels", "deadlines", "digest", "delivery", "templates"],
    "notifier": ["state", "plugin_paths", "log_level"],
    "defaults": ["timezone", "reminders", "channels", "due_time", "remind_at", "overdue_every",
                 "overdue_limit"],
    "deadline": ["id", "title", "due", "timezone", "announced", "reminders", "channels",
                 "overdue_every", "overdue_limit", "completed", "cancelled", "note", "notes",
                 "url", "tags"],
    "digest": ["schedule", "always", "channels"],
    "delivery": ["give_up_after", "catchup", "timeout"],
}

SCALARS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=40).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"')
                             .replace("\n", "\\n") + '"'),
    st.sampled_from(["2020-11-15", "2020-11-15T10:00:00", "2020-11-15T10:00:00+04:00",
                     "10:00:00", "2021-03-28T02:30:00", "2021-10-31T02:30:00",
                     '"Mars/Olympus"', '"3d"', '"P1Y"', '"1d12h"', '"* * *"', '"0 8 * * 9"',
                     f'"json://ops:{SECRET}@host/"', '"jsonl://relative"', '"console://x"',
                     '["7d", "1d"]', "[1, 2]", "[]", "{}", '{a = 1}', '["hook", "nope"]']),
)


@st.composite
def schema_toml(draw: st.DrawFn) -> str:
    """Random files over the schema's own keys, with values of any type."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        section = draw(st.sampled_from(["notifier", "defaults", "digest", "delivery",
                                        "deadline", "channel", "extension", "junk"]))
        if section == "deadline":
            lines.append("[[deadlines]]")
            keys = KEYS["deadline"]
        elif section == "extension":
            lines.append("[[deadlines.extensions]]")
            keys = ["due", "announced", "reason", "source", "bogus"]
        elif section == "channel":
            lines.append(f"[channels.{draw(st.sampled_from(['hook', 'x', 'Bad Name', 'a.b']))}]")
            keys = ["url", "urls", "kinds", "extra"]
        elif section == "junk":
            lines.append(f"[{draw(st.sampled_from(['_private', 'deadlines', 'x.y.z']))}]")
            keys = ["a", "b"]
        else:
            lines.append(f"[{section}]")
            keys = KEYS[section]
        for key in draw(st.lists(st.sampled_from(keys), max_size=8)):
            lines.append(f"{key} = {draw(SCALARS)}")
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = BASE
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "flip"]))
        pos = draw(st.integers(0, len(text)))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 60)):]
        elif op == "insert":
            text = text[:pos] + draw(st.sampled_from(FRAGMENTS)) + text[pos:]
        elif op == "flip" and text:
            at = min(pos, len(text) - 1)
            text = text[:at] + chr((ord(text[at]) + draw(st.integers(1, 120))) % 0x2FF) \
                + text[at + 1:]
        else:
            lines = text.splitlines(keepends=True)
            if not lines:
                continue
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "duplicate":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


SOUP = st.lists(st.sampled_from([*FRAGMENTS, "a", "b", " ", "1", "x = ", "[a]\n", "b.c = 1\n"]),
                max_size=80).map("".join)

DEEP = 100_000
PATHOLOGICAL = [
    "a = " + "[" * DEEP + "]" * DEEP,
    "a = " + "[" * DEEP,
    "a = " + "{b = " * 20_000 + "1" + "}" * 20_000,
    ".".join(["a"] * 30_000) + " = 1",  # quadratic in tomllib: 17 s and 3 GiB unchecked
    "[" + ".".join(["t"] * 200_000) + "]",
    "x = {" + ".".join(['"q"'] * 50_000) + " = 1}",
    "\n".join(".".join(["a"] * 31) + f"{i} = 1" for i in range(15_000)),  # just under the limit
    "\n".join("[" + ".".join(["t"] * i) + "]" for i in range(1, 400)),
    "a = " + "9" * 100_000,
    "a = -" + "1" * 5_000,
    "a = 0x" + "f" * 50_000,
    "a = " + "1" * 4_301 + ".5e" + "9" * 500,
    "x = 1\n" * 200_000,  # 1.2 MB of one key, redefined
    BASE.replace('"Kalbajar handover"', '"' + "x" * 900_000 + '"'),
    "\ufeff" + BASE,
    BASE + "\x00",
    BASE.replace("[[deadlines]]", "[[deadlines]]\n" * 5),
    BASE.replace("Lachin", "\ud800"),  # a lone surrogate: not valid UTF-8 on disk
    "\n".join(f"[[deadlines]]\nid = \"d{i}\"\ntitle = \"t\"\ndue = 2020-11-15" for i in range(5000)),
]

STATS: dict[str, float] = {"examples": 0, "traced": 0, "config_errors": 0,
                           "other_exceptions": 0, "over_time": 0, "over_memory": 0,
                           "slowest_s": 0.0, "peak_mb": 0.0, "both_parsers": 0,
                           "toml_1_1_only": 0, "parsers_disagree": 0}
TRACE_EVERY = 5


def secret_only_in_values(text: str) -> bool:
    """Keys and table names are not secret: the property covers secrets in string values."""
    for line in text.splitlines():
        at = line.find(SECRET)
        if at >= 0 and not ('"' in line[:at] and "=" in line[:at]):
            return False
    return True


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    old = os.environ.get("NOTIFIER_CHANNELS__ENV__URL")
    os.environ["NOTIFIER_CHANNELS__ENV__URL"] = f"json://ops:{ENV_SECRET}@127.0.0.1:9/"
    config.load(_write(tmp_path_factory.mktemp("warm"), BASE))  # imports, caches: not measured
    try:
        yield tmp_path_factory.mktemp("fuzz")
    finally:
        if old is None:
            del os.environ["NOTIFIER_CHANNELS__ENV__URL"]
        else:
            os.environ["NOTIFIER_CHANNELS__ENV__URL"] = old


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "fuzz.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    path.chmod(0o600)
    return path


def check(tmp: Path, text: str, *, trace: bool = True) -> None:
    path = _write(tmp, text)
    if trace:
        tracemalloc.start()
    began = time.monotonic()
    error: ConfigError | None = None
    loaded: config.Config | None = None
    try:
        loaded = config.load(path)
    except ConfigError as e:
        error = e
    except Exception:
        STATS["other_exceptions"] += 1
        raise
    finally:
        took = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
    STATS["examples"] += 1
    STATS["traced"] += trace
    STATS["slowest_s"] = max(STATS["slowest_s"], took)
    STATS["peak_mb"] = max(STATS["peak_mb"], peak / 2**20)
    STATS["over_time"] += took > MAX_SECONDS
    STATS["over_memory"] += peak > MAX_PEAK
    assert took <= MAX_SECONDS, (took, text[:200])
    assert peak <= MAX_PEAK, (peak, text[:200])
    if loaded is not None:
        # Read in batches of deadlines or whole, a file means the same.
        assert config.load(path, in_parts=False) == loaded, text[:300]
    if error is not None:
        STATS["config_errors"] += 1
        message = str(error)
        assert ENV_SECRET not in message
        if secret_only_in_values(text):
            assert SECRET not in message, message
        assert "Traceback" not in message
        assert error.problems


def same_value(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return type(a) is type(b) and a == b


STRINGS = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
TOML_1_1_VALUES = re.compile(r"(?:[Tt ]|[=\[,]\s*)\d\d:\d\d(?![:\d])|\{[^}]*\n|,\s*\}")
TOML_1_1_ESCAPES = re.compile(r"\\[ex]")
"""What TOML 1.1 adds that rtoml reads and tomllib (1.0) refuses: outside strings,
times without seconds and inline tables over lines or with a trailing comma;
inside them, the \\e and \\xHH escapes."""


def has_toml_1_1(text: str) -> bool:
    # "09:00" inside a string is no TOML 1.1 time: look at values outside strings.
    return TOML_1_1_VALUES.search(STRINGS.sub('""', text)) is not None \
        or TOML_1_1_ESCAPES.search(text) is not None


def check_parsers_agree(text: str) -> None:
    """notifier reads with rtoml and falls back to tomllib: both read every value
    alike, and rtoml accepts more only where the text has a TOML 1.1 construct."""
    fast = tomlread.fast_read(text)
    if fast is None:
        return
    STATS["both_parsers"] += 1
    try:
        slow = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        STATS["toml_1_1_only"] += 1
        if not has_toml_1_1(text):
            STATS["parsers_disagree"] += 1
            raise AssertionError(f"rtoml accepts what tomllib refuses ({e}): "
                                 f"{text[:300]!r}") from e
        return
    if not same_value(fast, slow):
        STATS["parsers_disagree"] += 1
        raise AssertionError(f"rtoml and tomllib read differently: {text[:300]!r}")


def run_examples(strategy: st.SearchStrategy[str]) -> Callable[[Path], None]:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(text=strategy)
    def inner(fuzz_dir: Path, text: str) -> None:
        # Every TRACE_EVERY-th example under tracemalloc (it doubles the time).
        check(fuzz_dir, text, trace=int(STATS["examples"]) % TRACE_EVERY == 0)
        check_parsers_agree(text)
    return inner


def test_mutated_base(fuzz_dir: Path) -> None:
    run_examples(mutated())(fuzz_dir)


def test_schema_shaped_random(fuzz_dir: Path) -> None:
    run_examples(schema_toml())(fuzz_dir)


def test_fragment_soup(fuzz_dir: Path) -> None:
    run_examples(SOUP)(fuzz_dir)


@pytest.mark.parametrize("index", range(len(PATHOLOGICAL)))
def test_pathological(fuzz_dir: Path, index: int) -> None:
    check(fuzz_dir, PATHOLOGICAL[index])


@pytest.mark.parametrize("text", [
    "announced = 2020-11-10T04:00",   # the input that found it: a time without seconds
    'a = "\\e[1m"', "a = {b = 1,}", "a = {\nb = 1\n}", "a = [04:00]",
])
def test_what_only_rtoml_reads_is_toml_1_1(text: str) -> None:
    before = STATS["toml_1_1_only"]
    check_parsers_agree(text)
    assert STATS["toml_1_1_only"] == before + 1
    assert not has_toml_1_1(BASE)  # the fuzzed base file has none: any excess there fails


def test_figures(record_property: Callable[[str, object], None]) -> None:
    """Runs last in this module: what the README's table claims of all the inputs above
    together (each input's own bounds are checked as it runs)."""
    inputs = 3 * EXAMPLES + len(PATHOLOGICAL)
    if STATS["examples"] < inputs:
        pytest.skip("the fuzz tests of this module did not all run")
    assert STATS["other_exceptions"] == 0  # only ConfigError escapes
    assert STATS["over_time"] == 0
    assert STATS["slowest_s"] <= MAX_SECONDS
    assert STATS["over_memory"] == 0
    assert STATS["peak_mb"] <= MAX_PEAK / 2**20
    # Memory is measured on every pathological input and every fifth random one.
    assert STATS["traced"] >= len(PATHOLOGICAL) + 3 * EXAMPLES // TRACE_EVERY
    assert STATS["parsers_disagree"] == 0
    report("config fuzz", {
        "examples": int(STATS["examples"]), "memory_traced": int(STATS["traced"]),
        "config_errors": int(STATS["config_errors"]),
        "other_exceptions": int(STATS["other_exceptions"]), "slowest_ms": round(STATS["slowest_s"] * 1000),
        "peak_mib": round(STATS["peak_mb"], 1),
        "read_by_both_parsers": int(STATS["both_parsers"]),
        "toml_1_1_only": int(STATS["toml_1_1_only"]),
        "parsers_disagree": int(STATS["parsers_disagree"]),
    }, record_property)


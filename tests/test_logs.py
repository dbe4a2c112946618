"""Logging: journald priority prefixes, one line per event, secret redaction."""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine

from notifier.logs import SecretRedactor, setup_logging

JOURNAL = {"JOURNAL_STREAM": "8:123456"}
PLAIN: dict[str, str] = {}

# Planted fake secrets.
SMTP_PASSWORD = "hunter2-Kalbajar/25"
TOKEN = "tok_9f8e7d6c5b4a"


OUR_HANDLER = "notifier.logs"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo setup_logging: remove its handler, restore levels and warnings capture."""
    root = logging.getLogger()
    apprise = logging.getLogger("apprise")
    saved_level, saved_apprise = root.level, apprise.level
    saved_switches = (logging._srcfile, logging.logThreads, logging.logProcesses,
                      logging.logMultiprocessing)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == OUR_HANDLER:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved_level)
        apprise.setLevel(saved_apprise)
        logging.captureWarnings(False)
        (logging._srcfile, logging.logThreads, logging.logProcesses,
         logging.logMultiprocessing) = saved_switches


def lines(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_journal_priority_prefixes() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", out, environ=JOURNAL)
    log = logging.getLogger("notifier.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert lines(out) == [
        "<7>notifier.test: d",
        "<6>notifier.test: i",
        "<4>notifier.test: w",
        "<3>notifier.test: e",
        "<2>notifier.test: c",
    ]


def test_journal_stream_read_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:99")
    out = io.StringIO()
    setup_logging("INFO", out)
    logging.getLogger("x").info("hello")
    assert lines(out) == ["<6>x: hello"]


def test_plain_format_has_utc_timestamp_and_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    setup_logging("INFO", out)
    with time_machine.travel(datetime(2026, 11, 28, 9, 0, 0, 400000, tzinfo=UTC), tick=False):
        logging.getLogger("notifier.daemon").warning("deadline %s extended", "kalbajar")
    assert lines(out) == [
        "2026-11-28T09:00:00Z WARNING notifier.daemon: deadline kalbajar extended"
    ]


def test_each_line_has_its_own_second(monkeypatch: pytest.MonkeyPatch) -> None:
    # The formatter reuses the text of the last second it formatted.
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    setup_logging("INFO", out)
    instants = [(0, 400000), (0, 999999), (1, 0), (0, 500000), (59, 0)]
    for second, micro in instants:
        with time_machine.travel(datetime(2026, 11, 28, 9, 0, second, micro, tzinfo=UTC),
                                 tick=False):
            logging.getLogger("n").info("x")
    assert [line.split(" ")[0] for line in lines(out)] == [
        "2026-11-28T09:00:00Z", "2026-11-28T09:00:00Z", "2026-11-28T09:00:01Z",
        "2026-11-28T09:00:00Z", "2026-11-28T09:00:59Z",
    ]


def test_level_filters_and_is_case_insensitive() -> None:
    out = io.StringIO()
    setup_logging("warning", out, environ=PLAIN)
    log = logging.getLogger("n")
    log.info("hidden")
    log.warning("shown")
    assert len(lines(out)) == 1
    assert lines(out)[0].endswith("WARNING n: shown")


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD", io.StringIO())


def test_journal_stream_must_match_a_real_stream(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w", encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        setup_logging("INFO", f, environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        logging.getLogger("a").info("to the journal")
        setup_logging("INFO", f, environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        logging.getLogger("a").info("redirected elsewhere")
    written = (tmp_path / "log").read_text(encoding="utf-8").splitlines()
    assert written[0] == "<6>a: to the journal"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO a: redirected elsewhere", written[1])


@pytest.mark.parametrize("value", ["", "garbage", "1:x", ":"])
def test_malformed_journal_stream_means_plain(value: str) -> None:
    out = io.StringIO()
    setup_logging("INFO", out, environ={"JOURNAL_STREAM": value})
    logging.getLogger("a").info("m")
    assert lines(out)[0].endswith(" INFO a: m")


def test_journal_can_be_forced() -> None:
    out = io.StringIO()
    setup_logging("INFO", out, journal=True, environ=PLAIN)
    logging.getLogger("a").error("m")
    assert lines(out) == ["<3>a: m"]


def fail_deeply() -> None:
    table: dict[str, int] = {}
    try:
        table["missing"]
    except KeyError as exc:
        raise RuntimeError("ledger write failed\nsecond line of the reason") from exc


@pytest.mark.parametrize("env", [JOURNAL, PLAIN])
def test_multiline_message_and_exception_stay_on_one_line(env: dict[str, str]) -> None:
    out = io.StringIO()
    setup_logging("INFO", out, environ=env)
    log = logging.getLogger("notifier.ledger")
    try:
        fail_deeply()
    except RuntimeError:
        log.exception("could not record\ndelivery %s", "k1")
    log.info("next event\r\nwith CRLF")
    # setup_logging turns off the caller lookup that stack_info needs, but a
    # record that carries a stack (from another handler's logger) stays one line.
    log.handle(log.makeRecord("notifier.ledger", logging.INFO, "f.py", 1, "tail", (), None,
                              sinfo="Stack (most recent call last):\n  File \"f.py\""))
    got = lines(out)
    assert len(got) == 3
    first = got[0]
    if env is JOURNAL:
        assert first.startswith("<3>notifier.ledger: could not record\\ndelivery k1\\nTraceback")
    else:
        assert " ERROR notifier.ledger: could not record\\ndelivery k1\\nTraceback" in first
    assert "KeyError: 'missing'" in first
    assert "The above exception was the direct cause" in first
    assert "RuntimeError: ledger write failed\\nsecond line of the reason" in first
    assert got[1].endswith("next event\\nwith CRLF")
    assert "\\nStack (most recent call last):\\n" in got[2]


def raise_with(exc: Exception) -> None:
    raise exc


def test_secrets_are_redacted_everywhere() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", out, secrets=[SMTP_PASSWORD, TOKEN, "abc"], environ=JOURNAL)
    log = logging.getLogger("notifier.channels")
    url = f"mailtos://ops:{quote(SMTP_PASSWORD, safe='')}@mail.example.org"
    log.info("sending via %s", url)
    log.warning(f"token {TOKEN} rejected")
    try:
        raise_with(ValueError(f"auth failed for {SMTP_PASSWORD}"))
    except ValueError:
        log.exception("delivery failed with %r", {"token": TOKEN})
    log.info("short values like abc are left alone")
    text = out.getvalue()
    assert SMTP_PASSWORD not in text
    assert quote(SMTP_PASSWORD, safe="") not in text
    assert TOKEN not in text
    got = lines(out)
    assert got[0] == "<6>notifier.channels: sending via mailtos://ops:***@mail.example.org"
    assert got[1] == "<4>notifier.channels: token *** rejected"
    assert got[2].startswith("<3>notifier.channels: delivery failed with {'token': '***'}\\n")
    assert got[2].endswith("ValueError: auth failed for ***")
    assert got[3].endswith("short values like abc are left alone")
    assert len(got) == 4


def test_multiline_secret_is_redacted_before_escaping() -> None:
    key = "-----BEGIN KEY-----\nMIIBVQIBADANBg\n-----END KEY-----"
    out = io.StringIO()
    setup_logging("INFO", out, secrets=[key], environ=PLAIN)
    logging.getLogger("a").info("loaded %s from credentials", key)
    assert lines(out)[0].endswith("INFO a: loaded *** from credentials")


def test_longest_secret_wins() -> None:
    redactor = SecretRedactor(["pass", "password-long"])
    assert redactor.redact("x password-long y pass") == "x *** y ***"


def test_redactor_works_as_a_filter_on_any_handler() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    redactor = SecretRedactor([TOKEN])
    handler.addFilter(redactor)
    log = logging.getLogger("notifier.isolated")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise_with(KeyError(TOKEN))
        except KeyError:
            log.error("with %s", TOKEN, exc_info=True)
        redactor.add(["later-secret"])
        log.error("rotated to later-secret")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    text = out.getvalue()
    assert TOKEN not in text
    assert "later-secret" not in text
    assert text.startswith("ERROR with ***\n")
    assert "KeyError: '***'" in text
    assert "ERROR rotated to ***" in text


def test_bad_format_arguments_never_raise_nor_leak() -> None:
    out = io.StringIO()
    setup_logging("INFO", out, secrets=[TOKEN], environ=PLAIN)
    root = logging.getLogger()
    # pytest's own capture handler would choke on the bad record: leave only ours.
    foreign = [h for h in root.handlers if h.get_name() != OUR_HANDLER]
    for handler in foreign:
        root.removeHandler(handler)
    try:
        logging.getLogger("a").info("two %s %s", TOKEN)  # noqa: PLE1206 - too few arguments on purpose
    finally:
        for handler in foreign:
            root.addHandler(handler)
    got = lines(out)
    assert len(got) == 1
    assert TOKEN not in got[0]
    assert "unformattable log arguments" in got[0]


def test_apprise_is_quiet_below_warning_unless_debug() -> None:
    out = io.StringIO()
    setup_logging("INFO", out, environ=JOURNAL)
    apprise = logging.getLogger("apprise")
    apprise.info("apprise chatter")
    apprise.warning("apprise warning")
    assert lines(out) == ["<4>apprise: apprise warning"]

    out = io.StringIO()
    setup_logging("DEBUG", out, environ=JOURNAL)
    apprise.debug("apprise detail")
    assert lines(out) == ["<7>apprise: apprise detail"]


def test_setup_twice_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", first, environ=PLAIN)
    setup_logging("INFO", second, secrets=[TOKEN], environ=JOURNAL)
    logging.getLogger("a").info("once %s", TOKEN)
    assert first.getvalue() == ""
    assert lines(second) == ["<6>a: once ***"]


def test_warnings_become_one_log_line() -> None:
    out = io.StringIO()
    setup_logging("INFO", out, environ=JOURNAL)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("config readable by others", UserWarning, stacklevel=1)
    got = lines(out)
    assert len(got) == 1
    assert got[0].startswith("<4>py.warnings: ")
    assert "config readable by others" in got[0]

"""Channels against real local receivers: no mocks of apprise."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apprise
import pytest
from support.jsonl import read_jsonl
from support.receivers import HttpReceiver, SmtpReceiver, dead_url

from notifier.delivery import appriseset, channels, plugins
from notifier.delivery.appriseset import load_plugin_paths, register_builtin_schemas
from notifier.delivery.channels import ChannelSender, send_test
from notifier.delivery.outcomes import NotifyReport, OutgoingMessage, UrlResult, failure_of
from notifier.delivery.urls import instantiate, validate_url
from notifier.errors import (
    ChannelDeliveryError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notifier.schedule.model import Channel

PASSWORD = "Pl4ntedS3cret"
DUE = datetime(2020, 11, 25, 20, 0, tzinfo=UTC)
PLANNED = datetime(2020, 11, 22, 5, 0, tzinfo=UTC)
JSONL_FIELDS = ["key", "kind", "deadline", "title", "body", "due", "planned_at", "sent_at", "late"]


def message(key: str = "kalbajar/reminder/1", **changes: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {
        "key": key,
        "kind": "reminder",
        "deadline": "kalbajar",
        "title": "Kalbajar handover",
        "body": "Due 25 Nov 2020 24:00 (+04:00), in 3 days.",
        "due": DUE,
        "planned_at": PLANNED,
        "late": False,
    }
    fields.update(changes)
    return OutgoingMessage(**fields)


def sender(*urls: str, timeout: float = 10.0, name: str = "ops") -> ChannelSender:
    return ChannelSender(Channel(name=name, urls=tuple(urls)), timeout=timeout)


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


@pytest.fixture
def second_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


# --------------------------------------------------------------------------- console


def test_console_rejects_host_or_path() -> None:
    error = validate_url("console://somewhere")
    assert error is not None
    assert "console://" in error


# --------------------------------------------------------------------------- jsonl


def test_jsonl_writes_every_field_and_only_appends(jsonl: Path) -> None:
    s = sender(f"jsonl://{jsonl}")
    before = datetime.now(UTC).replace(microsecond=0)
    s.send(message(body="two\nlines"))
    first = jsonl.read_bytes()
    s.send(
        message(
            key="kalbajar/due",
            kind="due",
            due=None,
            planned_at=datetime(2020, 11, 26, 0, 0, tzinfo=timezone(timedelta(hours=4))),
            late=True,
        )
    )
    assert jsonl.read_bytes().startswith(first)
    assert stat.S_IMODE(jsonl.stat().st_mode) == 0o600

    one, two = read_jsonl(jsonl)
    assert list(one) == JSONL_FIELDS
    assert one["key"] == "kalbajar/reminder/1"
    assert one["kind"] == "reminder"
    assert one["deadline"] == "kalbajar"
    assert one["title"] == "Kalbajar handover"
    assert one["body"] == "two\nlines"
    assert one["due"] == "2020-11-25T20:00:00Z"
    assert one["planned_at"] == "2020-11-22T05:00:00Z"
    assert one["late"] is False
    sent_at = datetime.fromisoformat(one["sent_at"])
    assert one["sent_at"].endswith("Z")
    assert before <= sent_at <= datetime.now(UTC)

    assert two["key"] == "kalbajar/due"
    assert two["due"] is None
    assert two["planned_at"] == "2020-11-25T20:00:00Z"  # converted to UTC
    assert two["late"] is True


def test_jsonl_keeps_an_existing_files_mode_and_heals_a_torn_tail(jsonl: Path) -> None:
    jsonl.write_bytes(b'{"key":"old"}\n{"key":"torn')
    jsonl.chmod(0o640)
    sender(f"jsonl://{jsonl}").send(message())
    lines = jsonl.read_text("utf-8").splitlines()
    assert lines[0] == '{"key":"old"}'
    assert lines[1] == '{"key":"torn'
    assert json.loads(lines[2])["key"] == "kalbajar/reminder/1"
    assert stat.S_IMODE(jsonl.stat().st_mode) == 0o640


def test_jsonl_line_separators_in_text_stay_escaped(jsonl: Path) -> None:
    sender(f"jsonl://{jsonl}").send(message(title="a\u2028b", body="c\u2029d\x85e"))
    text = jsonl.read_text("utf-8")
    assert len(text.splitlines()) == 1
    assert read_jsonl(jsonl)[0]["body"] == "c\u2029d\x85e"


def test_jsonl_concurrent_writers_never_tear_lines(jsonl: Path) -> None:
    senders = [sender(f"jsonl://{jsonl}", name=f"c{i}") for i in range(4)]
    big = "x" * 20_000  # well past a pipe buffer: one write() per line still

    def work(n: int) -> None:
        for i in range(25):
            senders[n].send(message(key=f"w{n}/{i}", body=big))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_jsonl(jsonl)
    expected = sorted(f"w{n}/{i}" for n in range(4) for i in range(25))
    assert sorted(r["key"] for r in records) == expected
    assert all(r["body"] == big for r in records)


def test_metadata_reaches_jsonl_from_concurrent_sends(
    jsonl: Path, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each URL is delivered on a thread of its own; concurrent sends from
    # several threads must each see their own message's metadata.
    s = sender(http_receiver.url, "console://", f"jsonl://{jsonl}")

    def work(n: int) -> None:
        for i in range(5):
            s.send(message(key=f"t{n}/{i}", title=f"title {n}/{i}", deadline=f"d{n}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_jsonl(jsonl)
    assert len(records) == 20
    for r in records:
        n, i = r["key"][1:].split("/")
        assert r["title"] == f"title {n}/{i}"
        assert r["deadline"] == f"d{n}"
    # console://: each message's lines together (title, then its one body line).
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 40
    assert sorted(out[0::2]) == sorted(f"[reminder] title {n}/{i}"
                                       for n in range(4) for i in range(5))
    assert set(out[1::2]) == {"    Due 25 Nov 2020 24:00 (+04:00), in 3 days."}
    assert len(http_receiver.requests) == 20


def test_jsonl_refuses_to_write_without_notifier_metadata(jsonl: Path) -> None:
    register_builtin_schemas()
    ap = apprise.Apprise()
    assert ap.add(f"jsonl://{jsonl}")
    assert not ap.notify(body="hello", title="plain apprise call")
    assert not jsonl.exists()


def test_jsonl_unwritable_target_is_a_transient_failure(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "out.jsonl"
    with pytest.raises(DeliveryError) as info:
        sender(f"jsonl://{target}").send(message())
    assert info.value.permanent is False
    assert "No such file or directory" in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["jsonl://relative/out.jsonl", "jsonl:///", "jsonl://", "jsonl:///var/lib/dir/"],
)
def test_jsonl_needs_an_absolute_file_path(url: str) -> None:
    error = validate_url(url)
    assert error is not None
    assert "jsonl://" in error


# --------------------------------------------------------------------------- json:// over HTTP


def test_json_success(http_receiver: HttpReceiver) -> None:
    results = sender(http_receiver.url).send(message())
    assert results == [UrlResult(results[0].url_private)]
    assert results[0].url_private.startswith(f"json://127.0.0.1:{http_receiver.port}/")
    (body,) = http_receiver.bodies
    assert body["title"] == "Kalbajar handover"
    assert body["message"] == "Due 25 Nov 2020 24:00 (+04:00), in 3 days."
    assert body["type"] == "info"


def test_json_title_only_message_is_sent_as_body(http_receiver: HttpReceiver) -> None:
    sender(http_receiver.url).send(message(kind="overdue", body=""))
    (body,) = http_receiver.bodies
    assert body["message"] == "Kalbajar handover"
    assert body["type"] == "failure"


def test_json_500_raises_naming_the_url_without_its_password(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_next(1, status=500)
    s = sender(http_receiver.url_with_auth("bob", PASSWORD))
    with pytest.raises(ChannelDeliveryError) as info:
        s.send(message())
    err = info.value
    text = str(err)
    assert PASSWORD not in text
    assert f"json://bob:****@127.0.0.1:{http_receiver.port}/" in text
    assert "500" in text
    assert "1 of 1 URL failed: " in text
    assert err.permanent is False
    (result,) = err.results
    assert not result.ok
    assert result.error is not None
    assert PASSWORD not in result.error
    assert PASSWORD not in result.url_private
    assert all(PASSWORD not in d for d in s.description())
    # The receiver is fine again: the retry goes through.
    assert s.send(message())[0].ok
    assert len(http_receiver.requests) == 2


@pytest.mark.parametrize(
    ("status", "permanent"), [(401, True), (403, True), (404, True), (410, True), (503, False)]
)
def test_http_status_decides_permanence(
    http_receiver: HttpReceiver, status: int, permanent: bool
) -> None:
    http_receiver.set_status(status)
    with pytest.raises(DeliveryError) as info:
        sender(http_receiver.url).send(message())
    assert info.value.permanent is permanent
    assert str(status) in str(info.value)
    assert isinstance(info.value, ChannelDeliveryError)
    (result,) = info.value.results
    typed = PermanentDeliveryError if permanent else TransientDeliveryError
    assert isinstance(result.failure, typed)


@pytest.mark.parametrize(("report", "typed"), [
    (NotifyReport(1, "SUCCESS"), None),
    (NotifyReport(1, "TIMEOUT"), TransientDeliveryError),
    (NotifyReport(0, "NOMATCH", said="no service matched"), TransientDeliveryError),
    (NotifyReport(1, "FAILURE", ("A Connection error occurred sending JSON notification.",)),
     TransientDeliveryError),
    (NotifyReport(1, "FAILURE", ("Failed to send JSON notification: Not Found, error=404.",)),
     PermanentDeliveryError),
    (NotifyReport(1, "FAILURE", ("Failed: Not Found, error=404.", "Failed: error=502.")),
     TransientDeliveryError),
    (NotifyReport(1, "FAILURE", ('Connection error while submitting email to "mx": '
                                 "535 5.7.8 Authentication credentials invalid",)),
     PermanentDeliveryError),
    (NotifyReport(1, "FAILURE", ('Sending email to "gone@example.com" failed: '
                                 "gone@example.com: 550 5.1.1 <gone@example.com>: "
                                 "Recipient address rejected",)), PermanentDeliveryError),
    (NotifyReport(1, "FAILURE", ('Connection error while submitting email to "mx": '
                                 "SMTP AUTH extension not supported by server",)),
     PermanentDeliveryError),
    (NotifyReport(1, "FAILURE", ('Connection error while submitting email to "mx": '
                                 "451 4.3.0 Mail server temporarily rejected message",)),
     TransientDeliveryError),
], ids=["success", "timeout", "nothing-dispatched", "refused", "404", "404-then-502",
        "smtp-535", "smtp-550", "smtp-no-auth", "smtp-451"])
def test_apprise_reports_are_typed_permanent_or_transient(
    report: NotifyReport, typed: type[Exception] | None
) -> None:
    failure = failure_of(report, ["s3cret"], "no answer within 5 s")
    if typed is None:
        assert failure is None
    else:
        assert type(failure) is typed


def test_a_transient_failure_makes_the_channel_error_transient(
    http_receiver: HttpReceiver, second_receiver: HttpReceiver
) -> None:
    http_receiver.set_status(401)
    second_receiver.set_status(503)
    with pytest.raises(DeliveryError) as info:
        sender(http_receiver.url, second_receiver.url).send(message())
    assert info.value.permanent is False


def test_refused_connection_is_transient_and_recovers(http_receiver: HttpReceiver) -> None:
    s = sender(http_receiver.url)
    http_receiver.refuse()
    with pytest.raises(DeliveryError) as info:
        s.send(message())
    assert info.value.permanent is False
    http_receiver.accept()
    assert s.send(message())[0].ok
    assert len(http_receiver.requests) == 1


def test_retry_after_partial_failure_skips_urls_that_already_took_the_key(
    http_receiver: HttpReceiver, second_receiver: HttpReceiver
) -> None:
    s = sender(http_receiver.url, second_receiver.url)
    second_receiver.fail_next(1)
    with pytest.raises(ChannelDeliveryError) as info:
        s.send(message())
    assert [r.ok for r in info.value.results] == [True, False]
    assert "1 of 2 URLs failed: " in str(info.value)
    results = s.send(message())
    assert [r.ok for r in results] == [True, True]
    assert len(http_receiver.requests) == 1  # not sent twice
    assert len(second_receiver.requests) == 2
    # A different key goes everywhere.
    s.send(message(key="another"))
    assert len(http_receiver.requests) == 2


# --------------------------------------------------------------------------- timeouts


def test_hanging_receiver_is_bounded_by_the_timeout(http_receiver: HttpReceiver) -> None:
    http_receiver.hang()
    s = sender(http_receiver.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ChannelDeliveryError) as info:
        s.send(message())
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert http_receiver.wait_for(1, timeout=0)  # it did arrive, and was held
    assert info.value.permanent is False
    assert "no answer within 1 s" in str(info.value)


def test_a_hanging_url_does_not_delay_its_siblings(
    http_receiver: HttpReceiver, second_receiver: HttpReceiver
) -> None:
    http_receiver.hang()
    s = sender(http_receiver.url, second_receiver.url, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ChannelDeliveryError) as info:
        s.send(message())
    assert [r.ok for r in info.value.results] == [False, True]
    (request,) = second_receiver.requests
    assert request.arrived - started < 1.0


def test_a_hung_url_holds_parallel_threads_and_a_late_success_is_not_resent(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.hang()
    s = sender(http_receiver.url, timeout=0.5)
    assert s.parallel == channels.PARALLEL_SENDS
    keys = [f"k{i}" for i in range(s.parallel)]
    for key in keys:
        with pytest.raises(DeliveryError):
            s.send(message(key=key))
    assert http_receiver.wait_for(s.parallel, timeout=2)
    # Every slot of the URL still hangs: one more delivery is not started next to them.
    started = time.monotonic()
    with pytest.raises(DeliveryError):
        s.send(message(key="one more"))
    assert time.monotonic() - started < 1.5
    assert len(http_receiver.requests) == s.parallel
    # The hung requests are answered after all; a retry of their keys skips the URL.
    http_receiver.release()
    deadline = time.monotonic() + 5
    for key in keys:
        while True:
            try:
                assert s.send(message(key=key))[0].ok
                break
            except DeliveryError:  # the released delivery is still finishing
                assert time.monotonic() < deadline
                time.sleep(0.05)
    assert len(http_receiver.requests) == s.parallel


def test_a_retry_never_runs_next_to_the_attempt_it_repeats(http_receiver: HttpReceiver) -> None:
    """Free slots or not, the same key is not sent while its earlier attempt hangs."""
    http_receiver.hang()
    s = sender(http_receiver.url, timeout=0.5)
    with pytest.raises(DeliveryError):
        s.send(message(key="same"))
    with pytest.raises(DeliveryError):
        s.send(message(key="same"))
    assert len(http_receiver.requests) == 1
    # Another key takes a free slot meanwhile.
    with pytest.raises(DeliveryError):
        s.send(message(key="other"))
    assert http_receiver.wait_for(2, timeout=2)
    http_receiver.release()


def test_parallel_sends_deliver_each_message_once(http_receiver: HttpReceiver) -> None:
    s = sender(http_receiver.url)
    keys = [f"p{i}" for i in range(40)]

    def work(part: list[str]) -> None:
        for key in part:
            s.send(message(key=key, title=key))

    threads = [threading.Thread(target=work, args=(keys[n::s.parallel],))
               for n in range(s.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.json["title"] for r in http_receiver.requests) == sorted(keys)


@pytest.mark.parametrize(("urls", "parallel"), [
    (["json://127.0.0.1:9/", "xml://127.0.0.1:9/"], channels.PARALLEL_SENDS),
    (["jsonl:///tmp/x.jsonl"], 1),  # a file: order matters, the disk is the limit
    (["console://"], 1),
    (["json://127.0.0.1:9/", "console://"], 1),  # every URL must allow it
    (["mailto://u:p@127.0.0.1:2525?to=a@example.org"], 1),  # apprise throttles email
    (["nosuch://x"], 1),  # nothing loaded
])
def test_parallel_sends_only_where_every_url_allows_them(urls: list[str], parallel: int) -> None:
    assert sender(*urls).parallel == parallel


def test_timeout_defaults_are_applied_and_operator_values_win(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    urls = (http_receiver.url, http_receiver.url + "?cto=2&rto=3.5", smtp_receiver.url())
    default, custom, mail = (instantiate(url, appriseset.new_asset()) for url in urls)
    assert (default.socket_connect_timeout, default.socket_read_timeout) == (4.0, 10.0)
    assert (custom.socket_connect_timeout, custom.socket_read_timeout) == (2.0, 3.5)
    assert mail.socket_connect_timeout == 15.0  # email's own longer default is kept
    # Shown only where they are not the default (issue 22: one form of a URL).
    shown_default, shown_custom, shown_mail = sender(*urls).description()
    assert "cto=" not in shown_default
    assert "rto=" not in shown_default
    assert "rto=3.5" in shown_custom
    assert "cto=2.0" in shown_custom
    assert "cto=" not in shown_mail


# --------------------------------------------------------------------------- mailto://


def test_mailto_delivers_subject_and_body(smtp_receiver: SmtpReceiver) -> None:
    s = sender(smtp_receiver.url(to="ops@example.com", sender="notifier@example.com"))
    s.send(message(body="Kalbajar is due.\nReason: damaged roads."))
    assert smtp_receiver.wait_for(1)
    (mail,) = smtp_receiver.messages
    assert mail.subject == "Kalbajar handover"
    assert "Kalbajar is due." in mail.body
    assert "Reason: damaged roads." in mail.body
    assert mail.mail_from == "notifier@example.com"
    assert mail.rcpt_tos == ("ops@example.com",)


def test_mailto_with_credentials_hides_the_password() -> None:
    with SmtpReceiver(accept_auth=True) as smtp:
        s = sender(smtp.url(user="mailer", password=PASSWORD))
        (description,) = s.description()
        assert PASSWORD not in description
        assert s.send(message())[0].ok
        assert smtp.wait_for(1)


# --------------------------------------------------------------------------- validate_url


@pytest.mark.parametrize(
    "url",
    [
        "console://",
        "jsonl:///var/lib/notifier/out.jsonl",
        f"json://bob:{PASSWORD}@127.0.0.1:8080/hook",
        "mailto://127.0.0.1:2525/?smtp=127.0.0.1&mode=insecure&from=a@example.com&to=b@example.com",
        "https://discord.com/api/webhooks/1234567/abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_validate_url_accepts_good_urls(url: str) -> None:
    assert validate_url(url) is None


def test_validate_url_unknown_scheme() -> None:
    error = validate_url(f"nosuchservice://bob:{PASSWORD}@host/")
    assert error == "unknown scheme nosuchservice://"


@pytest.mark.parametrize("url", ["", "   ", "just some text", f"bob:{PASSWORD}@host"])
def test_validate_url_not_a_url(url: str) -> None:
    error = validate_url(url)
    assert error is not None
    assert PASSWORD not in error


@pytest.mark.parametrize(
    "url",
    [
        f"tgram://{PASSWORD}",
        f"slack://T1JJ3T3L2/A1BRTD4JD/{PASSWORD}!!/#general",
        f"mailto://user:{PASSWORD}@example.com?mode=nonsense",
        f"json://user:{PASSWORD}@host/?method=NOPE",
        f"discord://{PASSWORD}",
    ],
)
def test_validate_url_malformed_without_leaking_secrets(url: str) -> None:
    error = validate_url(url)
    assert error is not None
    assert PASSWORD not in error
    assert PASSWORD.lower() not in error.lower()


def test_parsing_urls_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert validate_url(f"slack://T1JJ3T3L2/A1BRTD4JD/{PASSWORD}!!/#general") is not None
    sender(f"slack://T1JJ3T3L2/A1BRTD4JD/{PASSWORD}!!/#general")
    assert not any(PASSWORD in r.getMessage() for r in caplog.records)


def test_isolated_apprise_logging_still_explains_failures(http_receiver: HttpReceiver) -> None:
    logger = logging.getLogger(apprise.LOGGER_NAME)
    saved = (logger.propagate, logger.level, list(logger.handlers))
    try:
        appriseset.isolate_apprise_logging()
        appriseset.isolate_apprise_logging()
        assert logger.propagate is False
        assert sum(isinstance(h, logging.NullHandler) for h in logger.handlers) == 1
        http_receiver.set_status(500)
        with pytest.raises(DeliveryError, match="error=500"):
            sender(http_receiver.url).send(message())
    finally:
        logger.propagate, logger.level = saved[0], saved[1]
        logger.handlers[:] = saved[2]


def test_validate_url_does_no_network_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network I/O during validate_url")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for url in [
        "json://example.com/hook",
        "mailto://user:pw@smtp.example.com?from=a@example.com",
        "tgram://123456789:abcdefghijklmnopqrstuvwxyzABCDEFGHI/12345",
        "ntfy://ntfy.sh/topic",
    ]:
        assert validate_url(url) is None


# --------------------------------------------------------------------------- send_test


def test_send_test_reports_each_url_without_raising(http_receiver: HttpReceiver) -> None:
    dead = dead_url()
    channel = Channel(name="ops", urls=(http_receiver.url, dead))
    good, bad = send_test(channel, title="notifier test message", body="test body",
                          now=datetime.now(UTC), timeout=5.0)
    assert good.ok
    assert good.error is None
    assert not bad.ok
    assert bad.error
    assert bad.url_private.startswith(dead)
    (body,) = http_receiver.bodies
    assert "test" in body["title"]


def test_an_unloadable_url_fails_permanently_but_siblings_deliver(
    http_receiver: HttpReceiver,
) -> None:
    s = sender(f"tgram://{PASSWORD}", http_receiver.url)
    assert all(PASSWORD not in d for d in s.description())
    with pytest.raises(ChannelDeliveryError) as info:
        s.send(message())
    assert info.value.permanent is True
    assert PASSWORD not in str(info.value)
    assert [r.ok for r in info.value.results] == [False, True]
    assert len(http_receiver.requests) == 1


# --------------------------------------------------------------------------- registration, plugins


def test_register_builtin_schemas_is_idempotent() -> None:
    register_builtin_schemas()
    register_builtin_schemas()
    manager = apprise.NotificationManager()  # type: ignore[no-untyped-call]  # apprise leaves it unannotated
    assert manager["console"] is plugins.NotifyConsole
    assert manager["jsonl"] is plugins.NotifyJsonl


def test_load_plugin_paths_registers_a_custom_schema(tmp_path: Path) -> None:
    out = tmp_path / "custom.txt"
    plugin = tmp_path / "plugins" / "notifier_test_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(
        textwrap.dedent(
            f"""
            from apprise.decorators import notify

            @notify(on="nftestcustom")
            def deliver(body, title, notify_type, *args, **kwargs):
                with open({str(out)!r}, "a") as f:
                    f.write(title + "|" + body + "\\n")
                return True
            """
        )
    )
    assert load_plugin_paths([str(plugin.parent), str(tmp_path / "absent")]) == [
        f"plugin path does not exist: {tmp_path / 'absent'}"
    ]
    assert validate_url("nftestcustom://") is None
    sender("nftestcustom://").send(message())
    assert out.read_text() == "Kalbajar handover|Due 25 Nov 2020 24:00 (+04:00), in 3 days.\n"


def test_a_crashing_custom_plugin_is_reported_with_its_exception(tmp_path: Path) -> None:
    # apprise logs "An exception occured ..." as the warning and the exception
    # itself only at DEBUG; the failure's reason says both.
    plugin = tmp_path / "plugins" / "notifier_crash_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent(
        """
        from apprise.decorators import notify

        @notify(on="nftestcrash")
        def deliver(body, title, notify_type, *args, **kwargs):
            raise RuntimeError("relay quota exceeded")
        """))
    assert load_plugin_paths([str(plugin.parent)]) == []
    with pytest.raises(DeliveryError, match="nftestcrash notification: relay quota exceeded"):
        sender("nftestcrash://").send(message())


def test_outgoing_message_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        message(planned_at=datetime(2020, 11, 22, 5, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        message(due=datetime(2020, 11, 25, 20, 0))


def test_sender_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        sender("console://", timeout=0)


def test_description_lists_privacy_urls_in_order(jsonl: Path) -> None:
    urls = ("console://", f"jsonl://{jsonl}", f"json://bob:{PASSWORD}@127.0.0.1:9/")
    description = sender(*urls).description()
    assert [d.split("://")[0] for d in description] == ["console", "jsonl", "json"]
    assert description[1] == f"jsonl://{jsonl}"  # no parameter that only repeats a default
    assert not any(PASSWORD in d for d in description)
    assert os.fspath(jsonl) in description[1]

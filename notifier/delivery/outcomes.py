"""What a send carries and what it yields: the outgoing message, apprise's report, per-URL results.

A URL's failure is typed (`notifier.errors.UrlFailure`): permanent or
transient from what apprise says in structure (a URL that does not load, a
call that dispatched nothing, a service that timed out), and, where apprise
says nothing typed, from the one reading of its log text in
`_failure_from_plugin_log`. Its reason is the plugin's warning with the real
cause apprise logs only at DEBUG (`_cause`): the SMTP server's reply, the
refused connection, the failed certificate check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from apprise import (
    Apprise,
    AppriseResult,
    AppriseResultStatus,
    NotifyFormat,
    NotifyResult,
    NotifyType,
)

from notifier.delivery.appriseset import isolate_apprise_logging
from notifier.delivery.urls import short
from notifier.errors import PermanentDeliveryError, TransientDeliveryError, UrlFailure

__all__ = [
    "PERMANENT_HTTP_STATUSES",
    "NotifyReport",
    "OutgoingMessage",
    "UrlResult",
    "failure_of",
    "notify_report",
]

PERMANENT_HTTP_STATUSES: Final = frozenset({401, 403, 404, 410})
"""HTTP answers that mean "this URL will not work until the operator fixes it"."""

_HTTP_STATUS_RE = re.compile(r"\berror=(\d{3})\b")

_CAUSE_RE: Final = re.compile(r"(?:Socket|Notification|<class '[^']+'>) Exception: (.+)", re.S)
"""How apprise logs the exception behind a failure, at DEBUG only, next to a
WARNING that does not say it: its plugins (email and nearly every HTTP one),
its dispatcher for a plugin that raised, a custom ``@notify`` plugin that raised."""
_SMTP_REPLY_RE = re.compile(r"\((\d{3}), b?(['\"])(.*?)\2(?:, [^()]*)?\)")
"""smtplib's exceptions print a server reply as ``(535, b'5.7.8 ...')``."""
_SMTP_REFUSAL_RE: Final = re.compile(
    r"\b5\d\d 5\.\d{1,3}\.\d{1,3}\b|SMTP AUTH extension not supported by server")
"""An SMTP server's permanent refusal as `_cause` writes it: a 5yz reply with its
enhanced status 5.x.x (RFC 3463: login refused, no such recipient), or no AUTH on
offer (the URL needs another port or TLS). Retrying soon cannot mend either."""
_QUOTED_KEY_RE = re.compile(r"(['\"])([^'\"]+)\1: ")
_OS_ERROR_RE = re.compile(r"\[Errno -?\d+\] [^'\")(]+|\[SSL: \w+\] [^'\")(]+")
"""The innermost reason in a requests/urllib3 error's long chain of wrappers."""
_OBJECT_AT_RE = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:? ?")


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message on its way to one channel."""

    key: str
    kind: str
    deadline: str | None
    title: str
    body: str
    due: datetime | None
    planned_at: datetime
    late: bool = False
    sent_at: datetime | None = None
    """When the send starts, on the daemon's clock (virtual under ``replay``); None: now."""
    channel: str | None = None
    """The channel's name (None for a message not sent through one)."""

    def __post_init__(self) -> None:
        for name in ("due", "planned_at", "sent_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"OutgoingMessage.{name} must be timezone-aware")


@dataclass(frozen=True)
class UrlResult:
    """The outcome of one delivery to one URL of a channel. Never holds a secret."""

    url_private: str
    """The URL in apprise's privacy form (passwords and tokens masked)."""
    failure: UrlFailure | None = None
    """None: delivered."""

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def error(self) -> str | None:
        return None if self.failure is None else str(self.failure)

    @property
    def permanent(self) -> bool:
        """True when retrying soon is pointless (HTTP 401/403/404/410, unloadable URL)."""
        return isinstance(self.failure, PermanentDeliveryError)


@dataclass(frozen=True)
class NotifyReport:
    """What apprise said about one delivery to one URL, as plain values.

    A send helper process (`notifier.delivery.sendhelper`) answers with one of these;
    the channel turns it into a `UrlResult` the same way whether the send ran
    here or there. Raw: its texts may hold secrets until the channel scrubs them.
    """

    services: int
    """Services apprise dispatched to: 1, or 0 for a call that went nowhere."""
    status: str
    """An ``AppriseResultStatus`` name: the service's, or the whole call's."""
    warnings: tuple[str, ...] = ()
    """The last attempt's WARNING and worse messages, each once, in order; on a
    failure the last one ends with the cause apprise logged at DEBUG (`_cause`)."""
    said: str = ""
    """apprise's own account of a call that dispatched nothing."""


_NOTIFY_TYPE: Final = {
    "due": NotifyType.WARNING,
    "overdue": NotifyType.FAILURE,
    "completed": NotifyType.SUCCESS,
}


def notify_report(instance: Apprise, title: str, body: str, kind: str) -> NotifyReport:
    """Deliver one message through `instance` (one service) in this thread."""
    # The cause of a failure is logged at DEBUG: capture down to it, with
    # apprise's records kept away from the application's handlers.
    isolate_apprise_logging()
    # A plugin refuses an empty body; a title-only message goes as the body.
    body, title = (body, title) if body else (title, "")
    with instance.notify(
        body=body,
        title=title,
        notify_type=_NOTIFY_TYPE.get(kind, NotifyType.INFO),
        body_format=NotifyFormat.TEXT,
        log_level=logging.DEBUG,
    ) as result:
        return _report(result)


def _report(result: AppriseResult) -> NotifyReport:
    services: list[NotifyResult] = list(result)
    if len(services) != 1:
        return NotifyReport(len(services), result.status.name,
                            said=" ".join(e.message for e in result.call_logs()
                                          if e.level != "DEBUG"))
    res = services[0]
    messages: list[str] = []
    causes: list[str] = []
    for entry in res.attempts[-1].logs if res.attempts else ():
        if entry.level in ("WARNING", "ERROR", "CRITICAL") and entry.message not in messages:
            messages.append(entry.message)
        elif entry.level == "DEBUG" and (m := _CAUSE_RE.match(entry.message)):
            cause = _cause(m.group(1))
            if cause and cause not in causes:
                causes.append(cause)
    if causes and res.status is not AppriseResultStatus.SUCCESS:
        # The warning says what failed, the cause why: one reason.
        said = "; ".join(causes)
        messages = [*messages[:-1], f"{messages[-1].rstrip('.')}: {said}"] if messages else [said]
    return NotifyReport(1, res.status.name, tuple(messages))


def _cause(text: str) -> str:
    """The reason in an exception's text as apprise logs it, in words a reader can act on.

    An SMTP reply reads as the server sent it (``535 5.7.8 Authentication
    credentials invalid``; a refused recipient as ``ADDRESS: 550 ...``); a
    requests/urllib3 chain of wrappers is cut to its innermost OS or TLS error
    (``[Errno 111] Connection refused``). Still raw: secrets are scrubbed by
    `failure_of`.
    """
    innermost = _OS_ERROR_RE.findall(text)
    if innermost:
        return str(innermost[-1]).strip()
    text = _SMTP_REPLY_RE.sub(lambda m: f"{m.group(1)} {m.group(3)}", text)
    text = _QUOTED_KEY_RE.sub(r"\2: ", text)
    text = _OBJECT_AT_RE.sub("", text)
    return text.strip().strip("{}").strip().rstrip(".")


def failure_of(report: NotifyReport, secrets: Sequence[str],
               no_answer: str) -> UrlFailure | None:
    """The typed, secret-free failure `report` tells of, or None if it was delivered."""
    if report.services != 1:
        # Nothing was dispatched (a bad call): say what apprise said.
        return TransientDeliveryError(short(report.said or report.status.lower(), secrets))
    if report.status == AppriseResultStatus.SUCCESS.name:
        return None
    if report.status == AppriseResultStatus.TIMEOUT.name:
        return TransientDeliveryError(no_answer)
    return _failure_from_plugin_log(report.warnings, secrets)


def _failure_from_plugin_log(warnings: Sequence[str], secrets: Sequence[str]) -> UrlFailure:
    """A FAILURE that apprise gives no reason for, judged by what the plugin logged.

    The one place where apprise (2.3) says nothing typed: a plugin's
    ``send()``/``notify()`` returns only True or False; ``NotifyResult`` and
    ``NotifyAttempt`` hold SUCCESS, FAILURE or TIMEOUT, the privacy URL and the
    captured log lines; ``NotifyBase`` keeps neither the response nor its
    status; and ``URLBase.http_response_code_lookup`` only turns a code into
    words for the plugin's warning. Nearly every HTTP-based plugin logs a
    failed request as "..., error=NNN.", so a failure whose logged statuses are
    all in `PERMANENT_HTTP_STATUSES` is permanent; any other (no status: a
    refused connection, a TLS or disk error; or a 5xx) is transient. An SMTP
    server's permanent refusal (`_SMTP_REFUSAL_RE`) is permanent too.
    """
    statuses = {int(m) for text in warnings for m in _HTTP_STATUS_RE.findall(text)}
    error = short("; ".join(warnings), secrets) or "delivery failed"
    if statuses and statuses <= PERMANENT_HTTP_STATUSES:
        return PermanentDeliveryError(error)
    if any(_SMTP_REFUSAL_RE.search(text) for text in warnings):
        return PermanentDeliveryError(error)
    return TransientDeliveryError(error)

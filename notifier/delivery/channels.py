"""Delivery through apprise: the built-in schemas, one sender per channel, URL checks.

Every channel URL is an apprise URL. The project's own channels are apprise
plugins (`notifier.delivery.plugins`) registered under their own schemas, so they are URLs
like any other:

* ``console://`` prints one line per message to stdout (journald picks it up);
* ``jsonl:///abs/path/file.jsonl`` appends one JSON object per delivery.

How a message's metadata reaches ``jsonl://``: apprise's ``notify()`` forwards
only title, body, type, format and attachments to a plugin's ``send()``; extra
keyword arguments are dropped by ``NotifyBase._build_send_calls``. So each URL
is delivered from a thread of our own (reused once its last send returned)
that first puts the ``OutgoingMessage`` in a ``ContextVar``, and apprise is
configured (no service deadline, no async mode, one service per ``Apprise``
object) so that ``notify()`` runs the plugin in that same thread. Even if
apprise did hand the call to its worker pool, it copies the caller's context
into the worker (``submit_with_context``; its own per-service log capture
depends on that), so the value would still arrive, and concurrent sends never
see each other's message. If the value is missing
(the schema used outside ``ChannelSender``), ``jsonl://`` fails the delivery
loudly instead of writing a line without its key.

Parallel sends: a channel whose every URL is a service apprise ships and does
not throttle (``request_rate_per_sec == 0``: json://, xml://, form://, ...) takes
up to ``PARALLEL_SENDS`` messages at once (`ChannelSender.parallel`), each on its
own plugin instance, so a burst is not bound by one request's round trip.
Anything else takes one at a time: our own ``jsonl://`` and ``console://`` (a
file and stdout, where order matters and the disk is the limit), third-party
plugins (not known to be safe to run side by side), and throttled services
(apprise spaces their requests per plugin instance; parallel instances would
defeat that).

Other processes: a channel given an `Offload` (the daemon's send helpers,
`notifier.delivery.sendpool`) hands it the sends of those parallel URLs, and turns the
helper's `NotifyReport` into a `UrlResult` exactly as its own; every other
URL, and every send while no helper is up, runs here.

Bounds: a URL without ``cto=``/``rto=`` gets ``DEFAULT_CTO``/``DEFAULT_RTO``
(or the plugin's own default when that is longer, e.g. 15 s for email), so
each socket operation is bounded; and ``ChannelSender.send`` returns or raises
within its ``timeout`` whatever a plugin does (see ``ChannelSender``).

Permanence: apprise reports only success/failure per service, plus the
warnings the plugin logged (captured per attempt in ``NotifyResult``). Nearly
every HTTP-based apprise plugin logs a failed request as "..., error=NNN."; a
failure whose logged statuses are all in ``PERMANENT_HTTP_STATUSES`` is
permanent, as is a URL that cannot be loaded at all. Everything else
(connection refused, 5xx, timeouts, disk errors) is transient.

Deduplication: apprise has no per-message field a service could deduplicate on
(``json://`` headers and payload extras are fixed per URL), so only
``jsonl://`` carries the key. Within a process, a retry of a key skips the
URLs of the channel that already took it.

Only ``validate_url`` is needed by config checking; this module imports apprise
at the top, so other modules import it lazily.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast
from urllib.parse import unquote, urlsplit

import apprise
from apprise import (
    Apprise,
    AppriseAsset,
    AppriseResult,
    AppriseResultStatus,
    NotifyBase,
    NotifyFormat,
    NotifyResult,
    NotifyType,
    PersistentStoreMode,
)
from apprise.plugins import N_MGR as _APPRISE_N_MGR
from apprise.plugins import url_to_dict as _apprise_url_to_dict

from notifier.delivery.plugins import (
    BUILTINS,
    CURRENT,
    BuiltinPlugin,
    BuiltinUrlError,
)
from notifier.delivery.threadreuse import ReusedThreads
from notifier.errors import DeliveryError
from notifier.redact import redact
from notifier.schedule import model
from notifier.text import one_line, rfc3339

__all__ = [
    "DEFAULT_CTO",
    "DEFAULT_RTO",
    "DEFAULT_TIMEOUT",
    "PARALLEL_SENDS",
    "ChannelDeliveryError",
    "ChannelSender",
    "NotifyReport",
    "Offload",
    "OffloadLost",
    "OutgoingMessage",
    "UrlResult",
    "isolate_apprise_logging",
    "load_instance",
    "load_plugin_paths",
    "notify_report",
    "register_builtin_schemas",
    "send_test",
    "validate_url",
]

DEFAULT_CTO: Final = 4.0
"""Socket connect timeout (s) applied when a URL has no ``cto=`` (never below the plugin's own)."""
DEFAULT_RTO: Final = 10.0
"""Socket read timeout (s) applied when a URL has no ``rto=`` (never below the plugin's own)."""
DEFAULT_TIMEOUT: Final = 30.0
"""Longest one ``ChannelSender.send`` may block its caller, in seconds."""

PARALLEL_SENDS: Final = 4
"""Messages one channel may have in flight at once, where its services allow it.

Four round trips in flight keep a local webhook receiver busy on two cores;
more only adds threads contending for the interpreter lock."""

PERMANENT_HTTP_STATUSES: Final = frozenset({401, 403, 404, 410})
"""HTTP answers that mean "this URL will not work until the operator fixes it"."""

_log = logging.getLogger(__name__)

_SEND_THREADS = ReusedThreads("notifier-send")
"""Every URL's send runs on one of these (see `ChannelSender`)."""

# apprise's url_to_dict and plugin manager carry no annotations; these typed
# views are all of them that this module uses.
_url_to_dict: Callable[..., dict[str, Any] | None] = _apprise_url_to_dict


class _PluginRegistry(Protocol):
    def __contains__(self, schema: object, /) -> bool: ...
    def __getitem__(self, schema: str, /) -> type[NotifyBase]: ...
    def add(
        self, plugin: type[NotifyBase], schemas: list[str] | None = None, *, force: bool = False
    ) -> bool: ...


_N_MGR = cast(_PluginRegistry, _APPRISE_N_MGR)

_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "notifier_quiet_apprise", default=False
)

_SCHEME_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_HTTP_STATUS_RE = re.compile(r"\berror=(\d{3})\b")
_ERROR_MAX = 300
_TOKEN_MIN = 3
"""URL pieces this long or longer that its privacy form hides are treated as secrets."""


# --------------------------------------------------------------------------- messages


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
    ok: bool
    error: str | None = None
    permanent: bool = False
    """True when retrying soon is pointless (HTTP 401/403/404/410, unloadable URL)."""


class ChannelDeliveryError(DeliveryError):
    """A ``DeliveryError`` that also carries the per-URL results of the send."""

    def __init__(
        self, message: str, *, permanent: bool, results: Sequence[UrlResult]
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.results: tuple[UrlResult, ...] = tuple(results)


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
    """The last attempt's WARNING and worse messages, each once, in order."""
    said: str = ""
    """apprise's own account of a call that dispatched nothing."""


class OffloadLost(Exception):
    """The process running a send went away before it answered."""


class Offload(Protocol):
    """Runs sends in other processes (see `notifier.delivery.sendpool`)."""

    def submit(
        self, url: str, title: str, body: str, kind: str, /
    ) -> Callable[[], NotifyReport] | None:
        """Start delivering to `url` elsewhere: a wait for its report (which raises
        `OffloadLost` if the process goes away), or None: send it here instead."""


# --------------------------------------------------------------------------- helpers


def _secret_tokens(raw_url: str, private_url: str | None) -> list[str]:
    """Pieces of `raw_url` that may be secret: everything not shown in its privacy form.

    Query keys and the scheme are never secret. Without a privacy form (a URL
    that failed to load) every other piece of three or more characters counts.
    """
    scheme_match = _SCHEME_RE.match(raw_url)
    safe = {scheme_match.group(1).lower()} if scheme_match else set()
    query = urlsplit(raw_url).query if "://" in raw_url else ""
    safe.update(part.split("=", 1)[0] for part in query.split("&") if part)
    shown = private_url or ""
    tokens: set[str] = set()
    for text in (raw_url, unquote(raw_url)):
        for token in re.split(r"[/:@?&=#,;+\s]+", text):
            if len(token) >= _TOKEN_MIN and token.lower() not in safe and token not in shown:
                tokens.add(token)
    return sorted(tokens, key=len, reverse=True)


def _short(text: str, secrets: Iterable[str]) -> str:
    """A failure's reason for the ledger and logs: one line, capped, no secret."""
    return one_line(redact(text, secrets, min_length=_TOKEN_MIN), _ERROR_MAX)


class _QuietFilter(logging.Filter):
    """Drops apprise records while `_QUIET` is set: URL parsing can echo tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


_QUIET_FILTER = _QuietFilter()


@contextmanager
def _quiet_apprise() -> Iterator[None]:
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def isolate_apprise_logging(level: int = logging.WARNING) -> None:
    """Keep apprise's own log records out of the application's log handlers.

    apprise plugins may put a token into a warning (e.g. "invalid bot token
    (...)"). After this call nothing apprise logs reaches the root logger; its
    warnings are still captured per delivery (they feed `UrlResult.error`, after
    scrubbing) because that capture hangs off the ``apprise`` logger itself.
    Idempotent.
    """
    logger = logging.getLogger(apprise.LOGGER_NAME)
    logger.propagate = False
    logger.setLevel(level)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- registration


_REGISTER_LOCK = threading.Lock()


def register_builtin_schemas() -> None:
    """Register ``console://`` and ``jsonl://`` with apprise. Idempotent and thread-safe.

    Call it before `load_plugin_paths` so a third-party plugin cannot take
    these schemas. Re-registering a reloaded copy of this module replaces the
    old classes; a schema held by anything else is left alone and reported.
    Also attaches the filter that silences apprise while URLs are parsed here.
    """
    with _REGISTER_LOCK:
        apprise_logger = logging.getLogger(apprise.LOGGER_NAME)
        if not any(isinstance(f, _QuietFilter) for f in apprise_logger.filters):
            apprise_logger.addFilter(_QUIET_FILTER)
        for cls in BUILTINS:
            schema = str(cls.protocol)
            existing: type[NotifyBase] | None = None
            if schema in _N_MGR:
                existing = _N_MGR[schema]
            if existing is cls:
                continue
            ours = existing is not None and (
                getattr(existing, "__module__", None) == cls.__module__
                and getattr(existing, "__qualname__", None) == cls.__qualname__
            )
            if existing is not None and not ours:
                _log.warning("apprise schema %s:// is taken by another plugin", schema)
                continue
            if not _N_MGR.add(cls, schemas=[schema], force=ours):
                _log.warning("could not register apprise schema %s://", schema)


def load_plugin_paths(paths: Sequence[str]) -> list[str]:
    """Load apprise custom plugins (``@notify`` modules) from files or directories.

    Returns one secret-free problem per path that does not exist; apprise
    itself logs (and skips) modules that fail to import. Loading is cached by
    apprise: a path already scanned is not scanned again.
    """
    register_builtin_schemas()
    problems: list[str] = []
    existing: list[str] = []
    for path in paths:
        if not os.path.exists(path):
            problems.append(f"plugin path does not exist: {path}")
        else:
            existing.append(path)
    if existing:
        # AppriseAsset(plugin_paths=...) is apprise's public door to module_detection.
        AppriseAsset(plugin_paths=existing)
    return problems


# --------------------------------------------------------------------------- URLs


def _scheme_of(url: str) -> str | None:
    m = _SCHEME_RE.match(url)
    return m.group(1).lower() if m else None


def _instantiate(url: str, asset: AppriseAsset) -> NotifyBase:
    """Load one URL as a plugin, applying our timeout defaults. Raises ValueError.

    The ValueError's text is secret-free.
    """
    scheme = _scheme_of(url)
    if scheme is None:
        raise ValueError("not an apprise URL: expected SCHEME://...")
    with _quiet_apprise():
        results = _url_to_dict(url, secure_logging=True)
    if results is None:
        if scheme not in _N_MGR:
            raise ValueError(f"unknown scheme {scheme}://")
        raise ValueError(f"malformed {_N_MGR[scheme].service_name!s} URL ({scheme}://)")
    plugin_cls = _N_MGR[results["schema"]]
    if not issubclass(plugin_cls, BuiltinPlugin):
        # Bound every socket operation; an operator's cto=/rto= wins, and a
        # plugin whose own default is longer (email: 15 s) keeps it.
        results.setdefault("cto", max(DEFAULT_CTO, float(plugin_cls.socket_connect_timeout)))
        results.setdefault("rto", max(DEFAULT_RTO, float(plugin_cls.socket_read_timeout)))
    try:
        with _quiet_apprise():
            plugin = apprise.Apprise.instantiate(results, asset=asset, suppress_exceptions=False)
    except BuiltinUrlError as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - any plugin may raise anything on a bad URL
        detail = _short(str(e), _secret_tokens(url, None))
        name = str(plugin_cls.service_name)
        reason = f"{name} rejected the URL: {detail}" if detail else f"bad {name} URL"
        raise ValueError(reason) from None
    if plugin is None:
        raise ValueError(f"{scheme}:// is not available on this system")
    return plugin


_CUSTOM_ARG = re.compile(r"([?&](?:[+:-]|%2[Bb]|%3[Aa])[^=&]*=)[^&]*")


def _privacy_url(plugin: NotifyBase) -> str:
    url: Callable[..., object] = plugin.url  # unannotated in apprise
    # apprise's privacy form keeps custom headers (+X-Api-Key=...), payload
    # (:field=...) and GET parameters (-param=...) of json/xml/form in clear;
    # they often hold API keys, so their values are masked too.
    return _CUSTOM_ARG.sub(r"\1***", str(url(privacy=True)))


def _asset() -> AppriseAsset:
    return AppriseAsset(
        storage_mode=PersistentStoreMode.MEMORY,  # nothing written to disk by apprise
        result_log_disk_size=0,  # captured logs stay in memory
        # No apprise deadline and no apprise thread pool: with one service per
        # Apprise object, notify() then runs the plugin in the calling thread,
        # which is one of ours (see ChannelSender._notify).
        service_timeout=0,
        async_mode=False,
    )


def validate_url(url: str) -> str | None:
    """A secret-free reason why `url` cannot be used, or None. No network I/O."""
    if not isinstance(url, str) or not url.strip():
        return "empty URL"
    register_builtin_schemas()
    try:
        _instantiate(url.strip(), _asset())
    except ValueError as e:
        return str(e)
    return None


def load_instance(url: str) -> Apprise:
    """`url` loaded as the channel loads it, in an ``Apprise`` of its own. Raises
    ValueError (secret-free) if it cannot be loaded."""
    asset = _asset()
    return Apprise(_instantiate(url, asset), asset=asset)


def notify_report(instance: Apprise, title: str, body: str, kind: str) -> NotifyReport:
    """Deliver one message through `instance` (one service) in this thread."""
    # A plugin refuses an empty body; a title-only message goes as the body.
    body, title = (body, title) if body else (title, "")
    with instance.notify(
        body=body,
        title=title,
        notify_type=_NOTIFY_TYPE.get(kind, NotifyType.INFO),
        body_format=NotifyFormat.TEXT,
    ) as result:
        return _report(result)


def _report(result: AppriseResult) -> NotifyReport:
    services: list[NotifyResult] = list(result)
    if len(services) != 1:
        return NotifyReport(len(services), result.status.name,
                            said=" ".join(e.message for e in result.call_logs()))
    res = services[0]
    messages: list[str] = []
    for entry in res.attempts[-1].logs if res.attempts else ():
        if entry.level in ("WARNING", "ERROR", "CRITICAL") and entry.message not in messages:
            messages.append(entry.message)
    return NotifyReport(1, res.status.name, tuple(messages))


# --------------------------------------------------------------------------- sending


def _parallel_sends(plugin: NotifyBase) -> int:
    """How many deliveries to this URL may run at once (see the module docstring)."""
    if isinstance(plugin, BuiltinPlugin):
        return 1
    if not type(plugin).__module__.startswith("apprise.plugins."):
        return 1
    rate: object = getattr(plugin, "request_rate_per_sec", None)
    if not isinstance(rate, int | float) or rate != 0:
        return 1
    return PARALLEL_SENDS


@dataclass
class _Target:
    """One URL of a channel: its plugin instances, each in its own ``apprise.Apprise``.

    Up to `limit` deliveries run at once, each on an instance of its own
    (made when first needed), so concurrent sends share no plugin state.
    """

    raw: str
    private: str
    apprise: apprise.Apprise | None
    """None when the URL could not be loaded (`load_error` says why)."""
    load_error: str | None
    secrets: list[str] = field(default_factory=list)
    limit: int = 1
    offload: bool = False
    """Sent through the channel's `Offload` when it has one (apprise's own
    unthrottled services: where throughput matters and nothing is ours)."""
    free: list[Apprise] = field(default_factory=list)
    """Instances not in use; `apprise` is the first."""
    made: int = 1
    """Instances made so far (in use or free)."""
    running: set[str] = field(default_factory=set)
    """Keys of the deliveries to this URL running now, even ones the caller stopped waiting for."""
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        if self.apprise is not None:
            self.free.append(self.apprise)


@dataclass
class _Outcome:
    result: UrlResult | None = None


_NOTIFY_TYPE: Final = {
    "due": NotifyType.WARNING,
    "overdue": NotifyType.FAILURE,
    "completed": NotifyType.SUCCESS,
}

# (message key, URL) pairs already delivered while another URL of the same
# channel failed: a retry of that key skips them. Bounded; process-wide so a
# config reload (new senders) does not forget them.
_PARTIAL: OrderedDict[tuple[str, str], None] = OrderedDict()
_PARTIAL_MAX = 10_000
_PARTIAL_LOCK = threading.Lock()


def _remember(key: str, raw_url: str) -> None:
    with _PARTIAL_LOCK:
        _PARTIAL[(key, raw_url)] = None
        _PARTIAL.move_to_end((key, raw_url))
        while len(_PARTIAL) > _PARTIAL_MAX:
            _PARTIAL.popitem(last=False)


class ChannelSender:
    """Delivers messages to every URL of one channel.

    Each URL is loaded once into its own ``apprise.Apprise`` (so apprise runs
    the plugin directly in the thread that calls it). A send runs every URL in
    its own daemon thread (`threadreuse`: one whose earlier send has returned,
    else a new one) and waits at most `timeout` seconds in total: a URL
    that has not finished by then is reported failed (transient, "no answer")
    and left to finish in the background. At most `parallel` deliveries per
    URL run at a time (one for most services), and never two of the same
    key, so a URL that hangs holds that many threads, never more, a retry
    never races the attempt it repeats, and a hung URL never slows another
    URL or channel (apprise's own process-wide worker pool, which a few hung
    services could exhaust, is not used). The daemon threads never hold up
    interpreter exit.
    """

    def __init__(self, channel: model.Channel, *, timeout: float = DEFAULT_TIMEOUT,
                 offload: Offload | None = None) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        register_builtin_schemas()
        self.name = channel.name
        self.timeout = float(timeout)
        self._offload = offload
        asset = _asset()
        self._asset = asset
        self._targets: list[_Target] = []
        for raw in channel.urls:
            try:
                plugin = _instantiate(raw, asset)
            except ValueError as e:
                scheme = _scheme_of(raw) or "?"
                self._targets.append(_Target(raw, f"{scheme}://…", None, str(e)))
                continue
            private = _privacy_url(plugin)
            limit = _parallel_sends(plugin)
            self._targets.append(
                _Target(
                    raw,
                    private,
                    apprise.Apprise(plugin, asset=asset),
                    None,
                    _secret_tokens(raw, private),
                    limit=limit,
                    offload=offload is not None and limit > 1,
                )
            )
        loaded = [t.limit for t in self._targets if t.apprise is not None]
        self.parallel: int = min(loaded) if loaded else 1
        """Messages this channel may have in flight at once: every URL must allow it."""

    @property
    def offloads(self) -> bool:
        """Whether some URL of this channel is sent through its `Offload`."""
        return any(t.offload for t in self._targets)

    def description(self) -> list[str]:
        """The channel's URLs in privacy form, in configuration order."""
        return [t.private for t in self._targets]

    def send(self, msg: OutgoingMessage) -> list[UrlResult]:
        """Deliver `msg` to every URL; raise `ChannelDeliveryError` if any URL failed.

        The error is permanent only when every failed URL failed permanently.
        URLs that already took this key while a sibling failed are not sent to
        again (their result is ok).
        """
        with _PARTIAL_LOCK:
            done = [(msg.key, t.raw) in _PARTIAL for t in self._targets]
        todo = [t for t, d in zip(self._targets, done, strict=True) if not d]
        fresh = iter(self._deliver(msg, todo, remember=True))
        results = [
            UrlResult(t.private, ok=True) if d else next(fresh)
            for t, d in zip(self._targets, done, strict=True)
        ]
        failed = [r for r in results if not r.ok]
        if not failed:
            with _PARTIAL_LOCK:
                for t in self._targets:
                    _PARTIAL.pop((msg.key, t.raw), None)
        if failed:
            detail = "; ".join(f"{r.url_private}: {r.error}" for r in failed)
            raise ChannelDeliveryError(
                f"channel {self.name!r}: {len(failed)} of {len(results)} URL(s) failed: {detail}",
                permanent=all(r.permanent for r in failed),
                results=results,
            )
        return results

    def send_test(self) -> list[UrlResult]:
        """Send a test message to every URL; never raises for a delivery failure."""
        now = datetime.now(UTC).replace(microsecond=0)
        msg = OutgoingMessage(
            key=f"test:{self.name}:{rfc3339(now, fraction=True)}",
            kind="test",
            deadline=None,
            title=f"notifier: test message for channel {self.name}",
            body=f"If you can read this, channel {self.name!r} works.",
            due=None,
            planned_at=now,
        )
        return self._deliver(msg, self._targets, remember=False)

    def _deliver(
        self, msg: OutgoingMessage, targets: list[_Target], *, remember: bool
    ) -> list[UrlResult]:
        """Per-URL results for `targets`, in order, within `self.timeout` seconds.

        With `remember`, every URL that takes the message is noted in `_PARTIAL`
        (even one that answers after we stopped waiting), so a retry of the key
        skips it; `send` forgets the key again once every URL has it.
        """
        deadline = time.monotonic() + self.timeout
        outcomes = [_Outcome() for _ in targets]
        running: list[threading.Event] = []
        for target, outcome in zip(targets, outcomes, strict=True):
            if target.apprise is None:
                outcome.result = UrlResult(
                    target.private, ok=False, error=target.load_error, permanent=True
                )
                continue
            running.append(_SEND_THREADS.start(
                functools.partial(self._run, target, msg, outcome, deadline, remember)))
        for done in running:
            done.wait(max(0.0, deadline - time.monotonic()))
        no_answer = f"no answer within {self.timeout:g} s"
        return [
            o.result if o.result is not None else UrlResult(t.private, ok=False, error=no_answer)
            for t, o in zip(targets, outcomes, strict=True)
        ]

    def _run(
        self,
        target: _Target,
        msg: OutgoingMessage,
        outcome: _Outcome,
        deadline: float,
        remember: bool,
    ) -> None:
        """One URL, in its own thread: wait for a free slot on the URL, then notify."""
        instance = self._take(target, msg.key, deadline)
        if instance is None:
            outcome.result = UrlResult(
                target.private, ok=False, error="an earlier delivery to this URL is still running"
            )
            return
        try:
            if remember:
                with _PARTIAL_LOCK:
                    taken = (msg.key, target.raw) in _PARTIAL
                if taken:  # an earlier delivery we had stopped waiting for got through
                    outcome.result = UrlResult(target.private, ok=True)
                    return
            waiter = None
            if target.offload and self._offload is not None:
                waiter = self._offload.submit(target.raw, msg.title, msg.body, msg.kind)
            if waiter is not None:
                report = waiter()
            else:
                # This thread's own context: the plugin runs right here (see
                # _asset), so the built-in plugins find the message's metadata.
                CURRENT.set(msg)
                report = notify_report(instance, msg.title, msg.body, msg.kind)
            url_result = self._url_result(target, report)
            if remember and url_result.ok:
                _remember(msg.key, target.raw)
            outcome.result = url_result
        except OffloadLost as e:
            outcome.result = UrlResult(target.private, ok=False, error=str(e))
        except Exception as e:  # noqa: BLE001 - report any plugin crash as this URL's failure
            outcome.result = UrlResult(
                target.private, ok=False, error=f"internal error ({type(e).__name__})"
            )
        finally:
            with target.cond:
                target.free.append(instance)
                target.running.discard(msg.key)
                target.cond.notify_all()

    def _take(self, target: _Target, key: str, deadline: float) -> Apprise | None:
        """A plugin instance of `target` for `key`, or None if none frees up by `deadline`.

        Waits while the URL is at its limit, and while an earlier attempt of
        the same key still runs there: that one may yet succeed, and the
        caller then finds the key in `_PARTIAL` instead of sending it again.
        """
        with target.cond:
            if not target.cond.wait_for(
                lambda: key not in target.running
                and (bool(target.free) or target.made < target.limit),
                timeout=max(0.0, deadline - time.monotonic()),
            ):
                return None
            target.running.add(key)
            if target.free:
                return target.free.pop()
            target.made += 1
        try:
            plugin = _instantiate(target.raw, self._asset)
        except ValueError:
            # It loaded when the sender was made: whatever changed, the other
            # instances still serve, so give up the extra slot for good.
            with target.cond:
                target.made -= 1
                target.limit = max(1, target.made)
                target.running.discard(key)
                target.cond.notify_all()
            return None
        made: Apprise = Apprise(plugin, asset=self._asset)
        return made

    def _url_result(self, target: _Target, report: NotifyReport) -> UrlResult:
        if report.services != 1:
            # Nothing was dispatched (a bad call): say what apprise said.
            why = report.said or report.status.lower()
            return UrlResult(target.private, ok=False, error=_short(why, target.secrets))
        if report.status == AppriseResultStatus.SUCCESS.name:
            return UrlResult(target.private, ok=True)
        if report.status == AppriseResultStatus.TIMEOUT.name:
            return UrlResult(
                target.private, ok=False, error=f"no answer within {self.timeout:g} s"
            )
        statuses = {int(m) for text in report.warnings for m in _HTTP_STATUS_RE.findall(text)}
        error = _short("; ".join(report.warnings), target.secrets) or "delivery failed"
        permanent = bool(statuses) and statuses <= PERMANENT_HTTP_STATUSES
        return UrlResult(target.private, ok=False, error=error, permanent=permanent)


def send_test(channel: model.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> list[UrlResult]:
    """``notifier send-test CHANNEL``: one test message per URL, per-URL results."""
    return ChannelSender(channel, timeout=timeout).send_test()

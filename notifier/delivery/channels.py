"""The per-channel sender: every URL of a channel, each send bounded by its timeout.

Every channel URL is an apprise URL. The project's own channels are apprise
plugins (`notifier.delivery.plugins`) registered under their own schemas, so they are URLs
like any other:

* ``console://`` prints one line per message to stdout (journald picks it up);
* ``jsonl:///abs/path/file.jsonl`` appends one JSON object per delivery.

How a message's metadata reaches ``jsonl://``: apprise's ``notify()`` forwards
only title, body, type, format and attachments to a plugin's ``send()``; extra
keyword arguments are dropped by ``NotifyBase._build_send_calls``. So each URL
is delivered from a thread of our own (a new one per send) that first
puts the ``OutgoingMessage`` in a ``ContextVar``, and apprise is
configured (no service deadline, no async mode, one service per ``Apprise``
object; `notifier.delivery.appriseset.new_asset`) so that ``notify()`` runs the
plugin in that same thread. Even if apprise did hand the call to its worker
pool, it copies the caller's context into the worker (``submit_with_context``;
its own per-service log capture depends on that), so the value would still
arrive, and concurrent sends never see each other's message. If the value is
missing (the schema used outside ``ChannelSender``), ``jsonl://`` fails the
delivery loudly instead of writing a line without its key.

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
`notifier.delivery.sendpool`, opt-in with ``[delivery] helpers``) hands it the
sends of those parallel URLs, and turns the helper's `NotifyReport` into a
`UrlResult` exactly as its own; every other URL, and every send while no
helper is up, runs here.

Previews: a channel given a `StandIn` (`notifier replay` without
``--send-real``) hands it every URL that is not one of the built-in local
ones (``console://``, ``jsonl://``) instead of sending to it; the rest of
the path (slots, timeouts, partial marks) runs as for a real send, so a
preview stays faithful to what the daemon would do.

Deduplication: apprise has no per-message field a service could deduplicate on
(``json://`` headers and payload extras are fixed per URL), so only
``jsonl://`` carries the key. Within a process, a retry of a key skips the
URLs of the channel that already took it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

import apprise
from apprise import Apprise, NotifyBase

from notifier.delivery.appriseset import new_asset, register_builtin_schemas
from notifier.delivery.outcomes import (
    NotifyReport,
    OutgoingMessage,
    UrlResult,
    failure_of,
    notify_report,
)
from notifier.delivery.plugins import CURRENT, BuiltinPlugin
from notifier.delivery.urls import instantiate, privacy_url, scheme_of, secret_tokens
from notifier.errors import ChannelDeliveryError, PermanentDeliveryError, TransientDeliveryError
from notifier.schedule import model
from notifier.text import rfc3339
from notifier.wording import plural

__all__ = [
    "DEFAULT_TIMEOUT",
    "PARALLEL_SENDS",
    "ChannelSender",
    "Offload",
    "OffloadLost",
    "StandIn",
    "send_test",
]

DEFAULT_TIMEOUT: Final = 30.0
"""Longest one ``ChannelSender.send`` may block its caller, in seconds."""

PARALLEL_SENDS: Final = 4
"""Messages one channel may have in flight at once, where its services allow it.

Four round trips in flight keep a local webhook receiver busy on two cores;
more only adds threads contending for the interpreter lock."""

class OffloadLost(Exception):
    """The process running a send went away before it answered."""


class Offload(Protocol):
    """Runs sends in other processes (see `notifier.delivery.sendpool`)."""

    def submit(
        self, url: str, title: str, body: str, kind: str, /
    ) -> Callable[[], NotifyReport] | None:
        """Start delivering to `url` elsewhere: a wait for its report (which raises
        `OffloadLost` if the process goes away), or None: send it here instead."""


StandIn = Callable[[str, str, OutgoingMessage], None]
"""Takes (channel name, URL in privacy form, message) where a URL that is not
built-in would have been sent to; it must not raise."""


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
    stand_in: StandIn | None = None
    """Takes the message instead of the URL (a preview of a URL that is not built-in)."""
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
    a new daemon thread of its own and waits at most `timeout` seconds in
    total: a URL that has not finished by then is reported failed (transient, "no answer")
    and left to finish in the background. At most `parallel` deliveries per
    URL run at a time (one for most services), and never two of the same
    key, so a URL that hangs holds that many threads, never more, a retry
    never races the attempt it repeats, and a hung URL never slows another
    URL or channel (apprise's own process-wide worker pool, which a few hung
    services could exhaust, is not used). The daemon threads never hold up
    interpreter exit.
    """

    def __init__(self, channel: model.Channel, *, timeout: float = DEFAULT_TIMEOUT,
                 offload: Offload | None = None, stand_in: StandIn | None = None) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        register_builtin_schemas()
        self.name = channel.name
        self.timeout = float(timeout)
        self._no_answer = f"no answer within {self.timeout:g} s"
        self._offload = offload
        asset = new_asset()
        self._asset = asset
        self._targets: list[_Target] = []
        for raw in channel.urls:
            try:
                plugin = instantiate(raw, asset)
            except ValueError as e:
                scheme = scheme_of(raw) or "?"
                self._targets.append(_Target(raw, f"{scheme}://…", None, str(e)))
                continue
            private = privacy_url(plugin)
            limit = _parallel_sends(plugin)
            previewed = stand_in is not None and not isinstance(plugin, BuiltinPlugin)
            self._targets.append(
                _Target(
                    raw,
                    private,
                    apprise.Apprise(plugin, asset=asset),
                    None,
                    secret_tokens(raw, private),
                    limit=limit,
                    offload=offload is not None and limit > 1 and not previewed,
                    stand_in=stand_in if previewed else None,
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
            UrlResult(t.private) if d else next(fresh)
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
                f"channel {self.name!r}: {len(failed)} of {plural(len(results), 'URL')} failed: "
                f"{detail}",
                results=results,
            )
        return results

    def send_test(self, title: str, body: str, now: datetime) -> list[UrlResult]:
        """Send a test message to every URL; never raises for a delivery failure."""
        msg = OutgoingMessage(
            key=f"test:{self.name}:{rfc3339(now, fraction=True)}",
            kind="test",
            deadline=None,
            title=title,
            body=body,
            due=None,
            planned_at=now,
            channel=self.name,
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
        running: list[threading.Thread] = []
        for target, outcome in zip(targets, outcomes, strict=True):
            if target.apprise is None:
                outcome.result = UrlResult(
                    target.private, PermanentDeliveryError(target.load_error or "not loaded"))
                continue
            thread = threading.Thread(target=self._run, name="notifier-send", daemon=True,
                                      args=(target, msg, outcome, deadline, remember))
            thread.start()
            running.append(thread)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [
            o.result if o.result is not None
            else UrlResult(t.private, TransientDeliveryError(self._no_answer))
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
            outcome.result = UrlResult(target.private, TransientDeliveryError(
                "an earlier delivery to this URL is still running"))
            return
        try:
            if remember:
                with _PARTIAL_LOCK:
                    taken = (msg.key, target.raw) in _PARTIAL
                if taken:  # an earlier delivery we had stopped waiting for got through
                    outcome.result = UrlResult(target.private)
                    return
            if target.stand_in is not None:
                target.stand_in(self.name, target.private, msg)
                result = UrlResult(target.private)
            else:
                result = UrlResult(target.private, failure_of(
                    self._notify(target, instance, msg), target.secrets, self._no_answer))
            if remember and result.ok:
                _remember(msg.key, target.raw)
            outcome.result = result
        except OffloadLost as e:
            outcome.result = UrlResult(target.private, TransientDeliveryError(str(e)))
        except Exception as e:  # noqa: BLE001 - report any plugin crash as this URL's failure
            outcome.result = UrlResult(target.private, TransientDeliveryError(
                f"internal error ({type(e).__name__})"))
        finally:
            with target.cond:
                target.free.append(instance)
                target.running.discard(msg.key)
                target.cond.notify_all()

    def _notify(self, target: _Target, instance: Apprise, msg: OutgoingMessage) -> NotifyReport:
        """Send `msg` to one URL, through the channel's `Offload` where it takes it."""
        waiter = None
        if target.offload and self._offload is not None:
            waiter = self._offload.submit(target.raw, msg.title, msg.body, msg.kind)
        if waiter is not None:
            return waiter()
        # This thread's own context: the plugin runs right here (see
        # new_asset), so the built-in plugins find the message's metadata.
        CURRENT.set(msg)
        return notify_report(instance, msg.title, msg.body, msg.kind)

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
            plugin = instantiate(target.raw, self._asset)
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


def send_test(channel: model.Channel, *, title: str, body: str, now: datetime,
              timeout: float = DEFAULT_TIMEOUT) -> list[UrlResult]:
    """``notifier send-test CHANNEL``: the rendered `test` message to each URL, per-URL results."""
    return ChannelSender(channel, timeout=timeout).send_test(title, body, now)

"""A send helper: a child process of the daemon that runs apprise deliveries.

apprise and requests are pure Python, so one interpreter delivers about 300
webhook messages a second here whatever its thread count: one thread at a
time holds the interpreter lock. The daemon hands the sends of apprise's own
unthrottled services (json://, form://, ...) to helpers (`notifier.delivery.sendpool`),
which run on the other cores; everything else about a send (claim, render,
ledger, retries, timeouts) stays in the daemon.

Wire: one JSON object per line on a Unix stream socket whose descriptor is
the only argument. The helper first says ``{"ready": PID}``. Request
``{"i": ID, "u": URL, "t": TITLE, "b": BODY, "k": KIND}``; reply ``{"i": ID,
"n": SERVICES, "s": STATUS, "w": [WARNINGS], "a": SAID}`` (a `NotifyReport`),
in any order, each request on a thread of its own so that a hung service
holds only its own requests. The helper ends when the socket ends (the
daemon closed it, or died); SIGTERM and SIGINT are the daemon's to act on
(systemd and a terminal signal the whole group): in-flight sends finish
while the daemon shuts down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Final

from apprise import Apprise

from notifier.delivery.appriseset import isolate_apprise_logging
from notifier.delivery.outcomes import NotifyReport, notify_report
from notifier.delivery.urls import load_instance

__all__ = ["decode_report", "encode_report", "main"]

_WARM_URL = "json://127.0.0.1"
"""Loaded (never sent to) before a helper says it is ready."""
_URLS_MAX = 256
"""Distinct URLs whose loaded instances a helper keeps (reloads may change them all)."""


def encode_report(ident: int, report: NotifyReport) -> bytes:
    return json.dumps({"i": ident, "n": report.services, "s": report.status,
                       "w": list(report.warnings), "a": report.said}).encode() + b"\n"


def decode_report(obj: dict[str, Any]) -> NotifyReport:
    return NotifyReport(int(obj["n"]), str(obj["s"]), tuple(str(w) for w in obj["w"]),
                        str(obj["a"]))


class _Instances:
    """Loaded URLs, one instance per concurrent send (as in the daemon's channel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[str, list[Apprise]] = {}

    def take(self, url: str) -> Apprise:
        with self._lock:
            free = self._free.get(url)
            if free:
                return free.pop()
        return load_instance(url)

    def give(self, url: str, instance: Apprise) -> None:
        with self._lock:
            if url not in self._free and len(self._free) >= _URLS_MAX:
                self._free.clear()
            self._free.setdefault(url, []).append(instance)


def _serve(request: dict[str, Any], instances: _Instances,
           reply: Callable[[bytes], None]) -> None:
    ident = int(request["i"])
    url = str(request["u"])
    try:
        instance = instances.take(url)
    except ValueError as e:  # secret-free by contract of load_instance
        reply(encode_report(ident, NotifyReport(0, "FAILURE", said=str(e))))
        return
    try:
        report = notify_report(instance, str(request["t"]), str(request["b"]), str(request["k"]))
    except Exception as e:  # noqa: BLE001 - report any plugin crash as this URL's failure
        report = NotifyReport(0, "FAILURE", said=f"internal error ({type(e).__name__})")
    else:
        instances.give(url, instance)
    reply(encode_report(ident, report))


def _writer(out: IO[bytes]) -> Callable[[bytes], None]:
    lock = threading.Lock()

    def reply(line: bytes) -> None:
        with lock, contextlib.suppress(OSError, ValueError):  # the daemon has gone
            out.write(line)
            out.flush()

    return reply


_USAGE: Final = ("usage: python -m notifier.delivery.sendhelper FD, where FD is a connected Unix "
                 "stream socket; `notifier run` starts helpers itself")


def _socket(args: list[str]) -> socket.socket:
    """The socket named by the only argument; raises ValueError saying what is wrong."""
    if len(args) != 1 or not args[0].isdigit():
        raise ValueError(_USAGE)
    try:
        sock = socket.socket(fileno=int(args[0]))
    except OSError as e:
        raise ValueError(f"descriptor {args[0]}: {e.strerror or e}; {_USAGE}") from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ValueError(f"descriptor {args[0]} is not a Unix stream socket; {_USAGE}")
    return sock


def main(argv: list[str] | None = None) -> int:
    """Serve the daemon until the socket ends; 2 (and one line on stderr) if started wrongly."""
    try:
        sock = _socket(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"notifier.delivery.sendhelper: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Nothing logged here reaches the journal: records of requests or urllib3
    # may hold a URL's secrets, and the daemon's redaction is not here. What a
    # send's failure says comes back in its report and is scrubbed there;
    # apprise's per-attempt capture hangs off its own logger and still works.
    logging.getLogger().addHandler(logging.NullHandler())
    isolate_apprise_logging()
    instances = _Instances()
    try:
        with sock.makefile("rb") as inbox, sock.makefile("wb") as out:
            reply = _writer(out)
            # apprise finds its plugins and requests loads its parts on first use
            # (0.3 s): before "ready", not in the first send.
            instances.give(_WARM_URL, instances.take(_WARM_URL))
            reply(json.dumps({"ready": os.getpid()}).encode() + b"\n")
            for line in inbox:
                threading.Thread(target=_serve, args=(json.loads(line), instances, reply),
                                 name="notifier-helper-send", daemon=True).start()
    except (OSError, ValueError):
        pass  # the daemon is gone or spoke nonsense: nothing to answer
    # Sends still running are the daemon's to account for; their threads must
    # not keep this process alive.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

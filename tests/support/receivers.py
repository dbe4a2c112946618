"""Real local servers that channels deliver to in tests: HTTP (apprise json://) and SMTP.

Both bind 127.0.0.1 on a free port, record what arrives, and are context
managers. `HttpReceiver` can also misbehave on request: fail the next N
requests, answer a fixed status, hang until released, or refuse connections.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

HANG_LIMIT = 60.0
"""A hung request is answered after this many seconds even if never released."""


def unused_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (free at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def dead_url() -> str:
    """A json:// URL whose port has nothing listening: connections are refused."""
    return f"json://127.0.0.1:{unused_port()}/"


def _wait(cond: threading.Condition, predicate: Any, timeout: float) -> bool:
    with cond:
        return bool(cond.wait_for(predicate, timeout=timeout))


# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float
    """time.monotonic() when the request had been read."""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _HttpState:
    mode: str = "ok"  # ok | status | hang
    status: int = 200
    fail_next: int = 0
    fail_status: int = 500
    release: threading.Event = field(default_factory=threading.Event)


class _ClosedOnExit:
    """`with receiver:` closes it on the way out, as a file would."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HttpReceiver(_ClosedOnExit):
    """A threaded HTTP server recording every request; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state = _HttpState()
        self._requests: list[HttpRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._listen(0)

    # -- lifecycle

    def _listen(self, port: int) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = receiver._arrive(
                    HttpRequest(
                        method=self.command,
                        path=self.path,
                        headers=dict(self.headers.items()),
                        body=body,
                        arrived=time.monotonic(),
                    )
                )
                payload = b'{"ok": true}' if status < 300 else b'{"ok": false}'
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.release()
        self._stop_listening()

    # -- what arrives

    def _arrive(self, request: HttpRequest) -> int:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
            state = self._state
            if state.fail_next > 0:
                state.fail_next -= 1
                return state.fail_status
            if state.mode == "status":
                return state.status
            if state.mode != "hang":
                return 200
            release = state.release
        release.wait(HANG_LIMIT)
        return 200

    @property
    def requests(self) -> list[HttpRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received, in arrival order."""
        return [r.json for r in self.requests]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least `count` requests have arrived."""
        return _wait(self._cond, lambda: len(self._requests) >= count, timeout)

    # -- behaviour

    def ok(self) -> None:
        """Answer 200 from now on (and release any hung request)."""
        with self._cond:
            self._state.mode = "ok"
            self._state.fail_next = 0
        self.release()

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer `status` to the next `count` requests, then behave as before."""
        with self._cond:
            self._state.fail_next = count
            self._state.fail_status = status

    def set_status(self, status: int) -> None:
        """Answer `status` to every request until told otherwise."""
        with self._cond:
            self._state.mode = "status"
            self._state.status = status

    def hang(self) -> None:
        """Read each request, then hold it unanswered until `release()` (or HANG_LIMIT)."""
        with self._cond:
            self._state.mode = "hang"
            self._state.release = threading.Event()

    def release(self) -> None:
        """Answer the requests held by `hang()` (200) and stop hanging."""
        with self._cond:
            if self._state.mode == "hang":
                self._state.mode = "ok"
            self._state.release.set()

    def refuse(self) -> None:
        """Stop listening: new connections are refused until `accept()`."""
        self._stop_listening()

    def accept(self) -> None:
        """Listen again on the same port after `refuse()`."""
        if self._server is None:
            self._listen(self.port)

    # -- URLs

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/"

    def url_with_auth(self, user: str, password: str) -> str:
        return f"json://{user}:{password}@127.0.0.1:{self.port}/"


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    body: str
    """The text/plain part if there is one, else the first text part."""
    message: EmailMessage
    arrived: float


class _SmtpHandler:
    def __init__(self, receiver: SmtpReceiver, refuse: frozenset[str]) -> None:
        self._receiver = receiver
        self._refuse = refuse

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self._refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        self._receiver._arrive(
            Mail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                subject=str(msg.get("Subject", "")),
                body=str(body),
                message=msg,
                arrived=time.monotonic(),
            )
        )
        return "250 Message accepted for delivery"


class _Authenticator:
    """aiosmtpd authenticator that accepts any user and password, or none (535)."""

    def __init__(self, *, accept: bool) -> None:
        self._accept = accept

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=self._accept, handled=self._accept)


class SmtpReceiver(_ClosedOnExit):
    """An aiosmtpd server on 127.0.0.1 recording every message (no TLS).

    Without AUTH (the default) it offers none, as a relay would. With
    `accept_auth=True` it advertises AUTH over plain text and accepts any
    credentials, so a mailto:// URL with user:password works against it; with
    `reject_auth=True` it advertises AUTH and refuses every login (535).
    A recipient in `refuse` is rejected at RCPT TO (550 5.1.1).
    """

    def __init__(self, *, accept_auth: bool = False, reject_auth: bool = False,
                 refuse: frozenset[str] = frozenset()) -> None:
        self._cond = threading.Condition()
        self._mails: list[Mail] = []
        self.port = unused_port()
        kwargs: dict[str, Any] = {}
        if accept_auth or reject_auth:
            kwargs = {"auth_require_tls": False,
                      "authenticator": _Authenticator(accept=accept_auth)}
        self._controller = Controller(
            _SmtpHandler(self, refuse), hostname="127.0.0.1", port=self.port, **kwargs
        )
        self._controller.start()

    def _arrive(self, mail: Mail) -> None:
        with self._cond:
            self._mails.append(mail)
            self._cond.notify_all()

    @property
    def messages(self) -> list[Mail]:
        with self._cond:
            return list(self._mails)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        return _wait(self._cond, lambda: len(self._mails) >= count, timeout)

    def url(
        self,
        *,
        to: str = "ops@example.com",
        sender: str = "notifier@example.com",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """A mailto:// URL for this server: plain SMTP (mode=insecure), explicit from/to.

        apprise's NotifyEmail takes the SMTP host from the URL host (or ?smtp=)
        and the port from the URL; mailto:// (not mailtos://) with
        mode=insecure means no TLS. It logs in only when both user and
        password are given.
        """
        auth = ""
        if user is not None:
            auth = user + (f":{password}" if password is not None else "") + "@"
        return (
            f"mailto://{auth}127.0.0.1:{self.port}/"
            f"?smtp=127.0.0.1&mode=insecure&from={sender}&to={to}"
        )

    def close(self) -> None:
        self._controller.stop()


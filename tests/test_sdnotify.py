"""The systemd notify protocol against a real Unix datagram socket."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.daemon.sdnotify import SystemdNotifier

# sun_path holds 108 bytes including the terminating NUL.
_MAX_SUN_PATH = 107


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, or a shorter directory if tmp_path is too long for a socket path."""
    if len(os.fsencode(tmp_path / "notify.sock")) <= _MAX_SUN_PATH:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="sdn-") as short:
        yield Path(short)


@pytest.fixture
def receiver(socket_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its NOTIFY_SOCKET value."""
    path = socket_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fsencode(path))
    sock.settimeout(5)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def recv(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def assert_nothing_pending(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        with pytest.raises(BlockingIOError):
            sock.recv(4096)
    finally:
        sock.settimeout(5)


def test_ready(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready() is True
    assert recv(sock) == b"READY=1"
    assert_nothing_pending(sock)


def test_ready_with_status(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    notifier.ready("3 deadlines, next in 2h")
    assert recv(sock) == b"READY=1\nSTATUS=3 deadlines, next in 2h"


def test_reloading_carries_monotonic_usec(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    before = time.monotonic_ns() // 1000
    notifier.reloading()
    after = time.monotonic_ns() // 1000
    first, second = recv(sock).split(b"\n")
    assert first == b"RELOADING=1"
    key, _, value = second.partition(b"=")
    assert key == b"MONOTONIC_USEC"
    assert value.isdigit()
    assert before <= int(value) <= after


def test_stopping(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).stopping()
    assert recv(sock) == b"STOPPING=1"


def test_watchdog(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).watchdog()
    assert recv(sock) == b"WATCHDOG=1"


def test_status(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).status("catching up: 2 late")
    assert recv(sock) == b"STATUS=catching up: 2 late"


def test_status_cannot_inject_assignments(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).status("line one\nREADY=1\r\nline three")
    assert recv(sock) == b"STATUS=line one READY=1 line three"


def test_status_is_utf8(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).status("Kəlbəcər due 25 Nov")
    assert recv(sock) == "STATUS=Kəlbəcər due 25 Nov".encode()


def test_extend_timeout(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    SystemdNotifier({"NOTIFY_SOCKET": path}).extend_timeout(1.5)
    assert recv(sock) == b"EXTEND_TIMEOUT_USEC=1500000"


def test_sequence_in_order_over_one_socket(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
    assert [recv(sock) for _ in range(3)] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1"]
    notifier.close()
    notifier.watchdog()  # a closed notifier opens a new socket
    assert recv(sock) == b"WATCHDOG=1"


def test_reads_os_environ_by_default(
    receiver: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    for notifier in (SystemdNotifier(), SystemdNotifier.from_env()):
        assert notifier.watchdog_interval() == 10.0
        notifier.ready()
        assert recv(sock) == b"READY=1"


def test_abstract_socket() -> None:
    name = f"notifier-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": f"@{name}"})
        assert notifier.ready("up") is True
        assert recv(sock) == b"READY=1\nSTATUS=up"
        notifier.watchdog()
        assert recv(sock) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sockets(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("no socket may be created without NOTIFY_SOCKET")

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(socket, "socket", no_sockets)
    notifiers = [SystemdNotifier(), SystemdNotifier({}), SystemdNotifier({"NOTIFY_SOCKET": ""})]
    for notifier in notifiers:
        assert not notifier.enabled
        assert notifier.ready("x") is False
        assert notifier.reloading() is False
        assert notifier.stopping() is False
        assert notifier.watchdog() is False
        assert notifier.status("x") is False
        notifier.close()


def test_unsupported_address_form_is_a_no_op() -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert notifier.ready() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "<self>"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "<other>"}, None),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "not-a-pid"}, None),
        ({"WATCHDOG_USEC": "1500000"}, 0.75),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "sixty"}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_PID": "<self>"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    replacements = {"<self>": str(os.getpid()), "<other>": str(os.getpid() + 1)}
    environ = {key: replacements.get(value, value) for key, value in env.items()}
    environ["NOTIFY_SOCKET"] = "@unused"
    assert SystemdNotifier(environ).watchdog_interval() == expected


def test_missing_socket_path_does_not_raise(socket_dir: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(socket_dir / "gone.sock")})
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.reloading() is False


def test_dead_socket_does_not_raise(socket_dir: Path) -> None:
    path = socket_dir / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fsencode(path))
    sock.close()  # the file stays, nobody listens: ECONNREFUSED
    assert path.exists()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.stopping() is False
    assert notifier.status("still alive") is False


def test_not_a_socket_does_not_raise(socket_dir: Path) -> None:
    path = socket_dir / "plain-file"
    path.write_text("")
    assert SystemdNotifier({"NOTIFY_SOCKET": str(path)}).ready() is False


def test_recovers_once_systemd_listens(socket_dir: Path) -> None:
    path = socket_dir / "late.sock"
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.watchdog() is False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fsencode(path))
    sock.settimeout(5)
    try:
        assert notifier.watchdog() is True
        assert recv(sock) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_never_blocks_on_a_full_queue(receiver: tuple[socket.socket, str]) -> None:
    _sock, path = receiver  # never read: the receive queue fills up
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    started = time.monotonic()
    results = [notifier.watchdog() for _ in range(5000)]
    assert time.monotonic() - started < 10
    assert results[0] is True
    assert results[-1] is False


def test_socket_creation_failure_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> socket.socket:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", refused)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "/run/systemd/notify"})
    assert notifier.ready() is False
    assert notifier.stopping() is False

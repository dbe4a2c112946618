"""Shared fixtures. Keep this file small: shared helpers live in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.receivers import HttpReceiver, SmtpReceiver
from support.threads import apprise_logging_restored


@pytest.fixture(autouse=True)
def _restore_apprise_logger() -> Iterator[None]:
    """An in-process Daemon isolates the process-wide apprise logger; undo it per test."""
    with apprise_logging_restored():
        yield


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver

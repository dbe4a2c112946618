"""Shared fixtures. Keep this file small: reusable servers live in tests/receivers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receivers import HttpReceiver, SmtpReceiver


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver

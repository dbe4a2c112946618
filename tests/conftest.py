"""Shared fixtures. Keep this file small: reusable servers live in tests/receivers.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from receivers import HttpReceiver, SmtpReceiver


@pytest.fixture(autouse=True)
def _restore_apprise_logger() -> Iterator[None]:
    """An in-process Daemon isolates the process-wide apprise logger; undo it per test."""
    logger = logging.getLogger("apprise")
    saved = (logger.propagate, logger.level, list(logger.handlers))
    yield
    logger.propagate, level, handlers = saved
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver

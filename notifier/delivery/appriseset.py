"""apprise set-up: our built-in schemas, plugin paths, apprise's logging kept apart, the asset.

Everything here is done to apprise once per process (or per channel, for the
asset), before any URL is loaded. This module imports apprise at the top, so
other modules import it lazily where `check` may not need it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast

import apprise
from apprise import AppriseAsset, NotifyBase, PersistentStoreMode
from apprise.plugins import N_MGR as _APPRISE_N_MGR
from apprise.plugins import url_to_dict as _apprise_url_to_dict

from notifier.delivery.plugins import BUILTINS

__all__ = [
    "N_MGR",
    "isolate_apprise_logging",
    "load_plugin_paths",
    "new_asset",
    "quiet_apprise",
    "register_builtin_schemas",
    "url_to_dict",
]

_log = logging.getLogger("notifier.channels")  # the name operators filter on since 0.1

# apprise's url_to_dict and plugin manager carry no annotations; these typed
# views are all of them that the delivery package uses.
url_to_dict: Callable[..., dict[str, Any] | None] = _apprise_url_to_dict


class _PluginRegistry(Protocol):
    def __contains__(self, schema: object, /) -> bool: ...
    def __getitem__(self, schema: str, /) -> type[NotifyBase]: ...
    def add(
        self, plugin: type[NotifyBase], schemas: list[str] | None = None, *, force: bool = False
    ) -> bool: ...


N_MGR = cast(_PluginRegistry, _APPRISE_N_MGR)

_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "notifier_quiet_apprise", default=False
)


class _QuietFilter(logging.Filter):
    """Drops apprise records while `_QUIET` is set: URL parsing can echo tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


_QUIET_FILTER = _QuietFilter()


@contextmanager
def quiet_apprise() -> Iterator[None]:
    """Silence apprise in this context (while a URL, maybe holding tokens, is parsed)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def isolate_apprise_logging(level: int = logging.DEBUG) -> None:
    """Keep apprise's own log records out of the application's log handlers.

    apprise plugins may put a token into a warning (e.g. "invalid bot token
    (...)"). After this call nothing apprise logs reaches the root logger; its
    records down to `level` are still captured per delivery (a failure's
    warning and, at DEBUG, its cause feed `UrlResult.error`, after scrubbing)
    because that capture hangs off the ``apprise`` logger itself.
    Idempotent, and cheap once done (it runs before every send).
    """
    logger = logging.getLogger(apprise.LOGGER_NAME)
    if logger.propagate:
        logger.propagate = False
    if logger.level != level:
        logger.setLevel(level)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


_REGISTER_LOCK = threading.Lock()


def register_builtin_schemas() -> None:
    """Register ``console://`` and ``jsonl://`` with apprise. Idempotent and thread-safe.

    Call it before `load_plugin_paths` so a third-party plugin cannot take
    these schemas. Re-registering a reloaded copy of the plugins module replaces
    the old classes; a schema held by anything else is left alone and reported.
    Also attaches the filter that silences apprise while URLs are parsed here.
    """
    with _REGISTER_LOCK:
        apprise_logger = logging.getLogger(apprise.LOGGER_NAME)
        if not any(isinstance(f, _QuietFilter) for f in apprise_logger.filters):
            apprise_logger.addFilter(_QUIET_FILTER)
        for cls in BUILTINS:
            schema = str(cls.protocol)
            existing: type[NotifyBase] | None = None
            if schema in N_MGR:
                existing = N_MGR[schema]
            if existing is cls:
                continue
            ours = existing is not None and (
                getattr(existing, "__module__", None) == cls.__module__
                and getattr(existing, "__qualname__", None) == cls.__qualname__
            )
            if existing is not None and not ours:
                _log.warning("apprise schema %s:// is taken by another plugin", schema)
                continue
            if not N_MGR.add(cls, schemas=[schema], force=ours):
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


def new_asset() -> AppriseAsset:
    """The asset every URL is loaded with: nothing on disk, and notify() in the caller's thread."""
    return AppriseAsset(
        storage_mode=PersistentStoreMode.MEMORY,  # nothing written to disk by apprise
        result_log_disk_size=0,  # captured logs stay in memory
        # No apprise deadline and no apprise thread pool: with one service per
        # Apprise object, notify() then runs the plugin in the calling thread,
        # which is one of ours (see ChannelSender), so the built-in plugins
        # find the message in their context.
        service_timeout=0,
        async_mode=False,
    )

"""Secrets a config holds (channel URLs, credentials), and a warning when its file exposes them."""

from __future__ import annotations

import contextlib
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from notifier.config import tomlpos
from notifier.config.checks import BUILTIN_SCHEMES
from notifier.config.located import Collector
from notifier.config.schema import Settings
from notifier.redact import looks_like_token


def settings_secrets(s: Settings, env: Mapping[str, str]) -> tuple[str, ...]:
    """Values that must never be printed: passwords and tokens in channel URLs."""
    urls = [url for ch in s.channels.values() for url in ch.all_urls]
    return url_secrets(urls, env)


def url_secrets(urls: list[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The pieces of `urls` that may be secret (what the logs redact): passwords, query
    values, long tokens; less what a URL's shown form (`privacy_url`) shows as it is
    (a user name, a recipient, a host), so a log line shows a URL as every command does."""
    from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

    found: set[str] = set()
    for url in urls:
        if url.startswith(BUILTIN_SCHEMES):
            continue
        pieces: set[str] = set()
        try:
            parts = urlsplit(url)
            if parts.password:
                found.add(parts.password)  # whatever is shown: never said to be safe
            pieces.update(x for x in (parts.username,) if x)
            pieces.update(v for _, v in parse_qsl(parts.query))
            # A path segment or (ntfy's) topic that looks like a token: what the shown
            # form masks of it, it does not take away below.
            pieces.update(seg for seg in [parts.hostname or "", *parts.path.split("/")]
                          if looks_like_token(seg))
        except ValueError:
            found.add(url)
        # Whatever the URL's shape (even a broken one), long tokens may be keys.
        pieces.update(t for t in re.split(r"[/:@?&=#\[\]\s,;]+", url) if len(t) >= 12)
        if pieces:
            found.update(pieces - _shown_pieces(url))
    found.update(v for k, v in env.items() if k.startswith("NOTIFIER_CHANNELS"))
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        with contextlib.suppress(OSError):
            for entry in Path(creds).iterdir():
                if entry.is_file() and entry.stat().st_size < 65536:
                    found.add(entry.read_text(errors="replace").strip())
    return tuple(sorted((x for x in found if len(x) >= 4), key=len, reverse=True))


def _shown_pieces(url: str) -> frozenset[str]:
    from notifier.delivery.urls import shown_pieces  # noqa: PLC0415 - apprise is slow to import

    return shown_pieces(url)


def raw_secrets(data: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    """Secrets in a file that did not validate: every string under [channels]."""
    urls: list[str] = []
    channels = data.get("channels")

    def walk(value: object) -> None:
        if isinstance(value, str):
            urls.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(channels)
    return url_secrets(urls, env)


EXPOSED_ADVICE = ("move the secret to a credential (LoadCredential=), or make the file 0640"
                  " with a group the service runs with (README, \"The daemon and systemd\")")
"""What the README's systemd install allows: the file stays readable by the service."""


def warn_if_exposed(path: Path, s: Settings, col: Collector) -> None:
    """Warn, at its line, about the file's first URL holding a secret if others can read it.

    Readable by group only (0640) is the README's way to share the file with the
    service's group, so only "others" count. A URL set by a ``NOTIFIER_*``
    variable or a credential file is not in the file and does not count.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not mode & stat.S_IROTH:
        return
    for name, ch in s.channels.items():
        for j, url in enumerate(ch.all_urls):
            where: tomlpos.Path = (("channels", name, "url") if ch.url is not None
                                   else ("channels", name, "urls", j))
            if url.startswith(BUILTIN_SCHEMES) or col.overrides.origin(where) is not None:
                continue
            from notifier.delivery.urls import exposed_form  # noqa: PLC0415 - apprise is slow to import

            try:
                shown = exposed_form(url)
            except ValueError:
                continue  # already an error of its own
            if shown is not None:
                col.add(where, f"{shown} holds a secret and this file is readable by others"
                               f" (mode {stat.S_IMODE(mode):04o}): {EXPOSED_ADVICE}",
                        warning=True)
                return


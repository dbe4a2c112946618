"""Known secrets replaced by ``***`` in any text: errors, log lines, delivery reasons.

The one scrubber. What counts as a secret is found where the secrets are
known (the config's channel URLs, a URL's parts not shown in its privacy
form); replacing them, in their plain and URL-encoded forms, longest first,
happens here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: Shorter strings are not redacted: replacing every "abc" would shred the text.
MIN_SECRET_LENGTH = 4
MASK = "***"
#: A URL piece this long, of letters, digits, ``-`` and ``_`` only, looks like a token
#: (a webhook's path key, an ntfy topic that is its own password).
TOKEN_MIN_LENGTH = 16
_TOKEN = re.compile(f"[A-Za-z0-9_-]{{{TOKEN_MIN_LENGTH},}}")


def looks_like_token(piece: str) -> bool:
    """Whether a URL's `piece` (a path segment, an ntfy topic) may be a secret key: the
    one rule both the shown form of a URL (what it masks) and the log redaction use."""
    return _TOKEN.fullmatch(piece) is not None


class Redactor:
    """Replaces every secret it knows (and its URL-encoded forms) with ``***``."""

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = MIN_SECRET_LENGTH) -> None:
        self._min_length = min_length
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secrets (e.g. after a config reload)."""
        for secret in secrets:
            if len(secret) < self._min_length:
                continue
            self._secrets.update({secret, quote(secret, safe=""), quote_plus(secret, safe="")})
        if self._secrets:
            # Longest first, so a secret containing another is replaced whole.
            ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """`text` with every known secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def redact(text: str, secrets: Iterable[str], *, min_length: int = MIN_SECRET_LENGTH) -> str:
    """`text` with each of `secrets` replaced by ``***`` (see `Redactor`)."""
    return Redactor(secrets, min_length=min_length).redact(text)


# A message that quotes its input marks each quoted part, so that where the input
# may be a secret (a variable's or credential's value) exactly those parts are
# hidden, and the product's own words around them (an example such as
# '0 8 * * 1-5', a list of choices) are never touched.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKED = re.compile(f"{_OPEN}([^{_CLOSE}]*){_CLOSE}")


def from_input(text: str) -> str:
    """`text`, a part of a message that comes from the input, marked as such (see `shown`)."""
    return _OPEN + text.replace(_OPEN, "").replace(_CLOSE, "") + _CLOSE


def shown(message: str, *, hide: bool = False) -> str:
    """`message` as printed: its parts from the input as written, or each as ``***``."""
    return _MARKED.sub(MASK if hide else r"\1", message)

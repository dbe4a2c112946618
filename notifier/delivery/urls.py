"""Channel URLs: loading one as an apprise plugin, checking it, its privacy form and secrets.

Loading bounds every socket operation: a URL without ``cto=``/``rto=`` gets
``DEFAULT_CTO``/``DEFAULT_RTO`` (or the plugin's own default when that is
longer, e.g. 15 s for email). Every text this module returns is secret-free.
Only `validate_url` is needed by config checking; it imports apprise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from apprise import Apprise, AppriseAsset, NotifyBase

from notifier.delivery.appriseset import (
    N_MGR,
    new_asset,
    quiet_apprise,
    register_builtin_schemas,
    url_to_dict,
)
from notifier.delivery.plugins import BuiltinPlugin, BuiltinUrlError
from notifier.redact import MASK, looks_like_token, redact
from notifier.text import one_line

__all__ = [
    "DEFAULT_CTO",
    "DEFAULT_RTO",
    "exposed_form",
    "instantiate",
    "load_instance",
    "privacy_url",
    "scheme_of",
    "secret_tokens",
    "short",
    "shown_pieces",
    "validate_url",
]

DEFAULT_CTO: Final = 4.0
"""Socket connect timeout (s) applied when a URL has no ``cto=`` (never below the plugin's own)."""
DEFAULT_RTO: Final = 10.0
"""Socket read timeout (s) applied when a URL has no ``rto=`` (never below the plugin's own)."""

_SCHEME_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_ERROR_MAX = 300
_TOKEN_MIN = 3
"""URL pieces this long or longer that its privacy form hides are treated as secrets."""


def secret_tokens(raw_url: str, private_url: str | None) -> list[str]:
    """Pieces of `raw_url` that may be secret: everything not shown in its privacy form.

    Query keys and the scheme are never secret. Without a privacy form (a URL
    that failed to load) every other piece of three or more characters counts.
    """
    scheme_match = _SCHEME_RE.match(raw_url)
    safe = {scheme_match.group(1).lower()} if scheme_match else set()
    query = urlsplit(raw_url).query if "://" in raw_url else ""
    safe.update(part.split("=", 1)[0] for part in query.split("&") if part)
    shown = private_url or ""
    tokens: set[str] = set()
    for text in (raw_url, unquote(raw_url)):
        for token in re.split(r"[/:@?&=#,;+\s]+", text):
            if len(token) >= _TOKEN_MIN and token.lower() not in safe and token not in shown:
                tokens.add(token)
    return sorted(tokens, key=len, reverse=True)


def short(text: str, secrets: Iterable[str]) -> str:
    """A failure's reason for the ledger and logs: one line, capped, no secret."""
    return one_line(redact(text, secrets, min_length=_TOKEN_MIN), _ERROR_MAX)


def scheme_of(url: str) -> str | None:
    m = _SCHEME_RE.match(url)
    return m.group(1).lower() if m else None


def instantiate(url: str, asset: AppriseAsset) -> NotifyBase:
    """Load one URL as a plugin, applying our timeout defaults. Raises ValueError.

    The ValueError's text is secret-free.
    """
    scheme = scheme_of(url)
    if scheme is None:
        raise ValueError("not an apprise URL: expected SCHEME://...")
    with quiet_apprise():
        results = url_to_dict(url, secure_logging=True)
    if results is None:
        if scheme not in N_MGR:
            raise ValueError(f"unknown scheme {scheme}://{_scheme_hint(scheme)}")
        raise ValueError(f"malformed {N_MGR[scheme].service_name!s} URL ({scheme}://)")
    plugin_cls = N_MGR[results["schema"]]
    if not issubclass(plugin_cls, BuiltinPlugin):
        # Bound every socket operation; an operator's cto=/rto= wins, and a
        # plugin whose own default is longer (email: 15 s) keeps it.
        results.setdefault("cto", max(DEFAULT_CTO, float(plugin_cls.socket_connect_timeout)))
        results.setdefault("rto", max(DEFAULT_RTO, float(plugin_cls.socket_read_timeout)))
    try:
        with quiet_apprise():
            plugin = Apprise.instantiate(results, asset=asset, suppress_exceptions=False)
    except BuiltinUrlError as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - any plugin may raise anything on a bad URL
        detail = _plugin_words(short(str(e), secret_tokens(url, None)))
        name = str(plugin_cls.service_name)
        reason = f"{name} rejected the URL: {detail}" if detail else f"bad {name} URL"
        raise ValueError(reason) from None
    if plugin is None:
        raise ValueError(f"{scheme}:// is not available on this system")
    return plugin


def _scheme_hint(scheme: str) -> str:
    """What to write instead of an unknown scheme: a webhook's, or the closest known."""
    if scheme in ("http", "https"):
        return (f": for a webhook write json{'s' if scheme == 'https' else ''}:// (a JSON POST;"
                " also xml://, form://), or the service's own apprise scheme")
    import difflib  # noqa: PLC0415 - only for a bad URL

    known: Callable[[], list[str]] = N_MGR.schemas  # type: ignore[attr-defined]  # untyped
    close = difflib.get_close_matches(scheme, [str(k) for k in known()], n=1, cutoff=0.75)
    return f" (did you mean {close[0]}://?)" if close else ""


_PLUGIN_WORDS: Final = (
    (re.compile(r"^Invalid ~From~ email (?:specified|format)\b.*", re.IGNORECASE | re.DOTALL),
     "no valid sender address: add from=NAME@DOMAIN, or a user and host that make one"),
    (re.compile(r"^Invalid ~To~ email (?:specified|format)\b.*", re.IGNORECASE | re.DOTALL),
     "a recipient address is not valid: to=NAME@DOMAIN"),
)


def _plugin_words(detail: str) -> str:
    """A plugin's refusal in our words: known ones rewritten; any other without the
    value it quotes after its last colon (redacted, or empty: a bare colon) nor tildes."""
    for pattern, words in _PLUGIN_WORDS:
        if pattern.match(detail):
            return words
    detail = re.sub(r":[^:]*$", "", detail) if ": " in detail or detail.endswith(":") \
        else detail
    detail = detail.replace("~", "").strip()
    return detail[:1].lower() + detail[1:]


_CUSTOM_ARG = re.compile(r"([?&](?:[+:-]|%2[Bb]|%3[Aa])[^=&]*=)[^&]*")


def privacy_url(plugin: NotifyBase) -> str:
    """The plugin's URL as shown to people (`send-test`, `history`, `replay`, the logs):
    apprise's privacy form (passwords and tokens masked), custom arguments' values
    masked too, and a webhook's path segment or an ntfy topic that looks like a token
    (`looks_like_token`: apprise shows those in clear), less the parameters that only
    repeat a default (``overflow=upstream``, ``retry=0``, ``rto=10.0``, ...). The one
    form: nothing else masks a URL its own way."""
    return _form(plugin, privacy=True)


def _form(plugin: NotifyBase, *, privacy: bool) -> str:
    """`privacy_url`, or with `privacy` false the same form with nothing masked."""
    url: Callable[..., object] = plugin.url  # unannotated in apprise
    shown = str(url(privacy=privacy))
    if privacy:
        # apprise's privacy form keeps custom headers (+X-Api-Key=...), payload
        # (:field=...) and GET parameters (-param=...) of json/xml/form in clear;
        # they often hold API keys, so their values are masked too.
        shown = _CUSTOM_ARG.sub(r"\1***", shown)
        shown = _mask_path_tokens(shown, cloud=getattr(plugin, "mode", None) == "cloud")
    head, _, query = shown.partition("?")
    defaults = _default_parameters(str(url(privacy=False)))
    kept = [part for part in query.split("&") if part and part not in defaults]
    return f"{head}?{'&'.join(kept)}" if kept else head


_PATH_TOKEN_SCHEMES: Final = frozenset({"json", "jsons", "xml", "xmls", "form", "forms",
                                       "ntfy", "ntfys"})
"""Schemes whose path (a webhook's, ntfy's topics) may hold a key apprise shows in clear."""


def _mask_path_tokens(shown: str, *, cloud: bool) -> str:
    """`shown` with each path segment that looks like a token (`looks_like_token`)
    masked, for a generic webhook or ntfy; with `cloud` (ntfy.sh, whose URL starts
    with its first topic) the host position too. A user name and a host stay shown."""
    scheme = scheme_of(shown)
    if scheme not in _PATH_TOKEN_SCHEMES:
        return shown
    head, sep, query = shown.partition("?")
    prefix, _, rest = head.partition("://")
    netloc, slash, path = rest.partition("/")
    if cloud:
        netloc = MASK if looks_like_token(unquote(netloc)) else netloc
    path = "/".join(MASK if looks_like_token(unquote(seg)) else seg for seg in path.split("/"))
    return f"{prefix}://{netloc}{slash}{path}{sep}{query}"


def _shown_query(url: str) -> frozenset[str] | None:
    """The ``key=value`` parameters of `url`'s privacy form, or None if it cannot load."""
    try:
        plugin = instantiate(url, new_asset())
    except ValueError:
        return None
    shown: Callable[..., object] = plugin.url  # unannotated in apprise
    return frozenset(str(shown(privacy=True)).partition("?")[2].split("&"))


@functools.lru_cache(maxsize=256)
def _default_parameters(full: str) -> frozenset[str]:
    """Those of the ``key=value`` parameters of `full` (a plugin's whole URL) that
    are what the plugin takes when no one sets them: the same without any query, or,
    where the plugin needs some of it (an email's ``from=``), without that one."""
    bare, _, query = full.partition("?")
    found = _shown_query(bare)
    if found is not None:
        return found
    parts = [part for part in query.split("&") if part]
    defaults = set()
    for part in parts:
        without = _shown_query(f"{bare}?{'&'.join(p for p in parts if p != part)}")
        if without is not None and part in without:
            defaults.add(part)
    return frozenset(defaults)


def shown_pieces(url: str) -> frozenset[str]:
    """The pieces of `url` that its `privacy_url` shows as they are (user, host, path
    segments, query values; unquoted), so they are not secret; none if `url` cannot be
    loaded. What the logs redact agrees with what every command shows."""
    register_builtin_schemas()
    try:
        shown = privacy_url(instantiate(url, new_asset()))
    except ValueError:
        return frozenset()
    parts = urlsplit(shown)
    user_info, _, host_port = parts.netloc.rpartition("@")
    pieces = {user_info.partition(":")[0], host_port.rpartition(":")[0] or host_port,
              *parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))}
    return frozenset(unquote(p) for p in pieces if p and "*" not in p)


def exposed_form(url: str) -> str | None:
    """`url`'s privacy form if it holds a secret (what that form masks), else None.

    apprise knows which parts of its URL are private: a password, a token, a
    key hide in ``url(privacy=True)``; with `privacy_url`'s masking of custom
    arguments, a URL holds a secret exactly when that form differs from the
    plain ``url()``. No network I/O. Raises ValueError if `url` cannot be loaded.
    """
    register_builtin_schemas()
    plugin = instantiate(url.strip(), new_asset())
    private = privacy_url(plugin)
    return private if private != _form(plugin, privacy=False) else None


def validate_url(url: str) -> str | None:
    """A secret-free reason why `url` cannot be used, or None. No network I/O."""
    if not isinstance(url, str) or not url.strip():
        return "empty URL"
    register_builtin_schemas()
    try:
        instantiate(url.strip(), new_asset())
    except ValueError as e:
        return str(e)
    return None


def load_instance(url: str) -> Apprise:
    """`url` loaded as the channel loads it, in an ``Apprise`` of its own. Raises
    ValueError (secret-free) if it cannot be loaded."""
    asset = new_asset()
    return Apprise(instantiate(url, asset), asset=asset)

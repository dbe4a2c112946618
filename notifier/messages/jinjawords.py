"""Jinja's errors in the product's words: an operator reads them against their template.

Jinja words its errors for programmers ("'dict object' has no attribute
'titel'", "Unexpected end of template. Jinja was looking for the following
tags: ..."). The forms an operator meets are said here in terms of the
template as written (`unknown variable deadline.titel (did you mean
deadline.title?)`, `{% if %} is not closed: add {% endif %}`); any other
error keeps Jinja's words. Only the template's own names are quoted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

_SYNTAX: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), w) for p, w in (
    (r"Unexpected end of template\. Jinja was looking for the following tags: .*\. "
     r"The innermost block that needs to be closed is '(\w+)'\.$",
     r"{% \1 %} is not closed: add {% end\1 %}"),
    (r"unexpected end of template, expected 'end of print statement'\.$",
     "{{ is not closed: add }}"),
    (r"unexpected '}'$", "a single }: close {{ ... }} with }}"),
    (r"unexpected '(.+)'$", r"unexpected \1"),
    (r"Expected an expression, got 'end of print statement'$",
     "nothing between {{ and }}: write a variable, e.g. {{ deadline.title }}"),
    (r"expected token 'end of print statement', got '(.+)'$", r"expected }} before \1"),
    (r"Encountered unknown tag '(\w+)'\.$", r"unknown tag {% \1 %} (or no open block it ends)"),
    (r"No filter named '(\w+)'\.$", r"unknown filter \1"),
))
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'([^']+)' has no attribute '([^']+)'$")


def syntax_words(message: str, env: SandboxedEnvironment) -> str:
    """A syntax error's message in the product's words."""
    for pattern, words in _SYNTAX:
        m = pattern.match(message)
        if m is not None:
            said = m.expand(words) if "\\1" in words else words
            if said.startswith("unknown filter"):
                said += _near(m.group(1), env.filters)
            return said
    return message


def render_words(message: str, env: SandboxedEnvironment, source: str,
                 ctx: Mapping[str, Any]) -> str:
    """A render error's message (StrictUndefined's) in terms of the template and the
    variables it sees: `unknown variable deadline.titel (did you mean deadline.title?)`."""
    m = _UNDEFINED.match(message)
    if m is not None:
        name = m.group(1)
        return f"unknown variable {name}{_near(name, ctx, fmt=lambda k: k)}"
    m = _NO_ATTRIBUTE.match(message)
    if m is None:
        return message
    attr = m.group(2)
    try:
        chain = _chain_to(env.parse(source), attr)
    except Exception:  # noqa: BLE001 - the source compiled once; never fail a report
        chain = None
    if chain is None:
        return f"unknown variable {attr}"
    parent, found = _value(ctx, chain[:-1])
    dotted = ".".join(chain)
    if found and parent is None:
        return (f"{dotted}: {'.'.join(chain[:-1])} is empty in some messages of this kind; "
                f"guard it with {{% if {'.'.join(chain[:-1])} %}}")
    names = parent if isinstance(parent, Mapping) else \
        [a for a in dir(parent) if not a.startswith("_")] if found else []
    prefix = ".".join(chain[:-1])
    return f"unknown variable {dotted}" + _near(attr, names, fmt=lambda k: f"{prefix}.{k}")


def _near(name: str, known: Any, *, fmt: Callable[[str], str] = str) -> str:
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {fmt(close[0])}?)" if close else ""


def _chain_to(tree: nodes.Template, attr: str) -> list[str] | None:
    """`deadline.titel` as ["deadline", "titel"]: the first `.attr` (or `["attr"]`) of
    the template read from a variable, as written."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        else:
            continue
        if name != attr:
            continue
        chain = _names(node)
        if chain is not None:
            return chain
    return None


def _names(node: nodes.Node) -> list[str] | None:
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        inner = _names(node.node)
        return None if inner is None else [*inner, node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _names(node.node)
        return None if inner is None else [*inner, str(node.arg.value)]
    return None


def _value(ctx: Mapping[str, Any], chain: list[str]) -> tuple[Any, bool]:
    """The value `chain` names in `ctx`, and whether it was found."""
    value: Any = ctx
    for part in chain:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif not isinstance(value, Mapping) and hasattr(value, part):
            value = getattr(value, part)
        else:
            return None, False
    return value, True

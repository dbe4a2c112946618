"""Jinja's errors in the product's words: an operator reads them against their template.

Jinja words its errors for programmers ("'dict object' has no attribute
'titel'", "Unexpected end of template. Jinja was looking for the following
tags: ...", "do_replace() missing 2 required positional arguments"). Each
family an operator meets is said here in terms of the template as written,
on one line: a token expected or unexpected (`( is not closed: add ) before
}`, `a value is missing before %}`), an unknown tag, filter or test (with the
closest name), a sandbox refusal (`deadline.title.__class__: not allowed in a
template`), a filter or test given the wrong arguments (`filter replace:
missing arguments old and new`), a value of the wrong type, an unknown
variable (`unknown variable deadline.titel (did you mean deadline.title?)`).
Only the template's own names are quoted; where the template came from a
NOTIFIER_* variable, notifier.config.located hides every word of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment

#: Jinja's names for tokens, as the operator writes them.
_TOKENS = {
    "end of print statement": "}}", "begin of print statement": "{{",
    "end of statement block": "%}", "begin of statement block": "{%",
    "end of comment": "#}", "begin of comment": "{#", "end of template": "the end",
    "name": "a name", "string": "a string", "integer": "a number", "float": "a number",
}
_OPENS = {"}}": "{{", "%}": "{%", "#}": "{#", ")": "(", "]": "[", "}": "{"}


def _tok(described: str) -> str:
    return _TOKENS.get(described, described)


def _unexpected(tok: str) -> str:
    if tok in ("}}", "%}", "the end"):
        return f"something is missing before {tok}"
    return "a single }: close {{ ... }} with }}" if tok == "}" else f"unexpected {tok}"


def _not_closed(tok: str, before: str | None = None) -> str:
    where = f" before {before}" if before else ""
    return f"{_OPENS.get(tok, tok)} is not closed: add {tok}{where}"


def _char(c: str) -> str:
    if c in ("'", '"'):
        return f"a string is not closed: add its closing {c}"
    return f"unexpected character {c}"


_SYNTAX: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = tuple(
    (re.compile(p), w) for p, w in (
        (r"Unexpected end of template\. .*The innermost block that needs to be closed is "
         r"'(\w+)'\.$", lambda b: f"{{% {b} %}} is not closed: add {{% end{b} %}}"),
        (r"Encountered unknown tag '(\w+)'\. You probably made a nesting mistake\. .* "
         r"The innermost block that needs to be closed is '(\w+)'\.$",
         lambda t, b: f"{{% {t} %}} inside the open {{% {b} %}}: close it first with "
                      f"{{% end{b} %}}"),
        (r"Encountered unknown tag '(\w+)'\. .*The innermost block that needs to be closed "
         r"is '(\w+)'\.$",
         lambda t, b: f"unknown tag {{% {t} %}} inside {{% {b} %}} (it ends with {{% end{b} %}})"),
        (r"Encountered unknown tag '(\w+)'\.", lambda t:
         f"unknown tag {{% {t} %}}" + (" (no open block it ends)" if t.startswith("end")
                                       or t in ("else", "elif") else "")),
        (r"unexpected end of template, expected '(.+)'\.$", lambda t: _not_closed(_tok(t))),
        (r"unexpected '(.+)', expected '(.+)'$", lambda a, b: _not_closed(_tok(b), _tok(a))),
        (r"unexpected '(.+)'$", lambda t: _unexpected(_tok(t))),
        (r"unexpected char (['\"])(.+)\1 at \d+$", lambda _, c: _char(c)),
        (r"Expected an expression, got 'end of print statement'$",
         lambda: "nothing between {{ and }}: write a variable, e.g. {{ deadline.title }}"),
        (r"Expected an expression, got '(.+)'$",
         lambda t: f"a value is missing before {_tok(t)}"),
        (r"expected token '(.+)', got '(.+)'$",
         lambda a, b: f"expected {_tok(a)} before {_tok(b)}"),
        (r"Missing end of comment tag$", lambda: "{# is not closed: add #}"),
        (r"Missing end of raw directive$", lambda: "{% raw %} is not closed: add {% endraw %}"),
        (r"tag name expected$", lambda: "a tag name is missing after {%"),
        (r"expected name or number$", lambda: "a name is missing after a dot"),
        (r"expected subscript expression$", lambda: "an index is missing between [ and ]"),
        (r"invalid syntax for function call expression$",
         lambda: "arguments by name (a=1) come after the others"),
        (r"You cannot chain multiple tests with is$", lambda: "one test per is"),
        (r"block '(\w+)' defined twice$", lambda b: f"{{% block {b} %}} is defined twice"),
    ))
_NAMED = re.compile(r"No (filter|test) named '(\w+)'(?: found)?\.?$")
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'([^']+)' has no attribute '([^']+)'$")


def syntax_words(message: str, env: SandboxedEnvironment) -> str:
    """A syntax error's message in the product's words, on one line."""
    message = " ".join(message.split())
    m = _NAMED.match(message)
    if m is not None:
        kind, name = m.groups()
        return f"unknown {kind} {name}" + _near(name, env.filters if kind == "filter"
                                                else env.tests)
    for pattern, words in _SYNTAX:
        m = pattern.match(message)
        if m is not None:
            return words(*m.groups())
    return message.rstrip(".")


#: Python's words for a value's type, in the operator's.
_TYPES = {"str": "text", "int": "a whole number", "float": "a number", "NoneType": "nothing",
          "list": "a list", "tuple": "a list", "dict": "a table", "bool": "true/false",
          "datetime": "a time", "date": "a date", "timedelta": "a duration"}
_CALLS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), w) for p, w in (
    (r"(\w+)\(\) takes (?:from \d+ to )?\d+ positional arguments? but \d+ (?:were|was) given$",
     "too many arguments"),
    (r"(\w+)\(\) missing \d+ required (?:positional |keyword-only )?arguments?: (.+)$",
     "missing argument {}"),
    (r"(\w+)\(\) got an unexpected keyword argument '(\w+)'$", "no argument named {}"),
    (r"(\w+)\(\) got multiple values for argument '(\w+)'$", "argument {} given twice"),
))


def _type(name: str) -> str:
    return _TYPES.get(name, f"a {name}")


def _callee(func: str, env: SandboxedEnvironment, source: str) -> str:
    """The filter or test of Python function `func`, by the name the template uses."""
    found = [(kind, name) for kind, table in (("filter", env.filters), ("test", env.tests))
             for name, f in table.items()
             if getattr(f, "__name__", "").removeprefix("sync_") == func]
    used = [(k, n) for k, n in found if re.search(rf"(?<![\w.]){n}(?!\w)", source)]
    kind, name = max(used or found, key=lambda kn: len(kn[1]), default=("", ""))
    return f"{kind} {name}" if name else "a call"


def _call_words(message: str, env: SandboxedEnvironment, source: str) -> str | None:
    """`do_round() takes from 1 to 3 ...` as `filter round: too many arguments`."""
    for pattern, words in _CALLS:
        m = pattern.match(message)
        if m is None:
            continue
        func, *rest = m.groups()
        said = words.format(*(r.replace("'", "") for r in rest))
        if " and " in said:
            said = said.replace("argument ", "arguments ", 1)
        return f"{_callee(func.removeprefix('sync_'), env, source)}: {said}"
    return None


def error_words(exc: Exception, env: SandboxedEnvironment, source: str,
                ctx: Mapping[str, Any]) -> str:
    """Any error while rendering, in the product's words, on one line: a sandbox refusal,
    a filter or test given the wrong arguments, a value of the wrong type."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    if isinstance(exc, UndefinedError):
        return render_words(text, env, source, ctx)
    if isinstance(exc, SecurityError):
        return _sandbox_words(text, env, source)
    if isinstance(exc, TypeError):
        return _type_words(text, env, source)
    if isinstance(exc, TemplateError):
        return syntax_words(text, env)
    if isinstance(exc, OverflowError) and "MAX_RANGE" in text:
        return f"range() too long: at most {MAX_RANGE:,} items"
    return "division by zero" if isinstance(exc, ZeroDivisionError) else \
        f"cannot be rendered ({type(exc).__name__}: {text})"


def _sandbox_words(text: str, env: SandboxedEnvironment, source: str) -> str:
    m = re.match(r"access to attribute '(\w+)' of '(\w+)' object is unsafe\.?$", text)
    if m is None:
        return "not allowed in a template: calls to internals are refused"
    chain = _chain_to(env.parse(source), m.group(1))
    name = ".".join(chain) if chain else m.group(1)
    return f"{name}: not allowed in a template (internal attributes are refused)"


_TYPE_ERRORS: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = tuple(
    (re.compile(p), w) for p, w in (
        (r"no loader for this environment specified$",
         lambda: "{% extends %}, {% include %} and {% import %} are not available: "
                 "each template stands alone"),
        (r"'(.+)' not supported between instances of '(\w+)' and '(\w+)'$",
         lambda op, a, b: f"cannot compare {_type(a)} with {_type(b)} ({op})"),
        (r"unsupported operand type\(s\) for (.+): '(\w+)' and '(\w+)'$",
         lambda op, a, b: f"cannot compute {_type(a)} {op} {_type(b)}"),
        (r"'(\w+)' object is not callable$",
         lambda a: f"{_type(a)} is not something to call: drop the ()"),
        (r'can only concatenate (\w+) \(not "(\w+)"\) to \w+$',
         lambda a, b: f"cannot add {_type(b)} to {_type(a)} with +: ~ joins any values as text"),
        (r"type (\w+) doesn't define __round__ method$",
         lambda a: f"{_type(a)} cannot be rounded"),
        (r"macro '(\w+)' takes not more than (\d+) argument\(s\)$",
         lambda m, n: f"macro {m} takes at most {n} argument{'' if n == '1' else 's'}"),
    ))


def _type_words(text: str, env: SandboxedEnvironment, source: str) -> str:
    said = _call_words(text, env, source)
    if said is not None:
        return said
    for pattern, words in _TYPE_ERRORS:
        m = pattern.match(text)
        if m is not None:
            return words(*m.groups())
    return f"a value of the wrong type ({text})"


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

"""pydantic's validation errors in the product's words, by the error's `type`.

pydantic words its errors for programmers ("Field required", "String should
match pattern '^[a-z0-9]...'"); an operator reads them against a TOML file.
Each error type we meet has one message here; its English text is never
parsed (it changes between pydantic versions), and the input is never quoted
(it may be a secret). An unknown key names the closest key the schema knows
at that level (schema.py is the one list of them).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from notifier.config.schema import ID_PATTERN, ONE_LINE_PATTERN, Settings

Loc = tuple[str | int, ...]

_PATTERNS = {
    ID_PATTERN: "must be lowercase letters, digits, - and _, starting with a letter or digit"
                " (at most 64)",
    ONE_LINE_PATTERN: "must be one line",
}
_FIXED = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string (in quotes)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list, in square brackets",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "string_too_short": "must not be empty",
}
_KEY = "[key]"
"""The last part of pydantic's location of a problem with a table's key, not its value."""
_NOUNS = {"deadlines": "every deadline", "extensions": "every extension"}


_WORDED: dict[str, Callable[[Loc, Mapping[str, Any], object], str]] = {
    "missing": lambda loc, _ctx, _input: f"missing: {_owner(loc[:-1])} needs `{loc[-1]}`",
    "extra_forbidden": lambda loc, _ctx, value: unknown(loc, value),
    "string_pattern_mismatch": lambda _loc, ctx, _input: _PATTERNS.get(
        str(ctx.get("pattern")), "is not in the expected form"),
    "literal_error": lambda loc, ctx, value: ("unknown name; " if loc[-1] == _KEY else "")
        + f"must be one of {ctx.get('expected')}" + _suggest(value, str(ctx.get("expected", ""))),
    "greater_than_equal": lambda _loc, ctx, _input: f"must be at least {ctx.get('ge')}",
    "less_than_equal": lambda _loc, ctx, _input: f"must be at most {ctx.get('le')}",
    "string_too_long": lambda _loc, ctx, _input:
        f"must be at most {ctx.get('max_length')} characters",
}


def _suggest(value: object, expected: str) -> str:
    """`; did you mean 'reminder'?` for a name close to one of pydantic's `expected`
    (`'reminder', 'due' or 'test'`: the schema's Literal names, quoted)."""
    import difflib  # noqa: PLC0415 - only for a file with a problem

    if not isinstance(value, str):
        return ""
    names = re.findall(r"'([^']*)'", expected)
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""  # a known name: never hidden


def location(error: Mapping[str, Any]) -> Loc:
    """Where the problem is: a table's key itself for a bad key (`templates.reminderz`)."""
    loc: Loc = tuple(error["loc"])
    return loc[:-1] if loc and loc[-1] == _KEY else loc


def about_key(error: Mapping[str, Any]) -> bool:
    """Whether the problem is the key itself (unknown, or a bad name), not its value."""
    return error["type"] == "extra_forbidden" or tuple(error["loc"])[-1:] == (_KEY,)


def message(error: Mapping[str, Any]) -> str:
    """The product's one-line message for one of pydantic's `errors()`."""
    kind = str(error["type"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _FIXED:
        return _FIXED[kind]
    if kind in _WORDED:
        return _WORDED[kind](tuple(error["loc"]), ctx, error.get("input"))
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # our own validators' words (schema.py)
    # A type not met before: pydantic's words, which quote no input (hide_input_in_errors).
    return str(error["msg"])


def _owner(loc: Loc) -> str:
    """Who needs the missing key: `every deadline`, `[digest]`."""
    if loc and isinstance(loc[-1], int) and len(loc) > 1 and str(loc[-2]) in _NOUNS:
        return _NOUNS[str(loc[-2])]
    return f"[{'.'.join(str(p) for p in loc)}]" if loc else "the file"


def unknown(loc: Loc, value: object) -> str:
    """`unknown key` (or table), with the closest known key at that level."""
    import difflib  # noqa: PLC0415 - only for a file with an unknown key

    table = isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value))
    what = "unknown table" if table else "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1]), n=1, cutoff=0.6)
    return f"{what}; did you mean `{close[0]}`?" if close else what


def known_keys(loc: Loc) -> list[str]:
    """The keys the schema knows in the table at `loc` (none where keys are free)."""
    annotation = _at(loc)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def list_at(loc: Loc) -> bool:
    """Whether the setting at `loc` is a list."""
    return get_origin(_at(loc)) is list


def _at(loc: Loc) -> Any:
    """The schema's type at `loc` (a model, list or dict where it holds one), or None."""
    annotation: Any = Settings
    for part in loc:
        annotation = _model_or_container(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
        else:
            return None
    return _model_or_container(annotation)


def _model_or_container(annotation: Any) -> Any:
    """`annotation` without Annotated[...] and Optional: a model, list or dict if it holds one."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            inner = _model_or_container(arg)
            if get_origin(inner) in (list, dict) or (
                    isinstance(inner, type) and issubclass(inner, BaseModel)):
                return inner
    return annotation

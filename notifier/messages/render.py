"""Rendering: templates (built-in defaults plus overrides) compiled in a sandbox, into messages.

Templates are rendered in a sandbox (`jinja2.sandbox.SandboxedEnvironment`,
`StrictUndefined`, no autoescaping); the built-ins are in
`notifier.messages.templates`, the variables they see in
`notifier.messages.context`. Pure: no clock is read.

A rendered title is always one line (runs of whitespace, newlines included,
become one space). In a body, trailing spaces are dropped, runs of blank lines
become one, and leading/trailing blank lines are removed; an empty body falls
back to the title. A misspelt variable, a forbidden attribute (the sandbox) or
any other error while rendering raises `TemplateProblem`, never a raw Jinja
exception; `notifier.messages.checks` finds these before the daemon runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from notifier.messages.context import (
    Context,
    notification_context,
    summary_context,
    test_context,
)
from notifier.messages.jinjawords import error_words, syntax_words
from notifier.messages.templates import (
    DEFAULT_TEMPLATES,
    TEMPLATE_KINDS,
    KindName,
    Override,
    Overrides,
    Part,
    TemplateSource,
)
from notifier.schedule.model import Notification, Schedule


@dataclass(frozen=True)
class Message:
    title: str
    body: str


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered, located by kind and part."""

    def __init__(self, kind: str, part: Part, message: str, lineno: int | None = None) -> None:
        self.kind = kind
        self.part: Part = part
        self.message = message
        self.lineno = lineno
        super().__init__(kind, part, message, lineno)

    def __str__(self) -> str:
        where = f"templates.{self.kind}.{self.part}"
        if self.lineno is not None:
            where += f": line {self.lineno}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return (f"TemplateProblem({self.kind!r}, {self.part!r}, {self.message!r}, "
                f"{self.lineno!r})")


def _tidy_title(text: str) -> str:
    return " ".join(text.split())


def _tidy_body(text: str) -> str:
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()  # noqa: PLW2901 - normalising in place reads best
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)




def _lineno(exc: BaseException) -> int | None:
    """The template line of a render error, from Jinja's rewritten traceback."""
    line = getattr(exc, "lineno", None) if isinstance(exc, TemplateSyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) else None


def _environment() -> SandboxedEnvironment:
    # Plain-text messages, never HTML: no autoescaping.
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
    )


_BUILTIN_LOCK = threading.Lock()
_BUILTIN: dict[tuple[str, Part], Template] = {}
"""The built-in templates, compiled once per process (see `Renderer`)."""


def _from_string(env: SandboxedEnvironment, source: str) -> Template:
    template = env.from_string(source)
    # Jinja keeps a template's globals as a ChainMap over the environment's and
    # copies them, key by key in Python, into every render's context: a third of
    # a title's render. Neither ever changes once compiled: a plain dict is the same.
    template.globals = dict(template.globals)
    return template


def _parts(source: TemplateSource) -> tuple[tuple[Part, str | None], ...]:
    return (("title", source.title), ("body", source.body))


def _builtins() -> dict[tuple[str, Part], Template]:
    with _BUILTIN_LOCK:
        if not _BUILTIN:
            env = _environment()
            compiled: dict[tuple[str, Part], Template] = {
                (kind, part): _from_string(env, source)
                for kind, source_pair in DEFAULT_TEMPLATES.items()
                for part, source in _parts(source_pair)
                if source is not None
            }
            _BUILTIN.update(compiled)
        return _BUILTIN


def syntax_problem(kind: str, part: Part, source: str) -> TemplateProblem | None:
    """The syntax error of one template compiled alone, if it has one (`check` reports
    every template's, not only the first's)."""
    try:
        _from_string(_environment(), source)
    except TemplateSyntaxError as e:
        return TemplateProblem(kind, part, syntax_words(e.message or "syntax error",
                                                        _environment()), e.lineno)
    return None


class Renderer:
    """Compiled templates (built-in defaults + overrides) and the contexts they see.

    The built-in templates are compiled once per process, all of them, when the
    first Renderer is made (about 60 ms): the daemon makes its Renderer before
    READY=1, so its first message is not held up by compiling (13 ms for a
    `due`). `notifier check` makes no Renderer unless the file overrides a
    template. Overrides are compiled per Renderer, when it is made.
    """

    def __init__(self, overrides: Overrides[KindName] | None = None) -> None:
        self._env = _environment()
        given: dict[str, Override] = {str(k): v for k, v in (overrides or {}).items()}
        for kind in given:
            if kind not in TEMPLATE_KINDS:
                raise TemplateProblem(
                    kind, "title",
                    f"unknown template kind; expected one of {', '.join(TEMPLATE_KINDS)}",
                )
        self.sources: dict[tuple[str, Part], str] = {}
        self._names: dict[tuple[str, tuple[Part, ...]], frozenset[str]] = {}
        builtins = _builtins()
        self._compiled: dict[tuple[str, Part], Template] = {}
        for kind in TEMPLATE_KINDS:
            default = DEFAULT_TEMPLATES[kind]
            override = given.get(kind, TemplateSource())
            parts: tuple[tuple[Part, str | None, str | None], ...] = (
                ("title", override.title, default.title),
                ("body", override.body, default.body),
            )
            for part, mine, builtin in parts:
                source = mine if mine is not None else builtin
                assert source is not None  # every built-in part exists
                self.sources[kind, part] = source
                # Overrides are compiled now so a syntax error surfaces at load.
                if mine is not None:
                    self._compile(kind, part)
                elif (kind, part) in builtins:
                    self._compiled[kind, part] = builtins[kind, part]

    def _compile(self, kind: str, part: Part) -> Template:
        compiled = self._compiled.get((kind, part))
        if compiled is None:
            try:
                compiled = _from_string(self._env, self.sources[kind, part])
            except TemplateSyntaxError as e:
                raise TemplateProblem(kind, part, syntax_words(e.message or "syntax error",
                                                               self._env), e.lineno) from None
            self._compiled[kind, part] = compiled
        return compiled

    # -- rendering -------------------------------------------------------

    def render_part(self, kind: str, part: Part, ctx: Context) -> str:
        """One part of `kind`'s template rendered with `ctx`, tidied."""
        template = self._compile(kind, part)
        try:
            text = template.render(ctx)
        except Exception as e:  # noqa: BLE001 - a template can raise anything; report it
            said = error_words(e, self._env, self.sources[kind, part], ctx)
            raise TemplateProblem(kind, part, said, _lineno(e)) from None
        return _tidy_title(text) if part == "title" else _tidy_body(text)

    def names(self, kind: str, parts: tuple[Part, ...] = ("title", "body")) -> frozenset[str]:
        """The context variables that the `parts` of `kind`'s templates read."""
        found = self._names.get((kind, parts))
        if found is None:
            names: set[str] = set()
            for part in parts:
                self._compile(kind, part)  # a syntax error is a TemplateProblem, as when rendering
                names |= meta.find_undeclared_variables(self._env.parse(self.sources[kind, part]))
            found = self._names[kind, parts] = frozenset(names)
        return found

    def _message(self, kind: str, ctx: Context) -> Message:
        title = self.render_part(kind, "title", ctx)
        body = self.render_part(kind, "body", ctx)
        return Message(title=title, body=body or title)

    def render(self, n: Notification, schedule: Schedule, *, sent_at: datetime) -> Message:
        """The message for `n`, sent at `sent_at` (late when more than 60 s after `n.at`)."""
        needs = self.names(n.kind)
        ctx = notification_context(n, schedule, sent_at=sent_at, needs=needs)
        return self._message(n.kind, ctx)

    def render_title(self, n: Notification, schedule: Schedule, *, sent_at: datetime) -> str:
        """Only the title of `render`'s message (what a plan shows)."""
        needs = self.names(n.kind, ("title",))
        ctx = notification_context(n, schedule, sent_at=sent_at, needs=needs)
        return self.render_part(n.kind, "title", ctx)

    def render_summary(
        self,
        skipped: Sequence[Notification],
        sent_late: Sequence[Notification],
        schedule: Schedule,
        *,
        now: datetime,
        cause: Literal["down", "behind"] = "down",
    ) -> Message:
        """The one catch-up summary after downtime ("down") or a suspend/clock jump ("behind")."""
        return self._message("summary", summary_context(skipped, sent_late, schedule,
                                                        now=now, cause=cause))

    def render_test(self, channel_name: str, *, now: datetime, zone: ZoneInfo) -> Message:
        """The `test` message, its time in `zone` (the default zone)."""
        return self._message("test", test_context(channel_name, now=now, zone=zone))

"""Turn planned notifications into messages (title + body). Pure: no clock is read.

Messages come from Jinja2 templates rendered in a sandbox
(`jinja2.sandbox.SandboxedEnvironment`, `StrictUndefined`, no autoescaping).
Every kind has a built-in default; `[templates.KIND]` in the config overrides
its `title`, its `body`, or both. Template kinds are the notification kinds
(`reminder`, `rescheduled`, `due`, `overdue`, `completed`, `cancelled`,
`digest`) plus `summary` (the catch-up summary after downtime) and `test`
(`notifier send-test`).

A rendered title is always one line (runs of whitespace, newlines included,
become one space). In a body, trailing spaces are dropped, runs of blank lines
become one, and leading/trailing blank lines are removed; an empty body falls
back to the title. A misspelt variable, a forbidden attribute (the sandbox) or
any other error while rendering raises `TemplateProblem`, never a raw Jinja
exception; `Renderer.check` finds these before the daemon runs.

Text conventions: dates and times are shown in the deadline's zone, in
English whatever the locale ("Wed 25 Nov", "Wed 25 Nov 17:00"); the year is
added when it differs from the year of the message. `due_text` names the zone
by its city, the last part of its IANA name ("Wed 25 Nov, Baku"; "UTC" for
UTC), so a message read anywhere is unambiguous. Durations are coarse: the two
largest units ("2 days 4 h", "3 h 20 min", "45 s"); days are calendar days in
the deadline's zone. For a date due ("by the end of D"), time left before the
day is counted in days ("1 day"), and on the day itself the message says "due
today" (unless the reminder offset has an hour/minute part, then it counts the
exact time).

Context of the notification kinds (every variable is defined for every kind;
those that do not apply are None):

- `kind`: the notification kind.
- `key`: the notification's stable key.
- `deadline`: dict with `id`, `title`, `notes`, `url`, `tags` (list), `zone`
  (IANA name), `city`, `channels` (list) and `state` at the planned time
  ("open", "overdue", "completed", "cancelled", "not yet announced").
  None for `digest`.
- `due`: the due this message refers to, an aware datetime in the deadline's zone.
- `due_text`: "Wed 25 Nov, Baku" (date due) or "Wed 25 Nov 17:00, Baku".
- `due_local_text`: the same without the city: "Wed 25 Nov".
- `due_long_text`: "by the end of Wed 25 Nov, Baku" for a date due, else `due_text`.
- `due_is_date`: the due was written as a date ("by the end of that day").
- `due_today`: a date due whose day is today (in the deadline's zone).
- `time_left`: "1 day", "3 h", "2 days 4 h"; None once the due is reached.
- `overdue_by`: "2 days"; None unless the due has passed.
- `status_text`: "due in 1 day", "due today", "due now" or "overdue by 2 days".
- `when_text`: the same without "due": "in 1 day", "today", "now", "overdue by 2 days".
- `original_due`, `original_due_text`: the first due of the deadline.
- `history`: one dict per extension known at the planned time, oldest first:
  `index`, `announced` (datetime or None), `announced_text` ("15 Nov" or None),
  `from_due`, `to_due`, `from_text`, `to_text` ("15 Nov", "15 Nov 17:00"),
  `delta_text` ("+10 days", "-2 days", "+2 h 30 min"), `verb` ("extended",
  "brought forward"), `summary` ("extended by 10 days, from 15 Nov to
  25 Nov"), `reason`, `source`, and `text`, the whole line: "extended on
  15 Nov from 15 Nov to 25 Nov (+10 days): reason; source".
- `history_text`: the `text` of each history entry, one per line ("" if none).
- `extension`: for `rescheduled`, the history dict of this extension.
- `closure`: for `completed`/`cancelled`, dict with `kind`, `at`, `at_text`, `note`.
- `offset`: the reminder offset as configured ("1d"), `seq`: the overdue
  repetition (1, 2, ...) or the extension number of a `rescheduled` message.
- `at`, `at_text`: when the message was planned; `sent_at`, `sent_at_text`:
  when it is sent.
- `late_by`: "3 h" when sent more than 60 s after `at`, else None. When late,
  `time_left`, `overdue_by`, `due_today` and `status_text` are as of `sent_at`.
- `open_deadlines`, `open_count` (`digest` only): each deadline that is open at
  the planned time, soonest due first, as a dict with `id`, `title`, `notes`,
  `url`, `tags`, `zone`, `state` ("open" or "overdue"), `due`, `due_text`,
  `due_local_text`, `due_long_text`, `due_is_date`, `due_today`, `time_left`,
  `overdue_by`, `status_text`, `when_text`, `original_due_text`, `history`,
  `history_text`.

Context of `summary`: `kind`, `cause` ("down" after downtime, "behind" after a
suspend or clock jump), `now`, `now_text`, `skipped` and `sent_late`
(lists of dicts with `at`, `at_text`, `kind`, `deadline` (id or None),
`title`, `offset`, `seq`, `key`, `label` ("reminder 1d") and `text`, the list
line), `skipped_text`, `sent_late_text` (those lines), `skipped_count`,
`sent_late_count`, `counts_text` ("5 notifications skipped, 2 sent late").

Context of `test`: `kind`, `channel` (the channel name), `now`, `now_text`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from notifier.messages.wording import (
    Fmt,
    calendar_split,
    days_text,
    duration_text,
    move_verb,
    plural,
    span_text,
    zone_city,
    zone_name,
)
from notifier.schedule.model import KINDS, Closure, Deadline, Notification, Schedule, Stage

Part = Literal["title", "body"]
TEMPLATE_KINDS: tuple[str, ...] = (*KINDS, "summary", "test")
LATE_AFTER = timedelta(seconds=60)
"""A message sent more than this after its planned time says it is late."""
_EMPTY_TITLE = "renders to an empty title"

Context = dict[str, Any]


@dataclass(frozen=True)
class Message:
    title: str
    body: str


@dataclass(frozen=True)
class TemplateSource:
    """One `[templates.KIND]` table: None keeps the built-in default of that part."""

    title: str | None = None
    body: str | None = None


Templates = Mapping[str, TemplateSource]


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


# --------------------------------------------------------------------------
# Built-in templates
# --------------------------------------------------------------------------

_HISTORY = (
    "{% if history %}History (originally due {{ original_due_text }}):\n"
    "{{ history_text }}\n"
    "{% endif %}"
)
_DETAILS = (
    "{% if deadline.notes %}Notes: {{ deadline.notes }}\n{% endif %}"
    "{% if deadline.url %}Link: {{ deadline.url }}\n{% endif %}"
    "{% if deadline.tags %}Tags: {{ deadline.tags|join(', ') }}\n{% endif %}"
)
_LATE = "{% if late_by %}Sent late by {{ late_by }} (planned for {{ at_text }}).\n{% endif %}"

DEFAULT_TEMPLATES: Mapping[str, TemplateSource] = {
    "reminder": TemplateSource(
        title="{{ deadline.title }}: {{ status_text }} ({{ due_text }})",
        body=(
            "{{ deadline.title }} {% if overdue_by %}was{% else %}is{% endif %} due"
            " {{ due_long_text }} ({{ when_text }}).\n"
            + _HISTORY + _DETAILS + _LATE
        ),
    ),
    "rescheduled": TemplateSource(
        title="{{ deadline.title }}: {{ extension.summary }}",
        body=(
            "{{ extension.text }}\n"
            "Now due {{ due_long_text }}"
            " ({{ when_text }}); originally due {{ original_due_text }}.\n"
            "{% if history|length > 1 %}History:\n{{ history_text }}\n{% endif %}"
            + _DETAILS + _LATE
        ),
    ),
    "due": TemplateSource(
        title=(
            "{{ deadline.title }}: "
            "{% if late_by %}was due {{ due_text }}{% else %}due now ({{ due_text }}){% endif %}"
        ),
        body=(
            "{{ deadline.title }} {% if late_by %}was{% else %}is now{% endif %}"
            " due: {{ due_long_text }}.\n"
            + _HISTORY + _DETAILS + _LATE
        ),
    ),
    "overdue": TemplateSource(
        title="{{ deadline.title }}: {{ status_text }}",
        body=(
            "{{ deadline.title }} is {{ status_text }}: it was due {{ due_long_text }}.\n"
            + _HISTORY + _DETAILS + _LATE
        ),
    ),
    "completed": TemplateSource(
        title="{{ deadline.title }}: completed",
        body=(
            "{{ deadline.title }} was completed on {{ closure.at_text }}.\n"
            "{% if closure.note %}Note: {{ closure.note }}\n{% endif %}"
            "It was due {{ due_long_text }}.\n"
            + _HISTORY + _DETAILS + _LATE
        ),
    ),
    "cancelled": TemplateSource(
        title="{{ deadline.title }}: cancelled",
        body=(
            "{{ deadline.title }} was cancelled on {{ closure.at_text }}.\n"
            "{% if closure.note %}Note: {{ closure.note }}\n{% endif %}"
            "It was due {{ due_long_text }}.\n"
            + _HISTORY + _DETAILS + _LATE
        ),
    ),
    "digest": TemplateSource(
        title=(
            "notifier digest: "
            "{% if open_count == 0 %}no open deadlines"
            "{% elif open_count == 1 %}1 open deadline"
            "{% else %}{{ open_count }} open deadlines{% endif %}"
        ),
        body=(
            "{% for d in open_deadlines %}"
            "- {{ d.title }}: {{ d.state }}, due {{ d.due_text }} "
            "({{ d.when_text }})\n"
            "{% for h in d.history %}    {{ h.text }}\n{% endfor %}"
            "{% else %}No open deadlines.\n{% endfor %}"
            "As of {{ at_text }}.\n"
            + _LATE
        ),
    ),
    "summary": TemplateSource(
        title=(
            "notifier {% if cause == 'down' %}was down{% else %}fell behind"
            " (suspend or clock jump){% endif %}: {{ counts_text }}"
        ),
        body=(
            "{% if sent_late %}Sent late (the latest missed notification of each deadline):\n"
            "{{ sent_late_text }}\n{% endif %}"
            "{% if skipped %}Skipped (not sent):\n{{ skipped_text }}\n{% endif %}"
            "Caught up at {{ now_text }}.\n"
        ),
    ),
    "test": TemplateSource(
        title="notifier test message",
        body=(
            "This is a test message from notifier for channel \"{{ channel }}\","
            " sent {{ now_text }}.\n"
            "If you can read it, delivery through this channel works.\n"
        ),
    ),
}


# --------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------

_PURE_DAYS = re.compile(r"^\s*(?:(?:\d+[wd])+|P(?:\d+W)?(?:\d+D)?)\s*$", re.IGNORECASE)


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


# --------------------------------------------------------------------------
# Deadline facts
# --------------------------------------------------------------------------


def state_at(d: Deadline, t: datetime) -> str:
    """"open", "overdue", "completed", "cancelled" or "not yet announced" at t."""
    if d.closure is not None and d.closed_at(t):
        return d.closure.kind
    if d.announced is not None and d.announced > t:
        return "not yet announced"
    return "overdue" if t > d.stages[d.stage_at(t)].due else "open"


def _change(old: Stage, new: Stage, fmt: Fmt) -> tuple[str, str, str]:
    """(verb, delta text, magnitude) of a move from `old` to `new`."""
    verb = move_verb(old.due, new.due)
    if verb == "rescheduled":
        return verb, "no change", "nothing"
    sign = "+" if new.due > old.due else "-"
    days: int | None = None
    if old.day is not None and new.day is not None and fmt.is_date(old) and fmt.is_date(new):
        days = (new.day - old.day).days
    else:
        lo, ln = fmt.local(old.due), fmt.local(new.due)
        if lo.time() == ln.time():
            days = (ln.date() - lo.date()).days
    exact = new.due.astimezone(UTC) - old.due.astimezone(UTC)
    magnitude = days_text(abs(days)) if days else duration_text(exact, precise=True)
    return verb, f"{sign}{magnitude}", magnitude


def _history(d: Deadline, upto: datetime, fmt: Fmt) -> list[Context]:
    """Each extension announced at or before `upto`, compared with the due before it."""
    out: list[Context] = []
    prev = d.stages[0]
    for index, stage in enumerate(d.stages[1:], start=1):
        if stage.announced is not None and stage.announced > upto:
            continue
        verb, delta, magnitude = _change(prev, stage, fmt)
        announced_text = (fmt.day_short(fmt.local(stage.announced).date())
                          if stage.announced is not None else None)
        from_text, to_text = fmt.stage_short(prev), fmt.stage_short(stage)
        text = verb
        if announced_text is not None:
            text += f" on {announced_text}"
        text += f" from {from_text} to {to_text} ({delta})"
        notes = [part for part in (stage.reason, stage.source) if part]
        if notes:
            text += ": " + "; ".join(notes)
        out.append({
            "index": index,
            "announced": fmt.local(stage.announced) if stage.announced is not None else None,
            "announced_text": announced_text,
            "from_due": fmt.local(prev.due),
            "to_due": fmt.local(stage.due),
            "from_text": from_text,
            "to_text": to_text,
            "delta_text": delta,
            "verb": verb,
            "summary": f"{verb} by {magnitude}, from {from_text} to {to_text}",
            "reason": stage.reason,
            "source": stage.source,
            "text": text,
        })
        prev = stage
    return out


def _timing(stage: Stage, ref: datetime, fmt: Fmt, offset: str | None) -> Context:
    """time_left / due_today / overdue_by / status_text of `stage` as seen at `ref`."""
    zone = fmt.zone
    time_left: str | None = None
    overdue_by: str | None = None
    due_today = False
    if ref > stage.due:
        overdue_by = span_text(*calendar_split(stage.due, ref, zone))
        when = f"overdue by {overdue_by}"
        status = when
    elif ref == stage.due:
        when, status = "now", "due now"
    else:
        days = 0
        if stage.day is not None and (offset is None or _PURE_DAYS.match(offset) is not None) \
                and fmt.is_date(stage):
            days = (stage.day - fmt.local(ref).date()).days
            due_today = days < 1
        # Counted in days before a date due's day (no exact split needed), else exactly.
        time_left = days_text(days) if days >= 1 \
            else span_text(*calendar_split(ref, stage.due, zone))
        when = "today" if due_today else f"in {time_left}"
        status = f"due {when}"
    return {"time_left": time_left, "overdue_by": overdue_by, "due_today": due_today,
            "status_text": status, "when_text": when}


def _due_facts(stage: Stage, fmt: Fmt) -> Context:
    local_text = fmt.stage_long(stage)
    text = f"{local_text}, {fmt.city}"
    is_date = fmt.is_date(stage)
    return {
        "due": fmt.local(stage.due),
        "due_text": text,
        "due_local_text": local_text,
        "due_long_text": f"by the end of {text}" if is_date else text,
        "due_is_date": is_date,
    }


def _stage_index(d: Deadline, n: Notification) -> int:
    """The stage `n` refers to: by extension number, then by due, else the effective one."""
    if n.kind == "rescheduled" and n.seq is not None and 0 < n.seq < len(d.stages) \
            and (n.due is None or d.stages[n.seq].due == n.due):
        return n.seq
    effective = d.stage_at(n.at)
    if n.due is None or d.stages[effective].due == n.due:
        return effective
    matches = [i for i, s in enumerate(d.stages) if s.due == n.due]
    if not matches:
        return effective
    known = [i for i in matches if _known_at(d.stages[i], n.at)]
    return (known or matches)[-1]


def _known_at(stage: Stage, t: datetime) -> bool:
    return stage.announced is None or stage.announced <= t


def _stand_in(n: Notification, schedule: Schedule) -> Deadline:
    """A deadline for a notification whose deadline is no longer in the schedule."""
    return Deadline(
        id=n.deadline or "", title=n.title, zone=schedule.zone,
        stages=(Stage(due=n.due or n.at, day=None, announced=None),),
        reminders=(), channels=n.channels, remind_at=time(9),
    )


# The context's variables computed together (`Renderer.context` with `needs`).
_OPEN_NAMES = frozenset({"open_deadlines", "open_count"})
_FACT_NAMES = frozenset({"due", "due_text", "due_local_text", "due_long_text", "due_is_date",
                         "original_due", "original_due_text"})
_TIMING_NAMES = frozenset({"time_left", "overdue_by", "due_today", "status_text", "when_text"})
_HISTORY_NAMES = frozenset({"history", "history_text", "extension"})
_AT_NAMES = frozenset({"at", "at_text", "sent_at", "sent_at_text"})
_ALL_NAMES = _OPEN_NAMES | _FACT_NAMES | _TIMING_NAMES | _HISTORY_NAMES | _AT_NAMES | {
    "deadline", "closure"}


def _find(schedule: Schedule, deadline_id: str | None) -> Deadline | None:
    return schedule.deadline(deadline_id)


# --------------------------------------------------------------------------
# The renderer
# --------------------------------------------------------------------------


def _lineno(exc: BaseException) -> int | None:
    """The template line of a render error, from Jinja's rewritten traceback."""
    line = getattr(exc, "lineno", None) if isinstance(exc, TemplateSyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) else None


def _describe(exc: Exception) -> str:
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


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


class Renderer:
    """Compiled templates (built-in defaults + overrides) and the contexts they see.

    The built-in templates are compiled once per process, all of them, when the
    first Renderer is made (about 60 ms): the daemon makes its Renderer before
    READY=1, so its first message is not held up by compiling (13 ms for a
    `due`). `notifier check` makes no Renderer unless the file overrides a
    template. Overrides are compiled per Renderer, when it is made.
    """

    def __init__(self, overrides: Mapping[str, TemplateSource] | None = None) -> None:
        self._env = _environment()
        overrides = overrides or {}
        for kind in overrides:
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
            override = overrides.get(kind, TemplateSource())
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
                raise TemplateProblem(kind, part, e.message or "syntax error",
                                      e.lineno) from None
            self._compiled[kind, part] = compiled
        return compiled

    # -- rendering -------------------------------------------------------

    def _part(self, kind: str, part: Part, ctx: Context) -> str:
        template = self._compile(kind, part)
        try:
            text = template.render(ctx)
        except Exception as e:  # noqa: BLE001 - a template can raise anything; report it
            raise TemplateProblem(kind, part, _describe(e), _lineno(e)) from None
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
        title = self._part(kind, "title", ctx)
        body = self._part(kind, "body", ctx)
        return Message(title=title, body=body or title)

    def render(self, n: Notification, schedule: Schedule, *, sent_at: datetime) -> Message:
        """The message for `n`, sent at `sent_at` (late when more than 60 s after `n.at`)."""
        needs = self.names(n.kind)
        return self._message(n.kind, self.context(n, schedule, sent_at=sent_at, needs=needs))

    def render_title(self, n: Notification, schedule: Schedule, *, sent_at: datetime) -> str:
        """Only the title of `render`'s message (what a plan shows)."""
        needs = self.names(n.kind, ("title",))
        return self._part(n.kind, "title", self.context(n, schedule, sent_at=sent_at, needs=needs))

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
        return self._message("summary", self.summary_context(skipped, sent_late, schedule,
                                                             now=now, cause=cause))

    def render_test(self, channel_name: str, *, now: datetime) -> Message:
        return self._message("test", self.test_context(channel_name, now=now))

    # -- contexts --------------------------------------------------------

    def context(self, n: Notification, schedule: Schedule, *, sent_at: datetime,
                needs: AbstractSet[str] | None = None) -> Context:
        """The template variables for `n` (see the module docstring).

        With `needs` (the names a template reads, `Renderer.names`), the
        variables outside it are left empty: a plan renders 40,000 titles, and
        a built-in title reads one to three of the twenty-eight.
        """
        late = sent_at.astimezone(UTC) - n.at.astimezone(UTC)
        is_late = late > LATE_AFTER
        ref = sent_at if is_late else n.at
        if needs is None:
            needs = _ALL_NAMES
        ctx: Context = {
            "kind": n.kind, "key": n.key, "offset": n.offset, "seq": n.seq,
            "deadline": None, "due": None, "due_text": None, "due_local_text": None,
            "due_long_text": None, "due_is_date": False, "due_today": False,
            "time_left": None, "overdue_by": None, "status_text": None, "when_text": None,
            "original_due": None, "original_due_text": None,
            "history": [], "history_text": "", "extension": None, "closure": None,
            "open_deadlines": None, "open_count": None,
            "late_by": duration_text(late) if is_late else None,
            "at": None, "at_text": None, "sent_at": None, "sent_at_text": None,
        }
        if n.kind == "digest" or n.deadline is None:
            zone = schedule.digest.zone if schedule.digest is not None else schedule.zone
            fmt = Fmt(zone, n.at)
            if not needs.isdisjoint(_OPEN_NAMES):
                entries = _open_deadlines(schedule, n.at)
                ctx.update(open_deadlines=entries, open_count=len(entries))
        else:
            d = _find(schedule, n.deadline) or _stand_in(n, schedule)
            fmt = Fmt(d.zone, ref)
            index = _stage_index(d, n)
            stage = d.stages[index]
            if not needs.isdisjoint(_FACT_NAMES):
                facts = _due_facts(stage, fmt)
                ctx.update(facts)
                first = d.stages[0]
                ctx.update(original_due=fmt.local(first.due),
                           original_due_text=facts["due_text"] if first is stage
                           else fmt.stage_text(first))
            if not needs.isdisjoint(_TIMING_NAMES):
                ctx.update(_timing(stage, ref, fmt, n.offset))
            if "deadline" in needs:
                ctx["deadline"] = _deadline_dict(d, n.at)
            if not needs.isdisjoint(_HISTORY_NAMES):
                history = _history(d, n.at, fmt)
                ctx.update(history=history, history_text="\n".join(h["text"] for h in history))
                if n.kind == "rescheduled":
                    ctx["extension"] = next((h for h in history if h["index"] == index), None)
            if n.kind in ("completed", "cancelled") and "closure" in needs:
                closure = d.closure if d.closure is not None and d.closure.kind == n.kind \
                    else Closure(kind=n.kind, at=n.at)
                ctx["closure"] = {"kind": closure.kind, "at": fmt.local(closure.at),
                                  "at_text": fmt.instant(closure.at), "note": closure.note}
        if not needs.isdisjoint(_AT_NAMES):
            at_text = fmt.instant(n.at)
            ctx.update(at=fmt.local(n.at), at_text=at_text, sent_at=fmt.local(sent_at),
                       sent_at_text=at_text if sent_at == n.at else fmt.instant(sent_at))
        return ctx

    def summary_context(
        self,
        skipped: Sequence[Notification],
        sent_late: Sequence[Notification],
        schedule: Schedule,
        *,
        now: datetime,
        cause: Literal["down", "behind"] = "down",
    ) -> Context:
        fmt = Fmt(schedule.zone, now)
        skipped_items = [_summary_item(n, schedule, now) for n in skipped]
        late_items = [_summary_item(n, schedule, now) for n in sent_late]
        counts = []
        if skipped_items:
            counts.append(f"{plural(len(skipped_items), 'notification')} skipped")
        if late_items:
            late_count = (str(len(late_items)) if skipped_items
                          else plural(len(late_items), "notification"))
            counts.append(f"{late_count} sent late")
        return {
            "kind": "summary",
            "cause": cause,
            "now": fmt.local(now),
            "now_text": fmt.instant(now),
            "skipped": skipped_items,
            "sent_late": late_items,
            "skipped_text": "\n".join(i["text"] for i in skipped_items),
            "sent_late_text": "\n".join(i["text"] for i in late_items),
            "skipped_count": len(skipped_items),
            "sent_late_count": len(late_items),
            "counts_text": ", ".join(counts) if counts else "nothing was missed",
        }

    def test_context(self, channel_name: str, *, now: datetime) -> Context:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return {
            "kind": "test",
            "channel": channel_name,
            "now": aware,
            "now_text": aware.isoformat(sep=" ", timespec="seconds"),
        }

    # -- checking --------------------------------------------------------

    def check(
        self, schedule: Schedule, notifications: Iterable[Notification], *, now: datetime
    ) -> list[TemplateProblem]:
        """Render every template against samples; the problems found, one per (kind, part, message).

        Samples: `notifications` (e.g. the plan) on `schedule`, one of each
        distinct variant (kind, deadline, due, stage in effect; for digests the
        state of every deadline), each on time and late; one built-in sample of
        every kind (an extended, closed, overdue reference deadline with notes,
        link and history); a digest of `schedule` at `now`; summaries; a test
        message.
        """
        found: dict[tuple[str, str, str], TemplateProblem] = {}

        def attempt(kind: str, ctx: Context) -> None:
            for part in ("title", "body"):
                try:
                    text = self._part(kind, part, ctx)
                except TemplateProblem as problem:
                    found.setdefault((problem.kind, problem.part, problem.message), problem)
                    continue
                if part == "title" and not text:
                    found.setdefault((kind, "title", _EMPTY_TITLE),
                                     TemplateProblem(kind, "title", _EMPTY_TITLE))

        given = list(notifications)
        sample_schedule, samples = sample_notifications()
        distinct: dict[tuple[object, ...], Notification] = {}
        for n in given:
            distinct.setdefault(_variant(n, schedule), n)
        runs: list[tuple[Notification, Schedule]] = [(n, schedule) for n in distinct.values()]
        runs += [(n, sample_schedule) for n in samples]
        digest_now = Notification(at=now, kind="digest", deadline=None, due=None, offset=None,
                                  seq=None, channels=(), title="digest", key="digest/check")
        runs.append((digest_now, schedule))
        for n, sched in runs:
            for sent_at in (n.at, n.at + timedelta(hours=3)):
                attempt(n.kind, self.context(n, sched, sent_at=sent_at))
        late = [n for n in given if n.deadline is not None][:3] or samples[:2]
        attempt("summary", self.summary_context(given[:5], late, schedule, now=now))
        attempt("summary", self.summary_context(samples, samples[:1], sample_schedule, now=now))
        attempt("summary", self.summary_context([], samples[:1], sample_schedule, now=now))
        attempt("summary", self.summary_context([], [], schedule, now=now))
        attempt("test", self.test_context("example", now=now))
        return list(found.values())


def _variant(n: Notification, schedule: Schedule) -> tuple[object, ...]:
    """What can change which template branches run: notifications alike render alike."""
    if n.deadline is None:
        return (n.kind, tuple((d.id, state_at(d, n.at), d.stage_at(n.at))
                              for d in schedule.deadlines))
    d = _find(schedule, n.deadline)
    stage = d.stage_at(n.at) if d is not None else None
    by_days = n.offset is None or _PURE_DAYS.match(n.offset) is not None
    return (n.kind, n.deadline, n.due, stage, by_days)


def _deadline_dict(d: Deadline, t: datetime) -> Context:
    return {
        "id": d.id, "title": d.title, "notes": d.notes, "url": d.url, "tags": list(d.tags),
        "zone": zone_name(d.zone), "city": zone_city(d.zone), "channels": list(d.channels),
        "state": state_at(d, t),
    }


def _open_deadlines(schedule: Schedule, t: datetime) -> list[Context]:
    """Every deadline open (or overdue) at t, soonest effective due first."""
    rows: list[tuple[datetime, str, Context]] = []
    for d in schedule.deadlines:
        state = state_at(d, t)
        if state not in ("open", "overdue"):
            continue
        fmt = Fmt(d.zone, t)
        stage = d.stages[d.stage_at(t)]
        history = _history(d, t, fmt)
        entry: Context = {
            "id": d.id, "title": d.title, "notes": d.notes, "url": d.url,
            "tags": list(d.tags), "zone": zone_name(d.zone), "state": state,
            "original_due_text": fmt.stage_text(d.stages[0]),
            "history": history, "history_text": "\n".join(h["text"] for h in history),
        }
        entry.update(_due_facts(stage, fmt))
        entry.update(_timing(stage, t, fmt, None))
        rows.append((stage.due, d.title, entry))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [entry for _, _, entry in rows]


def _summary_item(n: Notification, schedule: Schedule, now: datetime) -> Context:
    d = _find(schedule, n.deadline)
    zone = d.zone if d is not None else (
        schedule.digest.zone if n.kind == "digest" and schedule.digest is not None
        else schedule.zone)
    fmt = Fmt(zone, now)
    title = d.title if d is not None else n.title
    if n.kind == "reminder" and n.offset:
        label = f"reminder {n.offset}"
    elif n.kind == "overdue" and n.seq is not None:
        label = f"overdue #{n.seq}"
    else:
        label = n.kind
    at_text = fmt.instant(n.at)
    text = f"- {at_text}: digest" if n.kind == "digest" else f"- {at_text}: {title} ({label})"
    return {
        "at": fmt.local(n.at), "at_text": at_text, "kind": n.kind, "deadline": n.deadline,
        "title": title, "offset": n.offset, "seq": n.seq, "key": n.key, "label": label,
        "text": text,
    }


# --------------------------------------------------------------------------
# Samples for `check`: the reference schedule, with every kind represented
# --------------------------------------------------------------------------


def sample_notifications() -> tuple[Schedule, list[Notification]]:
    """A small schedule and one notification of every kind on it (for `check`)."""
    baku = ZoneInfo("Asia/Baku")

    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    kalbajar = Deadline(
        id="kalbajar", title="Kalbajar withdrawal", zone=baku,
        stages=(
            Stage(due=utc("2020-11-15T20:00"), day=date(2020, 11, 15),
                  announced=utc("2020-11-09T21:00")),
            Stage(due=utc("2020-11-25T20:00"), day=date(2020, 11, 25),
                  announced=utc("2020-11-15T14:54"),
                  reason="more time requested citing damaged roads",
                  source="presidential assistant"),
        ),
        reminders=(), channels=("ops",), remind_at=time(9),
        notes="sample notes", url="https://example.org/kalbajar", tags=("handover",),
    )
    aghdam = replace(
        kalbajar, id="aghdam", title="Aghdam withdrawal", url=None, notes=None, tags=(),
        stages=(Stage(due=utc("2020-11-20T20:00"), day=date(2020, 11, 20),
                      announced=utc("2020-11-09T21:00")),),
        closure=Closure(kind="completed", at=utc("2020-11-20T06:00"), note="handed over"),
    )
    lachin = replace(
        kalbajar, id="lachin", title="Lachin withdrawal", notes=None,
        stages=(Stage(due=utc("2020-12-01T14:00"), day=None, announced=None),
                Stage(due=utc("2020-11-28T14:00"), day=None, announced=utc("2020-11-16T10:00"),
                      reason=None, source=None)),
        closure=Closure(kind="cancelled", at=utc("2020-11-29T10:00")),
    )
    schedule = Schedule(deadlines=(kalbajar, aghdam, lachin), zone=baku)
    ext, first = kalbajar.stages[1], kalbajar.stages[0]

    def make(at: datetime, kind: Any, d: Deadline | None, due: datetime | None, *,
             offset: str | None = None, seq: int | None = None) -> Notification:
        return Notification(at=at, kind=kind, deadline=d.id if d else None, due=due,
                            offset=offset, seq=seq, channels=("ops",),
                            title=d.title if d else "digest", key=f"sample/{kind}/{at}")

    samples = [
        make(utc("2020-11-14T05:00"), "reminder", kalbajar, first.due, offset="1d"),
        make(utc("2020-11-24T05:00"), "reminder", kalbajar, ext.due, offset="1d"),
        make(utc("2020-11-25T05:00"), "reminder", kalbajar, ext.due, offset="0d"),
        make(utc("2020-11-25T18:00"), "reminder", kalbajar, ext.due, offset="2h"),
        make(ext.announced or ext.due, "rescheduled", kalbajar, ext.due, seq=1),
        make(utc("2020-11-16T10:00"), "rescheduled", lachin, lachin.stages[1].due, seq=1),
        make(ext.due, "due", kalbajar, ext.due),
        make(utc("2020-11-26T20:00"), "overdue", kalbajar, ext.due, seq=1),
        make(utc("2020-11-20T06:00"), "completed", aghdam, aghdam.stages[0].due),
        make(utc("2020-11-29T10:00"), "cancelled", lachin, lachin.stages[1].due),
        make(utc("2020-11-20T04:00"), "digest", None, None),
        make(utc("2020-11-27T04:00"), "digest", None, None),
    ]
    return schedule, samples

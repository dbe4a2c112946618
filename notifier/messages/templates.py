"""The built-in templates: the default title and body of every template kind.

Messages come from Jinja2 templates (see `notifier.messages.render`). Every
kind has a built-in default here; `[templates.KIND]` in the config overrides
its `title`, its `body`, or both. Template kinds are the notification kinds
(`reminder`, `rescheduled`, `due`, `overdue`, `completed`, `cancelled`,
`digest`) plus `summary` (the catch-up summary after downtime) and `test`
(`notifier send-test`). The variables they read are listed in
`notifier.messages.context`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from notifier.schedule.model import KINDS

Part = Literal["title", "body"]
TEMPLATE_KINDS: tuple[str, ...] = (*KINDS, "summary", "test")


@dataclass(frozen=True)
class TemplateSource:
    """One `[templates.KIND]` table: None keeps the built-in default of that part."""

    title: str | None = None
    body: str | None = None


class Override(Protocol):
    """A `[templates.KIND]` table as a config holds it: a TemplateSource or the settings' own."""

    @property
    def title(self) -> str | None: ...

    @property
    def body(self) -> str | None: ...


KindName = TypeVar("KindName", bound=str)
Overrides = Mapping[KindName, Override]
"""A config's `[templates]` by kind (`str`, or the settings' Literal of kinds): what
`Renderer` takes."""

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
            "{% if overdue_count %}, {{ overdue_count }} overdue{% endif %}"
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


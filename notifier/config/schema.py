"""The configuration schema: pydantic-settings models, the single source of truth.

Every model forbids unknown keys. Time values keep their TOML type (offset
datetime, local datetime, date) instead of letting pydantic turn a date into a
naive midnight. Values are never echoed in errors (`hide_input_in_errors`).

Import time counts (`notifier check` builds every model here on each run), so
annotations are real objects, not strings pydantic would have to evaluate, and
list defaults come from a Python function, not the builtin `list` (see `_empty`).
"""

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import NestedSecretsSettingsSource

KindName = Literal[
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest"
]
TemplateKind = Literal[
    "reminder", "rescheduled", "due", "overdue", "completed", "cancelled", "digest",
    "summary", "test",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID = re.compile(ID_PATTERN)


def _when(value: object) -> datetime | date:
    """A TOML datetime or date, kept as written; ISO text from env vars is read too."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, time):
        # pydantic turns ValueError (not TypeError) into a validation error.
        raise ValueError("a time of day alone is not enough: write a date or a datetime")  # noqa: TRY004
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError("expected a TOML date (2020-11-25) or datetime (2020-11-25T17:00:00+04:00)")


def _empty() -> list[Any]:
    """A new empty list, as a default_factory.

    Not the builtin `list`: pydantic inspects each factory's signature, and a
    builtin's is parsed from text by `tokenize`, whose first use compiles a
    large regex (about 7 ms of every `notifier check`, for two defaults).
    """
    return []


When = Annotated[datetime | date, PlainValidator(_when)]
ONE_LINE_PATTERN = r"^[^\r\n]*$"
OneLine = Annotated[str, Field(min_length=1, max_length=200, pattern=ONE_LINE_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class NotifierSection(Strict):
    state: str | None = None
    """Ledger: a SQLite file path (default: $STATE_DIRECTORY/notifier.db or the XDG state dir)."""
    plugin_paths: list[str] = []
    """Directories or files of apprise custom plugins to load."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Defaults(Strict):
    timezone: str | None = None
    """IANA zone for deadlines and the digest; default: the machine's zone."""
    reminders: list[str] = ["7d", "1d"]
    channels: list[str] | None = None
    """Default: every configured channel."""
    due_time: str | None = None
    """HH:MM: a date due D is due at this time on D instead of the end of D."""
    remind_at: str = "09:00"
    """HH:MM: when day/week reminders of a date due fire."""
    overdue_every: str | None = None
    overdue_limit: int = Field(default=0, ge=0, le=1000)


class ChannelSettings(Strict):
    url: str | None = None
    urls: list[str] | None = None
    kinds: list[KindName] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.url is None) == (self.urls is None):
            raise ValueError("give exactly one of url or urls")
        if self.urls is not None and not self.urls:
            raise ValueError("urls is empty")
        return self

    @property
    def all_urls(self) -> list[str]:
        return [self.url] if self.url is not None else list(self.urls or [])


class ExtensionSettings(Strict):
    due: When
    announced: When | None = None
    reason: str | None = None
    source: str | None = None


class DeadlineSettings(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: OneLine
    due: When
    timezone: str | None = None
    announced: When | None = None
    reminders: list[str] | None = None
    channels: list[str] | None = None
    overdue_every: str | None = None
    overdue_limit: int | None = Field(default=None, ge=0, le=1000)
    # default_factory: a plain `= []` default is deep-copied for every deadline.
    extensions: list[ExtensionSettings] = Field(default_factory=_empty)
    completed: When | None = None
    cancelled: When | None = None
    note: str | None = None
    notes: str | None = None
    url: str | None = None
    tags: list[str] = Field(default_factory=_empty)


class DigestSettings(Strict):
    schedule: str
    """5-field cron in the default zone, e.g. "0 8 * * 1-5"."""
    always: bool = False
    channels: list[str] | None = None


class DeliverySettings(Strict):
    give_up_after: str = "24h"
    catchup: str = "24h"
    timeout: str = "60s"
    """Upper bound for one send on one channel."""
    helpers: int = Field(default=0, ge=0, le=16)
    """Send helper processes `notifier run` starts (0: none; more than 16 is a typo)."""


class TemplateSettings(Strict):
    title: str | None = None
    body: str | None = None


class Settings(BaseSettings):
    """The whole file. Sources, strongest first: NOTIFIER_* env, credentials, TOML."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_",
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
        secrets_prefix="",
        secrets_nested_delimiter="__",
        secrets_dir_missing="ok",
    )

    notifier: NotifierSection = NotifierSection()
    defaults: Defaults = Defaults()
    channels: dict[str, ChannelSettings] = {}
    deadlines: list[DeadlineSettings] = []
    digest: DigestSettings | None = None
    delivery: DeliverySettings = DeliverySettings()
    templates: dict[TemplateKind, TemplateSettings] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML data arrives as init kwargs (we parse the file ourselves to
        # locate errors), so it is the weakest source here.
        return (env_settings, NestedSecretsSettingsSource(file_secret_settings), init_settings)


def load_settings(data: dict[str, Any], credentials_dir: Path | None) -> Settings:
    kwargs: dict[str, Any] = dict(data)
    if credentials_dir is not None:
        kwargs["_secrets_dir"] = credentials_dir
    return Settings(**kwargs)

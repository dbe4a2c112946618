"""The configuration schema: pydantic-settings models, the single source of truth.

Every model forbids unknown keys. Numbers and flags are strict (`StrictInt`,
`StrictBool`): in the file a TOML string, a float or a boolean is not a whole
number, nor a string a boolean. A `NOTIFIER_*` variable or credential file is
text by nature: its text is read as the number or flag its setting wants
first (`_TextSource`), as pydantic's lax mode reads it ("3", "true"). Time
values keep their TOML type (offset datetime, local datetime, date) instead of
letting pydantic turn a date into a naive midnight. Values are never echoed in
errors (`hide_input_in_errors`).

Import time counts (`notifier check` builds every model here on each run), so
annotations are real objects, not strings pydantic would have to evaluate, and
list defaults come from a Python function, not the builtin `list` (see `_empty`).
"""

import contextlib
import re
import types
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
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
    """A TOML datetime or date, kept as written. Text is refused: the file's types are
    strict, and a variable's ISO text arrives here already read (`_typed`)."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, time):
        # pydantic turns ValueError (not TypeError) into a validation error.
        raise ValueError("a time of day alone is not enough: write a date or a datetime")  # noqa: TRY004
    if isinstance(value, str) and _when_text(value) is not None:
        raise ValueError("a date is written without quotes (2020-11-25, or a datetime "
                         "2020-11-25T17:00:00+04:00): in quotes it is text")
    raise ValueError("expected a TOML date (2020-11-25) or datetime (2020-11-25T17:00:00+04:00)")


def _when_text(text: str) -> datetime | date | None:
    """ISO text read as a date or datetime, or None: how a variable gives one."""
    text = text.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None


def _empty() -> list[Any]:
    """A new empty list, as a default_factory.

    Not the builtin `list`: pydantic inspects each factory's signature, and a
    builtin's is parsed from text by `tokenize`, whose first use compiles a
    large regex (about 7 ms of every `notifier check`, for two defaults).
    """
    return []


def _absolute(text: str) -> str:
    """A path the daemon finds wherever it runs: under systemd its working directory is /."""
    if not (text.startswith("~") or Path(text).is_absolute()):
        raise ValueError("must be an absolute path (under systemd the working directory is /)")
    return text


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


When = Annotated[datetime | date, PlainValidator(_when)]
AbsolutePath = Annotated[str, AfterValidator(_absolute)]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
"""A log level in any case: `debug` is `DEBUG`."""
ONE_LINE_PATTERN = r"^[^\r\n]*$"
OneLine = Annotated[str, Field(min_length=1, max_length=200, pattern=ONE_LINE_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class NotifierSection(Strict):
    state: AbsolutePath | None = None
    """Ledger: a SQLite file path (default: $STATE_DIRECTORY/notifier.db or the XDG state dir)."""
    plugin_paths: list[AbsolutePath] = []
    """Directories or files of apprise custom plugins to load."""
    log_level: LogLevel = "INFO"


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
    overdue_limit: StrictInt = Field(default=0, ge=0, le=1000)


class ChannelSettings(Strict):
    url: str | None = None
    urls: list[str] | None = None
    kinds: list[KindName] | None = None

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, kinds: list[str] | None) -> list[str] | None:
        if kinds is not None and not kinds:
            raise ValueError("must not be empty: no message would reach this channel "
                             "(leave kinds out for every kind)")
        return kinds

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # At `urls` itself, not the channel's header: `url` is read first.
        if urls is not None and info.data.get("url") is not None:
            raise ValueError("give exactly one of url or urls")
        if urls is not None and not urls:
            raise ValueError("must not be empty: give at least one URL (or url = \"...\")")
        return urls

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if self.url is None and self.urls is None:  # neither: at the channel
            raise ValueError("give exactly one of url or urls")
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
    overdue_limit: StrictInt | None = Field(default=None, ge=0, le=1000)
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
    always: StrictBool = False
    channels: list[str] | None = None


class DeliverySettings(Strict):
    give_up_after: str = "24h"
    catchup: str = "24h"
    timeout: str = "60s"
    """Upper bound for one send on one channel."""
    helpers: StrictInt = Field(default=0, ge=0, le=16)
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
        return (_TextSource(env_settings),
                _TextSecrets(file_secret_settings), init_settings)


class _TextSource(PydanticBaseSettingsSource):
    """The settings `inner` (variables or credential files) reads, with each text where
    the schema wants a whole number, a flag or a date read as one (a text that is none is left
    as it is: the strict field then says what it must be, located at its variable)."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        read: dict[str, Any] = _typed(self._inner(), self.settings_cls)
        return read


class _TextSecrets(NestedSecretsSettingsSource):
    """Credential files, read as `_TextSource` reads variables (a subclass: pydantic-settings
    reads its `secrets_*` settings only for a NestedSecretsSettingsSource)."""

    def __call__(self) -> dict[str, Any]:
        read: dict[str, Any] = _typed(super().__call__(), self.settings_cls)
        return read


_LAX: dict[type, TypeAdapter[Any]] = {}
"""pydantic's lax readers of text as int and bool, built on first use."""


def _typed(value: Any, annotation: Any) -> Any:
    """`value` with its texts read as the whole numbers, flags and dates `annotation`
    wants there (a file's are typed already: TOML says which is which)."""
    wanted = _bare(annotation)
    origin = get_origin(wanted)
    if isinstance(value, str) and (annotation == When or When in get_args(annotation)):
        value = _when_text(value) or value  # else `_when` says what it must be
    elif isinstance(value, str) and (wanted is int or wanted is bool):
        if wanted not in _LAX:
            _LAX[wanted] = TypeAdapter(wanted)
        with contextlib.suppress(ValidationError):  # else the strict field says what it must be
            value = _LAX[wanted].validate_python(value)
    elif isinstance(value, dict) and isinstance(wanted, type) and issubclass(wanted, BaseModel):
        fields = wanted.model_fields
        value = {k: _typed(v, _annotation(fields[k])) if k in fields else v
                 for k, v in value.items()}
    elif isinstance(value, dict) and origin is dict:
        value = {k: _typed(v, get_args(wanted)[1]) for k, v in value.items()}
    elif isinstance(value, list) and origin is list:
        value = [_typed(v, get_args(wanted)[0]) for v in value]
    return value


def _annotation(info: FieldInfo) -> Any:
    """A field's annotation with its validators (pydantic keeps a bare `When`'s apart)."""
    return Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


def _bare(annotation: Any) -> Any:
    """`annotation` without Annotated[...] and without `| None`."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _bare(args[0])
    return annotation


def load_settings(data: dict[str, Any], credentials_dir: Path | None) -> Settings:
    kwargs: dict[str, Any] = dict(data)
    if credentials_dir is not None:
        kwargs["_secrets_dir"] = credentials_dir
    return Settings(**kwargs)

"""Settings resolved into a `Config`: zones, offsets, dues, extensions, closures, channels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifier.config import checks, secrets, tomlpos, zonenames
from notifier.config.located import Collector
from notifier.config.schema import DeadlineSettings, Settings
from notifier.errors import Problem
from notifier.schedule import timing
from notifier.schedule.model import Channel, Closure, Deadline, Offset, Schedule, Stage

if TYPE_CHECKING:
    from notifier.config.batches import Tables


@dataclass(frozen=True)
class TemplateText:
    title: str | None
    body: str | None


@dataclass(frozen=True)
class Config:
    path: Path
    schedule: Schedule
    state: str | None
    plugin_paths: tuple[str, ...]
    log_level: str
    templates: dict[str, TemplateText]
    give_up_after: timedelta
    catchup: timedelta
    send_timeout: timedelta
    send_helpers: int = 0
    """Send helper processes for `run` (`notifier.delivery.sendpool`); 0: none."""
    warnings: tuple[Problem, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)
    tables: Tables | None = field(default=None, repr=False, compare=False)
    """For a reload: this load's deadline tables by their text (None if read whole)."""
    first_seen_at: datetime | None = field(default=None, compare=False)
    """`FirstSeen.now` of this load: when a running daemon saw the ids its ledger
    did not know (it records them at this instant); None for any other load."""


@dataclass(frozen=True)
class FirstSeen:
    """When a deadline or extension without `announced` became known (SPEC 3, live edits)."""

    times: Mapping[str, datetime] = field(default_factory=dict)
    """The ledger's first-seen times, by `first_seen_key`."""
    now: datetime | None = None
    """What a key not in `times` takes: the moment a running daemon sees it. None
    (plan, status, check) leaves it known from the start."""

    def at(self, deadline_id: str, stage: int) -> datetime | None:
        return self.times.get(first_seen_key(deadline_id, stage), self.now)

    def seen_now(self, deadline_id: str) -> bool:
        """Whether this load is the first to see the deadline (a daemon's, at `now`)."""
        return self.now is not None and first_seen_key(deadline_id, 0) not in self.times


NOT_SEEN = FirstSeen()
"""No ledger: every stage without `announced` is known from the start."""


def first_seen_key(deadline_id: str, stage: int) -> str:
    """The ledger's key for the first-seen time of stage `stage` (0: the original due)."""
    return deadline_id if stage == 0 else f"{deadline_id}/ext/{stage}"


def machine_zone() -> ZoneInfo:
    try:
        from tzlocal import get_localzone_name  # noqa: PLC0415 - only when no zone is configured

        name = get_localzone_name()
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except Exception:  # noqa: BLE001 - any failure to read the machine zone means UTC
        return ZoneInfo("UTC")


def _zone(
    name: str | None, fallback: ZoneInfo | Callable[[], ZoneInfo], col: Collector,
    where: tomlpos.Path,
) -> ZoneInfo:
    """The zone `name`, else (with a problem if `name` is bad) the fallback, called if callable."""
    if name is not None:
        try:
            zone = _find_zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            from zoneinfo import available_timezones  # noqa: PLC0415 - only for a bad name

            near = checks.closest(name, sorted(available_timezones()), fold=True)
            col.add(where, f"unknown time zone{near}" if near
                    else "unknown time zone (use an IANA name such as Asia/Baku)")
        else:
            zonenames.warn_not_a_place(name, col, where)
            return zone
    return fallback if isinstance(fallback, ZoneInfo) else fallback()


@lru_cache(maxsize=1024)
def _find_zone(name: str) -> ZoneInfo:
    """ZoneInfo(name) for a plausible IANA name (cached: a schedule repeats a few zones)."""
    if not name or name.strip() != name or ".." in name or name.startswith("/"):
        raise ValueError("not a zone name")
    return ZoneInfo(name)


def _offset(text: str, col: Collector, where: tomlpos.Path) -> Offset | None:
    try:
        return timing.parse_offset(text)
    except timing.OffsetError as e:
        col.add(where, str(e))
        return None


def _interval(text: str, col: Collector, where: tomlpos.Path) -> Offset | None:
    """A length of time between two things (a send and its timeout, two repeats): 0 is
    refused, since it reads as "none" to some and "no limit" to others, and does neither."""
    offset = _offset(text, col, where)
    if offset is not None and not offset.days and not offset.exact:
        col.add(where, "must be more than 0")
    return offset


def _hhmm(text: str | None, col: Collector, where: tomlpos.Path) -> time | None:
    if text is None:
        return None
    try:
        return timing.parse_hhmm(text)
    except ValueError as e:
        col.add(where, str(e))
        return None


def _instant(
    value: datetime | date, zone: ZoneInfo, col: Collector, where: tomlpos.Path
) -> datetime | None:
    """A non-due datetime (announced, completed, ...): dates mean the start of that day."""
    if isinstance(value, datetime):
        return _datetime(value, zone, col, where)
    return timing.day_start(value, zone)


def _datetime(
    value: datetime, zone: ZoneInfo, col: Collector, where: tomlpos.Path
) -> datetime | None:
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    instant = timing.local_instant(value, zone)
    if isinstance(instant, timing.LocalTimeProblem):
        col.add(where, instant.message(value, zone))
        return None
    return instant


def _due(
    value: datetime | date, zone: ZoneInfo, due_time: time | None,
    col: Collector, where: tomlpos.Path,
) -> tuple[datetime, date | None] | None:
    if isinstance(value, datetime):
        instant = _datetime(value, zone, col, where)
        return None if instant is None else (instant, None)
    return timing.date_due(value, zone, due_time), value


@dataclass(frozen=True, slots=True)
class Inherited:
    """What every deadline takes from [defaults] and [channels]."""

    zone: ZoneInfo
    remind_at: time
    due_time: time | None
    channels: dict[str, Channel]
    default_channels: tuple[str, ...]
    default_reminders: tuple[Offset, ...]
    default_overdue: Offset | None
    default_overdue_limit: int
    defaults_known: bool
    """Every default channel exists (else [defaults] has the problem, said once there)."""
    defaults_given: bool
    """[defaults] names its channels (else they are every channel of the file)."""


def resolve(
    s: Settings, path: Path, col: Collector, env: Mapping[str, str], seen: FirstSeen, *,
    check_urls: bool,
) -> Config:
    base = resolve_inherited(s, col, check_urls=check_urls)
    deadlines = resolve_deadlines(s.deadlines, base, col, seen)
    return resolve_rest(s, path, col, env, base, deadlines, seen)


def resolve_inherited(s: Settings, col: Collector, *, check_urls: bool) -> Inherited:
    zone = _zone(s.defaults.timezone, machine_zone, col, ("defaults", "timezone"))
    remind_at = _hhmm(s.defaults.remind_at, col, ("defaults", "remind_at")) or time(9)
    due_time = _hhmm(s.defaults.due_time, col, ("defaults", "due_time"))
    if check_urls and s.notifier.plugin_paths:
        # Third-party schemas must be known before their URLs are checked.
        from notifier.delivery.appriseset import load_plugin_paths  # noqa: PLC0415 - apprise is slow

        for i, path_text in enumerate(s.notifier.plugin_paths):
            for problem in load_plugin_paths([path_text]):
                col.add(("notifier", "plugin_paths", i), problem, foreign=True)
    channels = _channels(s, col, check_urls=check_urls)
    default_channels = tuple(s.defaults.channels) if s.defaults.channels is not None \
        else tuple(channels)
    checks.known_channels(default_channels, channels, col, ("defaults", "channels"))
    default_reminders = tuple(
        o for i, text in enumerate(s.defaults.reminders)
        if (o := _offset(text, col, ("defaults", "reminders", i))) is not None
    )
    checks.repeated_reminders(s.defaults.reminders, col, ("defaults", "reminders"))
    default_overdue = None
    if s.defaults.overdue_every is not None:
        default_overdue = _interval(s.defaults.overdue_every, col, ("defaults", "overdue_every"))
    return Inherited(zone, remind_at, due_time, channels, default_channels, default_reminders,
                      default_overdue, s.defaults.overdue_limit,
                      all(c in channels for c in default_channels),
                      s.defaults.channels is not None)


def resolve_deadlines(
    items: Iterable[DeadlineSettings], base: Inherited, col: Collector, seen: FirstSeen,
) -> list[Deadline]:
    """Resolve every deadline of the file, in order; duplicate ids are problems."""
    out: list[Deadline] = []
    ids: dict[str, int] = {}
    for i, d in enumerate(items):
        first = ids.setdefault(d.id, i)
        if first != i:
            checks.duplicate_id(d.id, first, i, col)
        resolved = resolve_deadline(d, i, base, col, seen)
        if resolved is not None:
            out.append(resolved)
    return out


def _known_too_late(
    deadline_id: str, at: tomlpos.Path, zone: ZoneInfo, announced: datetime | None,
    stages: list[Stage], seen: FirstSeen, col: Collector,
) -> None:
    """Known only after its last due: by the written `announced`, or else by the
    first-seen time of a load that is the first to see the deadline (`seen` is
    NOT_SEEN for a closed one: it expects nothing more)."""
    if not stages:
        return
    if announced is not None:
        checks.warn_known_too_late(at, zone, announced, stages, col)
    elif seen.now is not None and seen.seen_now(deadline_id):
        checks.warn_known_too_late(at, zone, seen.now, stages, col, first_seen=True)


def resolve_deadline(
    d: DeadlineSettings, i: int, base: Inherited, col: Collector, seen: FirstSeen,
) -> Deadline | None:
    """Deadline `i` of the file, or None after adding its problems to `col`.

    This runs for every deadline of the file (100,000: a third of a large
    schedule's load time), so the common case takes no detour: paths for
    problems are only built when there is one.
    """
    at: tomlpos.Path = ("deadlines", i)
    before = len(col.problems)
    dzone = base.zone if d.timezone is None else _zone(d.timezone, base.zone, col,
                                                       (*at, "timezone"))
    reminders = base.default_reminders if d.reminders is None else tuple(
        o for j, text in enumerate(d.reminders)
        if (o := _offset(text, col, (*at, "reminders", j))) is not None
    )
    if d.reminders is not None and len(set(d.reminders)) < len(d.reminders):
        checks.repeated_reminders(d.reminders, col, (*at, "reminders"))
    # The defaults' channels were checked once, at [defaults]: a mistake there is
    # said there, not again at every deadline that inherits it.
    inherits = d.channels is None
    chans = base.default_channels if inherits else _deadline_channels(d, base.channels, col, at)
    if not chans:
        col.add_once(("defaults", "channels") if inherits and base.defaults_given
                     else (*at, "channels"), "no channel to send to")
    overdue = base.default_overdue if d.overdue_every is None \
        else _interval(d.overdue_every, col, (*at, "overdue_every"))
    limit = base.default_overdue_limit if d.overdue_limit is None else d.overdue_limit
    announced = None if d.announced is None \
        else _instant(d.announced, dzone, col, (*at, "announced"))
    due = _due(d.due, dzone, base.due_time, col, (*at, "due"))
    stages: list[Stage] = [] if due is None else [
        Stage(due[0], due[1], seen.at(d.id, 0) if d.announced is None else announced)]
    if d.extensions:
        _extensions(d, dzone, base.due_time, col, at, announced, stages, seen)
    closure = None if d.completed is None and d.cancelled is None and d.note is None \
        else _closure(d, dzone, col, at)
    if overdue is not None or limit:
        checks.overdue_pair(d, i, overdue, limit, col)
    _known_too_late(d.id, at, dzone, announced, stages, seen if closure is None else NOT_SEEN,
                    col)
    if len(col.problems) > before or not stages or (inherits and not base.defaults_known):
        return None
    deadline = Deadline(
        d.id, d.title, dzone, tuple(stages), reminders, chans, base.remind_at, overdue, limit,
        closure, d.notes, d.url, tuple(d.tags) if d.tags else (),
    )
    remind_at = base.remind_at
    unplanned = coinciding = False
    for st in stages:
        unsure, pairs = timing.reminder_doubts(reminders, dzone, st.day is not None, remind_at)
        coinciding = coinciding or bool(pairs)
        # Mostly empty: only an offset a zone's UTC offsets could undo is computed.
        if unsure and not unplanned:
            unplanned = not all(timing.lands_before(st.due, st.day, o, dzone, remind_at)
                                for o in unsure)
    if unplanned:
        checks.warn_unplanned(deadline, d, i, col)
    if coinciding:
        checks.warn_coinciding(deadline, d, i, col)
    return deadline


def _extensions(
    d: DeadlineSettings, dzone: ZoneInfo, due_time: time | None, col: Collector,
    at: tomlpos.Path, announced: datetime | None, stages: list[Stage], seen: FirstSeen,
) -> None:
    """Extension stages onto `stages`; the order of `announced` is checked as written."""
    last_announced = announced
    for k, ext in enumerate(d.extensions):
        where = (*at, "extensions", k)
        ext_due = _due(ext.due, dzone, due_time, col, (*where, "due"))
        ext_announced = None if ext.announced is None \
            else _instant(ext.announced, dzone, col, (*where, "announced"))
        if ext_announced is not None and last_announced is not None \
                and ext_announced < last_announced:
            col.add((*where, "announced"),
                    "extensions out of order: announced before the previous one")
        if ext_announced is not None:
            last_announced = ext_announced
        if ext_due is not None:
            stage = Stage(due=ext_due[0], day=ext_due[1],
                          announced=seen.at(d.id, k + 1) if ext.announced is None
                          else ext_announced, reason=ext.reason, source=ext.source)
            if stages:
                checks.extension_moves(where, dzone, stages[-1], stage, ext_announced, col)
            stages.append(stage)


def _closure(
    d: DeadlineSettings, dzone: ZoneInfo, col: Collector, at: tomlpos.Path
) -> Closure | None:
    closure = None
    if d.completed is None and d.cancelled is None:
        col.add((*at, "note"), "note is shown only with completed or cancelled; "
                               "did you mean notes?", warning=True)
    elif d.completed is not None and d.cancelled is not None:
        col.add((*at, "cancelled"), "a deadline is either completed or cancelled, not both")
    for kind in ("completed", "cancelled"):
        value = getattr(d, kind)
        if value is not None:
            when = _instant(value, dzone, col, (*at, kind))
            if when is not None:
                closure = Closure(kind=kind, at=when, note=d.note)
    return closure


def resolve_rest(
    s: Settings, path: Path, col: Collector, env: Mapping[str, str], base: Inherited,
    deadlines: list[Deadline], seen: FirstSeen,
) -> Config:
    zone, channels = base.zone, base.channels
    digest = None
    if s.digest is not None:
        digest = checks.checked_digest(s, zone, channels, base.default_channels, col)
    durations = {
        # 0 is meant for the first two: no retry; nothing sent late, all in the summary.
        name: (_interval if name == "timeout" else _offset)(
            getattr(s.delivery, name), col, ("delivery", name))
        for name in ("give_up_after", "catchup", "timeout")
    }
    schedule = Schedule(deadlines=tuple(deadlines), channels=channels, digest=digest, zone=zone)
    checks.check_templates(s, schedule, col)
    checks.warn_unreachable_kinds(schedule, col)
    checks.warn_nothing_sent(schedule, col)
    return Config(
        path=path,
        schedule=schedule,
        state=s.notifier.state,
        plugin_paths=tuple(s.notifier.plugin_paths),
        log_level=s.notifier.log_level,
        templates={k: TemplateText(v.title, v.body) for k, v in s.templates.items()},
        give_up_after=_as_delta(durations["give_up_after"], timedelta(hours=24)),
        catchup=_as_delta(durations["catchup"], timedelta(hours=24)),
        send_timeout=_as_delta(durations["timeout"], timedelta(seconds=60)),
        send_helpers=s.delivery.helpers,
        secrets=secrets.settings_secrets(s, env),
        first_seen_at=seen.now,
    )


def _as_delta(offset: Offset | None, fallback: timedelta) -> timedelta:
    return fallback if offset is None else timedelta(days=offset.days) + offset.exact


def _channels(s: Settings, col: Collector, *, check_urls: bool) -> dict[str, Channel]:
    out: dict[str, Channel] = {}
    for name, ch in s.channels.items():
        if not checks.valid_name(name):
            col.add(("channels", name), "channel names use a-z, 0-9, - and _", at_key=True)
        urls = ch.all_urls
        if check_urls:
            for j, url in enumerate(urls):
                where: tomlpos.Path = ("channels", name, "url") if ch.url is not None \
                    else ("channels", name, "urls", j)
                message = checks.url_problem(url)
                if message:  # apprise's words, or ours for the built-in schemes
                    col.add(where, message, foreign=not url.startswith(checks.BUILTIN_SCHEMES))
        kinds = frozenset(ch.kinds) if ch.kinds is not None else None
        out[name] = Channel(name=name, urls=tuple(urls), kinds=kinds)
    return out



def _deadline_channels(
    d: DeadlineSettings, channels: dict[str, Channel], col: Collector, at: tomlpos.Path,
) -> tuple[str, ...]:
    chans = tuple(d.channels or ())
    checks.known_channels(chans, channels, col, (*at, "channels"))
    return chans


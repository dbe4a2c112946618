"""Checks of a config beyond its schema: URLs, channel names, template renders, reminders, cron."""

from __future__ import annotations

import errno
import importlib
import stat
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from notifier.config import tomlpos
from notifier.config.located import Collector
from notifier.config.schema import DeadlineSettings, Settings
from notifier.errors import Problem
from notifier.redact import from_input, shown
from notifier.schedule.model import Channel, Deadline, Digest, Offset, Schedule, Stage
from notifier.wording import Fmt

BUILTIN_SCHEMES = ("console://", "jsonl://")


def valid_name(name: str) -> bool:
    from notifier.config.schema import _ID  # noqa: PLC0415 - shared pattern

    return bool(_ID.match(name))


def url_problem(url: str) -> str | None:
    if url.startswith(BUILTIN_SCHEMES):
        # Checked here without apprise, so `check` stays fast.
        if url.startswith("console://") and url.rstrip("/") != "console:":
            return "console:// takes no host or path"
        if url.startswith("jsonl://") and (not url.startswith("jsonl:///") or url.endswith("/")):
            return "jsonl:// needs an absolute file path: jsonl:///var/lib/notifier/out.jsonl"
        return _jsonl_file_problem(url) if url.startswith("jsonl://") else None
    from notifier.delivery.urls import validate_url  # noqa: PLC0415 - apprise is slow to import

    return validate_url(url)


_NO_DIRECTORY = "the directory of this jsonl:// file does not exist: create it or correct the path"
_NOT_A_DIRECTORY = "the directory of this jsonl:// file is not a directory: correct the path"


def _jsonl_file_problem(url: str) -> str | None:
    """A jsonl:// file whose directory is missing would fail every send until given up:
    said at load instead (the path is not quoted: errors never quote values). What this
    user may not look into (`check` run by another user than the service's) is left to
    the daemon's first send to say."""
    path = Path(unquote(urlsplit(url).path))  # as plugins.NotifyJsonl reads it
    try:
        if stat.S_ISDIR(path.stat().st_mode):
            return "jsonl:// names a directory: give a file in it"
    except FileNotFoundError:
        pass  # the file itself is made at the first send
    except OSError as e:
        return _stat_problem(e)
    try:
        return None if stat.S_ISDIR(path.parent.stat().st_mode) else _NOT_A_DIRECTORY
    except OSError as e:
        return _stat_problem(e)


def _stat_problem(e: OSError) -> str | None:
    if isinstance(e, FileNotFoundError):
        return _NO_DIRECTORY
    if isinstance(e, NotADirectoryError):
        return _NOT_A_DIRECTORY
    if e.errno == errno.ENAMETOOLONG:
        return "a name in this jsonl:// path is too long: correct the path"
    return None  # not ours to look into (permissions): the send will say


def known_channels(
    names: tuple[str, ...] | list[str], channels: dict[str, Channel],
    col: Collector, where: tomlpos.Path,
) -> None:
    for j, name in enumerate(names):
        if name not in channels:
            col.add((*where, j), f"unknown channel {from_input(repr(name))} (not in [channels]"
                                 f"{closest(name, channels)})")


def closest(name: str, known: Iterable[str], *, fold: bool = False) -> str:
    """`; did you mean 'x'?` naming the known name closest to `name`, or nothing."""
    import difflib  # noqa: PLC0415 - only for a file with a problem

    names = list(known)
    if fold:
        same = [k for k in names if k.lower() == name.lower()]
        if same:
            return f"; did you mean {same[0]!r}?"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    # A name the product knows (a zone, a channel), not the input: never hidden.
    return f"; did you mean {close[0]!r}?" if close else ""


def duplicate_id(name: str, first: int, i: int, col: Collector) -> None:
    """A second deadline with an id: said at it, naming the first (ids are the operator's
    own names, shown in every output, so quoted like a channel's)."""
    line = col.line_of(("deadlines", first, "id"))
    where = f"line {line}" if line is not None else f"deadlines.{first}"
    col.add(("deadlines", i, "id"), f"duplicate id {from_input(repr(name))} (first at {where})")


def repeated_reminders(texts: list[str], col: Collector, where: tomlpos.Path) -> None:
    """The same offset written twice in one list is a mistake, not a second reminder."""
    first: dict[str, int] = {}
    for j, text in enumerate(texts):
        if text in first:
            col.add((*where, j), f"reminder {from_input(repr(text))} is listed twice (also item "
                                 f"{first[text]} of this list); remove one")
        else:
            first[text] = j


def warn_coinciding(deadline: Deadline, d: DeadlineSettings, i: int, col: Collector) -> None:
    """Different offsets that land on one instant ("7d" and "1w", "1d12h" and "36h")."""
    found = _planning().coinciding_reminders(deadline)
    texts = [o.text for o in deadline.reminders]
    for j, (kept, stage, at) in sorted(found.items()):
        where: tomlpos.Path = ("deadlines", i, "reminders", j) if d.reminders is not None \
            else ("defaults", "reminders", j)
        said = f"reminders {from_input(repr(texts[kept]))} and {from_input(repr(texts[j]))}" \
               " land on the same instant"
        if d.reminders is None and any(w.message.startswith((shown(said), shown(said, hide=True)))
                                       for w in col.warnings):
            continue  # the defaults' pair, said once for the whole file
        which = "the due" if stage == 0 else f"extension {stage}'s due"
        ident = col.quoted(("deadlines", i, "id"), repr(deadline.id))
        col.add(where, f"{said} before {which} of {ident} "
                       f"({Fmt(deadline.zone, None).instant(at)}); "
                       f"it is sent once, as {from_input(repr(texts[kept]))}", warning=True)


@lru_cache(maxsize=1)
def _planning() -> ModuleType:
    """notifier.schedule.planning, imported on first use (it imports this module)."""
    return importlib.import_module("notifier.schedule.planning")


def warn_unplanned(deadline: Deadline, d: DeadlineSettings, i: int, col: Collector) -> None:
    bad = _planning().unplanned_reminders(deadline)
    if not bad:
        return
    texts = [o.text for o in deadline.reminders]
    for text, k in bad:
        where: tomlpos.Path = ("deadlines", i, "reminders", texts.index(text)) \
            if d.reminders is not None else ("deadlines", i, "due")
        which = "the due" if k == 0 else f"extension {k}'s due"
        col.add(where, f"reminder {from_input(repr(text))} lands at or after {which};"
                       " it is not planned", warning=True)


def overdue_pair(
    d: DeadlineSettings, i: int, every: Offset | None, limit: int, col: Collector,
) -> None:
    """`overdue_every` plans repeats only with an `overdue_limit` of 1 or more, and a
    limit counts repeats of an interval: either alone plans nothing."""
    if every is not None and limit == 0:
        if d.overdue_every is not None:
            where: tomlpos.Path = ("deadlines", i, "overdue_every")
        elif d.overdue_limit is None:
            where = ("defaults", "overdue_every")
        else:
            return  # this deadline's own `overdue_limit = 0` turns the defaults' repeats off
        col.add_once(where, "overdue_every without overdue_limit plans no overdue message; "
                            "add overdue_limit = N (at most N overdue messages)")
    elif every is None and limit > 0:
        where = ("deadlines", i, "overdue_limit") if d.overdue_limit is not None \
            else ("defaults", "overdue_limit")
        col.add_once(where, "overdue_limit without overdue_every plans no overdue message; "
                            "add overdue_every = \"1d\" (the interval between them)")


def warn_known_too_late(
    deadline_at: tomlpos.Path, zone: ZoneInfo, announced: datetime, stages: list[Stage],
    col: Collector, *, first_seen: bool = False,
) -> None:
    """A deadline announced after its last due is overdue from the moment it is known:
    no reminder, due or overdue message is planned for it (SPEC 2). A warning, not an
    error: a file can be written after the fact, and its closure is still sent.

    `first_seen`: `announced` is not written but is the moment the daemon first sees
    the deadline (SPEC 3, live edits; also a first start): said at the deadline, once,
    by the load that sees it."""
    last = stages[-1]
    if announced > last.due:
        text = _due_text(last, zone)
        which = f"its due ({text})" if len(stages) == 1 \
            else f"its last due (extension {len(stages) - 1}: {text})"
        if first_seen:
            col.add(deadline_at, f"first seen by the daemon now, after {which}, and no "
                    "`announced` says it was known before: no reminder, due or overdue "
                    "message is sent for this deadline", warning=True)
        else:
            col.add((*deadline_at, "announced"),
                    f"announced after {which}: no reminder, due or overdue "
                    "message is sent for this deadline", warning=True)


def extension_moves(
    where: tomlpos.Path, zone: ZoneInfo, previous: Stage, new: Stage,
    announced: datetime | None, col: Collector,
) -> None:
    """An extension must move the due, to a time still ahead when it is announced
    (`announced` as written): otherwise its "rescheduled" message says "by nothing"
    or about a past date."""
    if new.due == previous.due:
        col.add((*where, "due"), "this extension keeps the due it replaces "
                                 f"({_due_text(previous, zone)}): "
                                 "nothing is rescheduled; remove it or correct its due")
    elif announced is not None and announced >= new.due:
        # At the due itself too: its message would say "now due ... (now)".
        col.add((*where, "announced"),
                f"announced at or after its own new due ({_due_text(new, zone)}): its message "
                "would announce a move to a time already come; correct announced or due")


def _due_text(stage: Stage, zone: ZoneInfo) -> str:
    """A due as messages write it, with its year: a check has no "now" to leave it out by."""
    return Fmt(zone, None).due_long(stage)


NOTHING_SENT = "no deadlines: nothing will ever be sent"
"""The warning for a config with no deadline (and no digest sent regardless): comments
only, or only [notifier], [defaults] and channels. `check`, `run` and a reload all
accept it with this warning (README, "Choices")."""

EMPTY_FILE = ("the file is empty (a save cut short?); a config meant to have no deadlines "
              "yet needs at least a comment")
"""The error for a file of nothing but white space that leaves no deadline: `check`,
`run` and a reload all refuse it. Taken by a running daemon it would drop every
deadline, and a file caught between an editor's truncation and its write is empty."""


def warn_nothing_sent(schedule: Schedule, col: Collector) -> None:
    """A config that can send nothing: valid, since deadlines may be added by a later
    edit (a running daemon picks it up), but worth saying; about the whole file."""
    digest = schedule.digest
    if schedule.deadlines or (digest is not None and digest.always and digest.channels):
        return
    col.warnings.append(Problem(col.file, 0, 0, "", NOTHING_SENT))


def warn_unreachable_kinds(schedule: Schedule, col: Collector) -> None:
    """A channel with `kinds` that no message of the file can have receives nothing."""
    limited = {name: c.kinds for name, c in schedule.channels.items() if c.kinds is not None}
    if not limited:
        return
    produced: dict[str, set[str]] = {name: set() for name in limited}
    for d in schedule.deadlines:
        for name in d.channels:
            if name in produced:
                produced[name].update(_deadline_kinds(d))
    digest = schedule.digest
    for name, kinds in limited.items():
        if digest is not None and name in digest.channels:
            produced[name].add("digest")
        if kinds & produced[name]:
            continue
        senders = any(name in d.channels for d in schedule.deadlines)
        reasons = "; ".join(f"{kind!r}: {_unreachable(kind, digest, senders=senders)}"
                            for kind in sorted(kinds))
        col.add(("channels", name, "kinds"), f"no message can reach this channel ({reasons})",
                warning=True)


def _unreachable(kind: str, digest: Digest | None, *, senders: bool) -> str:
    if kind == "digest":
        return "there is no [digest]" if digest is None else "[digest] does not send to it"
    if not senders:
        return "no deadline sends to it"
    needs = {"reminder": "reminders", "rescheduled": "an extension", "overdue": "overdue_every"}
    return f"no deadline sending to it has {needs[kind]}"


def _deadline_kinds(d: Deadline) -> list[str]:
    """The kinds `d` can send: a closure may be added to any deadline."""
    kinds = ["due", "completed", "cancelled"]
    if d.reminders:
        kinds.append("reminder")
    if len(d.stages) > 1:
        kinds.append("rescheduled")
    if d.overdue_every is not None and d.overdue_limit > 0:
        kinds.append("overdue")
    return kinds


def checked_digest(
    s: Settings, zone: ZoneInfo, channels: dict[str, Channel],
    default_channels: tuple[str, ...], col: Collector,
) -> Digest | None:
    assert s.digest is not None
    own = s.digest.channels is not None
    chans = tuple(s.digest.channels or ()) if own else default_channels
    if own:  # the defaults' were checked at [defaults]: a mistake there is said there
        known_channels(chans, channels, col, ("digest", "channels"))
    if not chans:
        col.add_once(("defaults", "channels") if not own and s.defaults.channels is not None
                     else ("digest", "channels"), "no channel to send to")
    expr = s.digest.schedule
    planning = _planning()
    wrong = planning.cron_problem(expr)
    if wrong is None:
        try:
            trigger = planning.cron_trigger(expr)
        except (ValueError, KeyError, TypeError):  # APScheduler's words quote the value
            wrong = planning.CRON_FORM
        else:
            if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
                wrong = ("names no date that exists (such as 31 February): no digest would "
                         "ever be sent")
    if wrong is not None:
        col.add(("digest", "schedule"), wrong)
        return None
    return Digest(schedule=expr, zone=zone, channels=chans, always=s.digest.always)


def check_templates(s: Settings, schedule: Schedule, col: Collector) -> None:
    if not s.templates:
        return
    from notifier.messages.checks import template_problems  # noqa: PLC0415
    from notifier.messages.render import Renderer, syntax_problem  # noqa: PLC0415
    from notifier.messages.templates import Part, TemplateSource  # noqa: PLC0415

    # Every override's syntax error, then the renders of the others (a broken one is
    # left to its built-in meanwhile): every template problem is reported at once.
    usable: dict[str, TemplateSource] = {}
    for kind, given in s.templates.items():
        parts: dict[Part, str | None] = {"title": given.title, "body": given.body}
        for part, source in parts.items():
            broken = None if source is None else syntax_problem(kind, part, source)
            if broken is not None:
                _template_problem(col, broken.kind, broken.part, broken.message,
                                  broken.lineno, source)
                parts[part] = None
        usable[kind] = TemplateSource(title=parts["title"], body=parts["body"])
    renderer = Renderer(usable)
    from notifier.schedule.planning import plan  # noqa: PLC0415

    horizon_start = min((d.stages[0].due for d in schedule.deadlines),
                        default=datetime(2000, 1, 1, tzinfo=UTC)) - timedelta(days=400)
    samples = plan(schedule, horizon_start, horizon_start + timedelta(days=1200))
    for problem in template_problems(renderer, schedule, samples, now=horizon_start):
        _template_problem(col, problem.kind, problem.part, problem.message, problem.lineno,
                          renderer.sources[problem.kind, problem.part])


def _template_problem(col: Collector, kind: str, part: str, message: str, line: int | None,
                      source: str | None) -> None:
    """At the template's value in the file; the template's own line if it has several."""
    several = source is not None and "\n" in source.strip("\n")
    col.add(("templates", kind, part),
            f"{message} (line {line} of the template)" if several and line else message,
            foreign=True)


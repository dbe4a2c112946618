"""The click shell: parse, call the core, print, exit. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from notifier.daemon import heap
from notifier.text import rfc3339

# What the imports below allocate (click, pydantic, the config schema: some
# 50,000 objects) lives as long as the process. The cyclic collector would
# only scan it, over and over while importing and again at exit: a fifth of
# the time of a `notifier check`. So it is off meanwhile, and then all of it
# is frozen out of its sight (see notifier.daemon.heap); what the commands allocate
# later is collected as usual.
with heap.quiet():
    import click

    from notifier.config import loader as config_mod
    from notifier.errors import ConfigError, LedgerError
    from notifier.schedule import planning

EX_OK, EX_RUNTIME, EX_USAGE, EX_CONFIG = 0, 1, 2, 78
EX_LEDGER = 74  # EX_IOERR: the ledger is unreadable or damaged; never sent blind

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, status: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(status)


class WhenParam(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """ISO 8601 date or datetime; the zone is applied once the config is known."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime | date):
            return value
        text = str(value).strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else \
                datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail("not an ISO 8601 date or datetime (2020-11-08 or 2020-11-08T09:00+04:00)",
                      param, ctx)


WHEN = WhenParam()


def config_option(f: F) -> F:
    return click.option(
        "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=None, help="Config file (default: $NOTIFIER_CONFIG, "
        "$CONFIGURATION_DIRECTORY/config.toml, /etc/notifier/config.toml).",
    )(f)


def load_config(path: Path | None, *, for_reload: bool = False) -> config_mod.Config:
    from notifier.config import paths  # noqa: PLC0415

    chosen = path if path is not None else paths.default_config_path(os.environ)
    try:
        return config_mod.load(chosen, for_reload=for_reload)
    except ConfigError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        sys.exit(EX_CONFIG)


def to_instant(
    value: datetime | date | None, cfg: config_mod.Config, default: datetime
) -> datetime:
    if value is None:
        return default
    zone = cfg.schedule.zone
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone).astimezone(UTC)
        return value.astimezone(UTC)
    return datetime.combine(value, datetime.min.time(), tzinfo=zone).astimezone(UTC)


def now() -> datetime:
    """The one clock read of the read-only commands."""
    return datetime.now(UTC)


@contextmanager
def readonly_ledger(cfg: config_mod.Config) -> Iterator[Any]:
    """The ledger if it exists (for first-seen times and deliveries), else None."""
    from notifier.config import paths  # noqa: PLC0415
    from notifier.delivery.ledger import open_ledger  # noqa: PLC0415 - only commands that read state

    path = paths.ledger_path(cfg.state, os.environ)
    if not path.exists():
        yield None
        return
    try:
        book = open_ledger(path, readonly=True)
    except LedgerError as e:
        _fail(str(e), EX_LEDGER)
    try:
        yield book
    finally:
        book.close()


def json_lines(items: list[dict[str, Any]]) -> str:
    """A JSON array, one item per line: json's C encoder writes no indentation, and
    indented output of a 40,000-item plan took longer than planning it."""
    return _json_array([json.dumps(i, ensure_ascii=False) for i in items])


def _json_array(encoded: list[str]) -> str:
    """Items already encoded as JSON, as an array of one item per line."""
    return "[\n" + ",\n".join(encoded) + "\n]" if encoded else "[]"


def effective_schedule(cfg: config_mod.Config, book: Any) -> Any:
    if book is None:
        return cfg.schedule
    # In place: `cfg` was just loaded for this command, and nothing else holds it.
    config_mod.fill_first_seen(cfg.schedule.deadlines, book.first_seen())
    return cfg.schedule


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="notifier")
def main() -> None:
    """notifier: reminders and status messages for deadlines, as a systemd service."""


@main.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 78).")
def check(config_path: Path | None, strict: bool) -> None:
    """Validate the config and summarise it."""
    heap.hold()  # a short-lived process: the collector would only re-scan the schedule
    cfg = load_config(config_path)  # also compiles and test-renders template overrides
    for warning in cfg.warnings:
        click.echo(f"{warning.file}:{warning.line}:{warning.col}: {warning.path}: "
                   f"warning: {warning.message}", err=True)
    t = now()
    nxt = planning.next_notification(cfg.schedule, t)
    schedule = cfg.schedule
    click.echo(
        f"{cfg.path}: OK: {len(schedule.deadlines)} deadline(s), "
        f"{len(schedule.channels)} channel(s), digest {'on' if schedule.digest else 'off'}"
    )
    if nxt is None:
        click.echo("next notification: none planned")
    else:
        what = f"{nxt.deadline} ({nxt.title})" if nxt.deadline else nxt.kind
        click.echo(f"next notification: {rfc3339(nxt.at)} {nxt.kind}: {what}")
    if strict and cfg.warnings:
        sys.exit(EX_CONFIG)


@main.command()
@config_option
@click.option("--from", "start", type=WHEN, default=None, help="Start (default: now).")
@click.option("--until", "end", type=WHEN, default=None, help="End (default: start + 30 days).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--body", "with_body", is_flag=True,
              help="Each JSON item also has its message's rendered body.")
def plan(config_path: Path | None, start: Any, end: Any, as_json: bool, with_body: bool) -> None:
    """What will be sent, when, and where."""
    if with_body and not as_json:
        _fail("Error: --body adds the body to JSON items; use it with --json", EX_USAGE)
    heap.hold()  # a short-lived process: the collector would only re-scan the plan
    cfg = load_config(config_path)
    begin = to_instant(start, cfg, now())
    finish = to_instant(end, cfg, begin + timedelta(days=30))
    if finish < begin:
        _fail("Error: --until is before --from", EX_USAGE)
    from notifier.messages.render import Renderer  # noqa: PLC0415
    from notifier.output import views  # noqa: PLC0415 - not imported by `check`

    with readonly_ledger(cfg) as book:
        schedule = effective_schedule(cfg, book)
    renderer = Renderer(cfg.templates)

    items = planning.plan_deadlines(planning.touching(schedule.deadlines, begin, finish),
                                    schedule.channels, begin, finish)
    found = views.plan_rows(items, schedule, renderer, as_json=as_json, with_body=with_body)
    if schedule.digest is not None:
        found += views.plan_rows(planning.plan_digest(schedule, schedule.digest, begin, finish),
                                 schedule, renderer, as_json=as_json, with_body=with_body)
    found.sort(key=itemgetter(0))
    out = [shown for _, shown in found]
    if as_json:
        click.echo(_json_array(out))
        return
    from notifier.output.tables import plan_table  # noqa: PLC0415 - rich is slow to import

    plan_table(out, schedule.zone)


@main.command()
@config_option
@click.option("--at", "at", type=WHEN, default=None, help="The instant to report on (default now).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def status(config_path: Path | None, at: Any, as_json: bool) -> None:
    """Where each deadline stands."""
    from notifier.output import views  # noqa: PLC0415 - not imported by `check`

    heap.hold()  # a short-lived process: the collector would only re-scan the schedule
    cfg = load_config(config_path)
    t = to_instant(at, cfg, now())
    with readonly_ledger(cfg) as book:
        schedule = effective_schedule(cfg, book)
        items = []
        for d in schedule.deadlines:
            last = None
            if book is not None:
                rec = book.last_delivery(d.id)
                if rec is not None:
                    last = views.LastDelivery(rec.key, rec.channel, str(rec.state),
                                              rec.updated_at, rec.last_error)
            items.append(views.status_item(d, schedule, t, last))
    if as_json:
        click.echo(json_lines(items))
        return
    from notifier.output.tables import status_table  # noqa: PLC0415 - rich is slow to import

    status_table(items, schedule.zone)


def _open_ledger_or_exit(cfg: config_mod.Config, path: Path | None = None) -> Any:
    from notifier.config import paths  # noqa: PLC0415
    from notifier.delivery.ledger import open_ledger  # noqa: PLC0415

    where = path or paths.ledger_path(cfg.state, os.environ)
    try:
        return open_ledger(where)
    except LedgerError as e:
        _fail(str(e), EX_LEDGER)


def _start_logging(cfg: config_mod.Config, level: str | None = None) -> None:
    from notifier.logs import setup_logging  # noqa: PLC0415

    setup_logging(level or cfg.log_level, secrets=cfg.secrets)


@main.command()
@config_option
def run(config_path: Path | None) -> None:
    """Run the daemon (under systemd: Type=notify)."""
    heap.hold()  # until the daemon is ready (see notifier.daemon.heap)
    cfg = load_config(config_path, for_reload=True)
    _start_logging(cfg)
    for warning in cfg.warnings:
        click.echo(f"{warning.file}:{warning.line}:{warning.col}: {warning.path}: "
                   f"warning: {warning.message}", err=True)
    book = _open_ledger_or_exit(cfg)
    from notifier.daemon.loop import run_daemon  # noqa: PLC0415
    from notifier.logs import setup_logging  # noqa: PLC0415

    secrets = set(cfg.secrets)

    def relog(new: config_mod.Config) -> None:
        # A reload may bring new secrets; old ones stay redacted too.
        secrets.update(new.secrets)
        setup_logging(new.log_level, secrets=secrets)

    try:
        status = run_daemon(cfg, book, on_reload=relog)
    except LedgerError as e:
        _fail(f"ledger: {e}", EX_LEDGER)
    finally:
        book.close()
    sys.exit(status)


@main.command()
@config_option
@click.option("--from", "start", type=WHEN, required=True, help="Where the virtual clock starts.")
@click.option("--until", "end", type=WHEN, default=None, help="Where it stops (default +30 days).")
@click.option("--speed", type=click.FloatRange(min=1.0, max=1e7), default=3600.0, show_default=True,
              help="Virtual seconds per real second.")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Keep the ledger in this file (default: a temporary one).")
@click.option("--epoch", type=float, default=None,
              help="Unix time at which the virtual clock reads --from (default: now); with "
              "--ledger, a replay restarted with the same epoch resumes where it was.")
def replay(config_path: Path | None, start: Any, end: Any, speed: float,
           ledger_file: Path | None, epoch: float | None) -> None:
    """Run the real daemon on a virtual clock, with a throw-away ledger."""
    import tempfile  # noqa: PLC0415

    cfg = load_config(config_path, for_reload=True)
    begin = to_instant(start, cfg, now())
    finish = to_instant(end, cfg, begin + timedelta(days=30))
    if finish <= begin:
        _fail("Error: --until must be after --from", EX_USAGE)
    _start_logging(cfg, "WARNING")
    from notifier.daemon.clock import VirtualClock  # noqa: PLC0415
    from notifier.daemon.loop import Daemon  # noqa: PLC0415
    from notifier.daemon.sdnotify import SystemdNotifier  # noqa: PLC0415
    from notifier.delivery.outcomes import OutgoingMessage  # noqa: PLC0415

    zone = cfg.schedule.zone

    def show(msg: OutgoingMessage, channel: str, at: datetime) -> None:
        stamp = msg.planned_at.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
        click.echo(f"{stamp}  {msg.kind:<11} -> {channel}: {msg.title}")

    with tempfile.TemporaryDirectory(prefix="notifier-replay-") as tmp:
        book = _open_ledger_or_exit(cfg, ledger_file or Path(tmp) / "replay.db")
        click.echo(f"replay {rfc3339(begin)} -> {rfc3339(finish)} "
                   f"at {speed:g}x ({zone.key})")
        try:
            daemon = Daemon(cfg, book, clock=VirtualClock(begin, speed, epoch),
                            notifier=SystemdNotifier({}), stop_at=finish, on_sent=show,
                            watch_interval=0, install_signals=True)
            status = daemon.run()
        finally:
            book.close()
    click.echo(f"replay done: {daemon.dispatcher.sent} delivered, "
               f"{daemon.dispatcher.failed} failed")
    sys.exit(status)


@main.command("send-test")
@config_option
@click.argument("channel")
def send_test(config_path: Path | None, channel: str) -> None:
    """Send a test message to CHANNEL and report each URL's result."""
    cfg = load_config(config_path)
    chan = cfg.schedule.channels.get(channel)
    if chan is None:
        names = ", ".join(sorted(cfg.schedule.channels)) or "none"
        _fail(f"Error: no channel {channel!r} in {cfg.path} (channels: {names})", EX_USAGE)
    from notifier.delivery.appriseset import load_plugin_paths  # noqa: PLC0415
    from notifier.delivery.channels import send_test  # noqa: PLC0415
    from notifier.messages.render import Renderer, TemplateProblem  # noqa: PLC0415

    at = now().replace(microsecond=0)
    try:
        message = Renderer(cfg.templates).render_test(channel, now=at)
    except TemplateProblem as e:
        _fail(f"Error: {cfg.path}: {e}", EX_CONFIG)
    load_plugin_paths(list(cfg.plugin_paths))
    results = send_test(chan, title=message.title, body=message.body, now=at,
                        timeout=cfg.send_timeout.total_seconds())
    for r in results:
        click.echo(f"{'ok    ' if r.ok else 'FAILED'} {r.url_private}"
                   + (f": {r.error}" if r.error else ""))
    sys.exit(EX_OK if results and all(r.ok for r in results) else EX_RUNTIME)


@main.command()
@config_option
@click.option("--deadline", default=None, help="Only this deadline's deliveries.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def history(config_path: Path | None, deadline: str | None, limit: int | None,
            as_json: bool) -> None:
    """The delivery ledger, newest first."""
    from notifier.output import views  # noqa: PLC0415 - not imported by `check`

    cfg = load_config(config_path)
    with readonly_ledger(cfg) as book:
        rows = [] if book is None else book.history(deadline, limit)
    items = [views.history_item(r) for r in rows]
    if as_json:
        click.echo(json_lines(items))
        return
    from notifier.output.tables import history_table  # noqa: PLC0415 - rich is slow to import

    history_table(items, cfg.schedule.zone)

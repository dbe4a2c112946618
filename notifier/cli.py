"""The click shell: parse the command line, call a command, print its result, exit.

Each command's work is in `notifier.commands`; its errors are the typed ones of
`notifier.errors`, each turned here into its message and exit status.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar, get_args

from notifier.daemon import heap

# What the imports below allocate (click, pydantic, the config schema: some
# 50,000 objects) lives as long as the process. The cyclic collector would
# only scan it, over and over while importing and again at exit: a fifth of
# the time of a `notifier check`. So it is off meanwhile, and then all of it
# is frozen out of its sight (see notifier.daemon.heap); what the commands allocate
# later is collected as usual. The other commands' modules are imported by their
# commands, after `heap.hold()` where they hold it: `check` imports no more than
# it needs (tests/test_check_imports.py).
with heap.quiet():
    import click

    from notifier.commands import check as check_command
    from notifier.commands.common import EX_CONFIG, EX_LEDGER, EX_USAGE, Result
    from notifier.errors import ConfigError, LedgerError, UsageError
    from notifier.schedule.standing import State
    from notifier.text import escaped

F = TypeVar("F", bound=Callable[..., Any])


def _say(line: str) -> None:
    click.echo(line)


def _warn(line: str) -> None:
    """One line on standard error; a control character in it (ESC of a key or a value
    the line quotes) written out, as in tables and logs (notifier.text.escaped)."""
    click.echo(escaped(line), err=True)


def _fail(message: str, status: int) -> NoReturn:
    _warn(message)
    sys.exit(status)


def _finish(command: Callable[[], Result]) -> NoReturn:
    """Run `command`; print its result, or its error, and exit with its status."""
    try:
        result = command()
    except ConfigError as e:
        for problem in e.problems:
            _warn(str(problem))
        sys.exit(EX_CONFIG)
    except LedgerError as e:
        _fail(str(e), EX_LEDGER)
    except UsageError as e:
        _fail(f"Error: {e}", EX_USAGE)
    for note in result.notes:
        _warn(note)
    if result.text:
        click.echo(result.text, nl=False, color=True if result.verbatim else None)
    sys.exit(result.status)


def now() -> datetime:
    """The one clock read of the read-only commands."""
    return datetime.now(UTC)


class BadValue(click.BadParameter):
    """A bad option value in the product's words: `--limit: must be a whole number of 1 or
    more`, the option first and then what it must be (not click's "Invalid value for ...")."""

    def format_message(self) -> str:
        param = self.param
        hint = self.param_hint if isinstance(self.param_hint, str) else \
            max(param.opts, key=len) if param is not None and param.opts else "value"
        return f"{hint}: {self.message}"


class Value(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """An option's type whose refusals are `BadValue`s."""

    def fail(self, message: str, param: click.Parameter | None = None,
             ctx: click.Context | None = None) -> NoReturn:
        raise BadValue(message, ctx=ctx, param=param)

    def bad(self, message: str, param: click.Parameter | None,
            ctx: click.Context | None) -> BadValue:
        return BadValue(message, ctx=ctx, param=param)


class WholeNumber(Value):
    """A whole number of `least` or more (`--limit`)."""

    name = "INTEGER"

    def __init__(self, least: int) -> None:
        self.least = least

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if isinstance(value, int) or re.fullmatch(r"[+-]?[0-9]+", text):
            number = int(text)
            if number >= self.least:
                return number
        raise self.bad(f"must be a whole number of {self.least} or more", param, ctx)


class Number(Value):
    """A number, between `low` and `high` where they are given (`--speed`, `--epoch`)."""

    name = "NUMBER"

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if math.isfinite(number) and low <= number <= high:
            return number
        if self.low is None or self.high is None:
            raise self.bad("must be a number", param, ctx)
        raise self.bad(f"must be between {_number(self.low)} and {_number(self.high)}",
                       param, ctx)


def _number(x: float) -> str:
    return f"{int(x):,}" if x == int(x) else f"{x:,}"


class WhenParam(Value):
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
    # Not click's own checks: a directory or a missing file is a config error (78, one
    # line) as it is given through $NOTIFIER_CONFIG, not a usage error (2).
    return click.option(
        "-c", "--config", "config_path", type=click.Path(path_type=Path),
        default=None, help="Config file (default: $NOTIFIER_CONFIG, "
        "$CONFIGURATION_DIRECTORY/config.toml, /etc/notifier/config.toml).",
    )(f)


class OneLineErrors(click.Group):
    """A usage error (a bad option value, an unknown option or command) is one line,
    "Error: ...", exit 2, like every other bad input: not click's usage block."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            e.ctx = None  # what click shows the usage block and help hint from
            raise

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        # The group's own options (`notifier --bogus`) are parsed here, before `invoke`.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            e.ctx = None
            raise


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="notifier")
def main() -> None:
    """notifier: reminders and status messages for deadlines, as a systemd service."""


@main.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 78).")
def check(config_path: Path | None, strict: bool) -> None:
    """Validate the config and summarise it."""
    heap.hold()  # a short-lived process: the collector would only re-scan the schedule
    _finish(lambda: check_command.check(config_path, strict=strict, clock=now))


@main.command()
@config_option
@click.option("--from", "start", type=WHEN, default=None, help="Start (default: now).")
@click.option("--until", "end", type=WHEN, default=None, help="End (default: start + 30 days).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--body", "with_body", is_flag=True,
              help="Each JSON item also has its message's rendered body.")
def plan(config_path: Path | None, start: Any, end: Any, as_json: bool, with_body: bool) -> None:
    """What will be sent, when, and where."""
    heap.hold()  # a short-lived process: the collector would only re-scan the plan
    from notifier.commands import plan as plan_command  # noqa: PLC0415 - not imported by `check`

    _finish(lambda: plan_command.plan(config_path, start=start, end=end, as_json=as_json,
                                      with_body=with_body, clock=now))


class StatesParam(click.Choice):  # type: ignore[type-arg]  # generic only in newer click stubs
    """One state or a comma list of them ("open,overdue"), each checked as click's Choice."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        states = []
        for part in str(value).split(","):
            if part.strip() not in self.choices:
                raise BadValue(f"{part.strip()!r} is not a state; must be one of "
                               f"{', '.join(map(str, self.choices))}", ctx=ctx, param=param)
            states.append(part.strip())
        return tuple(states)


@main.command()
@config_option
@click.option("--at", "at", type=WHEN, default=None, help="The instant to report on (default now).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option("--state", "states", type=StatesParam(get_args(State)), multiple=True,
              help="Only deadlines in this state (repeat it, or a comma list).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only deadlines with this tag (repeat it: any of them).")
def status(config_path: Path | None, at: Any, as_json: bool, states: tuple[tuple[str, ...], ...],
           tags: tuple[str, ...]) -> None:
    """Where each deadline stands, most urgent first."""
    heap.hold()  # a short-lived process: the collector would only re-scan the schedule
    from notifier.commands import status as status_command  # noqa: PLC0415 - not for `check`

    chosen = [state for group in states for state in group]
    _finish(lambda: status_command.status(config_path, at=at, as_json=as_json, clock=now,
                                          states=chosen, tags=tags))


@main.command()
@config_option
def run(config_path: Path | None) -> None:
    """Run the daemon (under systemd: Type=notify)."""
    heap.hold()  # until the daemon is ready (see notifier.daemon.heap)
    from notifier.commands import run as run_command  # noqa: PLC0415 - not imported by `check`

    _finish(lambda: run_command.run(config_path))


@main.command()
@config_option
@click.option("--from", "start", type=WHEN, required=True, help="Where the virtual clock starts.")
@click.option("--until", "end", type=WHEN, default=None, help="Where it stops (default +30 days).")
@click.option("--speed", type=Number(1, 1e7), default=3600.0, show_default=True,
              help="Virtual seconds per real second (1 to 10,000,000).")
@click.option("--ledger", "ledger_file", type=click.Path(path_type=Path),
              default=None, help="Keep the ledger in this file (default: a temporary one); "
              "never one that `notifier run` has used.")
@click.option("--epoch", type=Number(), default=None,
              help="Unix time at which the virtual clock reads --from (default: now); with "
              "--ledger, a replay restarted with the same epoch resumes where it was.")
@click.option("--send-real", is_flag=True,
              help="Also send to every channel URL that is not console:// or jsonl:// "
              "(email, webhooks, ...): real recipients get the past events. Without it "
              "those deliveries are only shown.")
def replay(config_path: Path | None, start: Any, end: Any, speed: float,
           ledger_file: Path | None, epoch: float | None, send_real: bool) -> None:
    """Run the real daemon on a virtual clock, with a throw-away ledger.

    Each delivery is one line (a console:// delivery's body indented under
    it). Only console:// and jsonl:// URLs are sent to:
    a delivery to any other URL is shown on its line instead (the URL in
    privacy form, the key), unless --send-real.
    """
    from notifier.commands import replay as replay_command  # noqa: PLC0415 - not for `check`

    _finish(lambda: replay_command.replay(config_path, start=start, end=end, speed=speed,
                                          ledger_file=ledger_file, epoch=epoch,
                                          send_real=send_real, say=_say, warn=_warn))


@main.command("send-test")
@config_option
@click.argument("channel")
def send_test(config_path: Path | None, channel: str) -> None:
    """Send a test message to CHANNEL and report each URL's result."""
    from notifier.commands import send_test as send_test_command  # noqa: PLC0415 - not for `check`

    _finish(lambda: send_test_command.send_test(config_path, channel=channel, clock=now))


@main.command()
@config_option
@click.option("--deadline", default=None, help="Only this deadline's deliveries.")
@click.option("--limit", type=WholeNumber(1), default=None,
              help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def history(config_path: Path | None, deadline: str | None, limit: int | None,
            as_json: bool) -> None:
    """The delivery ledger, newest first."""
    from notifier.commands import history as history_command  # noqa: PLC0415 - not for `check`

    _finish(lambda: history_command.history(config_path, deadline=deadline, limit=limit,
                                            as_json=as_json, clock=now))

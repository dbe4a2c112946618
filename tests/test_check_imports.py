"""`notifier check` stays quick to start: it imports only what checking needs.

Each case runs a fresh interpreter: what a process has imported, and the state
of its garbage collector, cannot be seen from inside this test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"

CHECK = """
import gc, json, sys
from notifier.cli import main
state = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
try:
    main(["check", "-c", sys.argv[1]])
except SystemExit as e:
    state["status"] = e.code
state["modules"] = sorted(sys.modules)
# tokenize may be imported just to read a source file's encoding; its first
# tokenizing compiles a large regex, cached here.
tokenizer = getattr(sys.modules.get("tokenize"), "_compile", None)
state["tokenized"] = bool(tokenizer and tokenizer.cache_info().currsize)
print(json.dumps(state), file=sys.stderr)
"""

NOT_FOR_CHECK = (
    "apprise",                  # channels: only for URLs that are not console:// or jsonl://
    "apscheduler.schedulers",   # only the cron trigger is needed, for the digest
    "jinja2",                   # templates: only when the file overrides some
    "rich",                     # tables: plan, status and history only
    "sqlite3",                  # the ledger: check never reads it
    "notifier.commands.history",
    "notifier.commands.plan",
    "notifier.commands.replay",
    "notifier.commands.run",
    "notifier.commands.send_test",
    "notifier.commands.status",
    "notifier.delivery.channels",
    "notifier.daemon.loop",
    "notifier.delivery.ledger.sqlite",
    "notifier.delivery.plugins",
    "notifier.messages.checks",
    "notifier.messages.context",
    "notifier.messages.render",
    "notifier.messages.templates",
    "notifier.output.tables",
    "notifier.output.views",
)


def run_check(code: str = CHECK) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True,
                          text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "OK: 3 deadlines," in proc.stdout
    state: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    return state


def test_check_does_not_import_what_only_other_commands_need() -> None:
    state = run_check()
    assert state["status"] in (None, 0)
    modules = state["modules"]
    assert isinstance(modules, list)
    loaded = [m for m in NOT_FOR_CHECK if m in modules or any(
        str(name).startswith(m + ".") for name in modules)]
    assert loaded == []
    assert "apscheduler.triggers.cron" in modules  # the digest's cron line is checked


def test_check_tokenizes_nothing() -> None:
    # pydantic takes each default_factory's signature; a builtin's (`list`) is
    # parsed from text by tokenize, whose first use compiles a large regex
    # (7 ms): config/schema.py gives it a Python function instead.
    assert run_check()["tokenized"] is False


def test_importing_the_cli_leaves_the_collector_on_with_the_imports_frozen() -> None:
    state = run_check()
    assert state["enabled"] is True
    frozen = state["frozen"]
    assert isinstance(frozen, int)
    assert frozen > 10_000


def test_a_collector_switched_off_before_the_import_stays_off() -> None:
    state = run_check("import gc\ngc.disable()\n" + CHECK)
    assert state["enabled"] is False
    assert state["frozen"] == 0

"""The commands are plain functions: no click, values in and a Result out, typed errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from notifier.commands.check import check
from notifier.commands.common import EX_OK
from notifier.commands.plan import plan
from notifier.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def fixed() -> datetime:
    return datetime(2020, 11, 12, tzinfo=UTC)


def test_no_command_imports_click() -> None:
    code = ("import importlib, pkgutil, sys\nimport notifier.commands as c\n"
            "for m in pkgutil.iter_modules(c.__path__):\n"
            "    importlib.import_module('notifier.commands.' + m.name)\n"
            "print(sorted(n for n in sys.modules if n == 'click' or n.startswith('click.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert proc.stdout.strip() == "[]"


def test_check_returns_its_text_and_status() -> None:
    result = check(EXAMPLE, strict=True, clock=fixed)
    assert result.status == EX_OK
    assert result.notes == ()
    assert result.text.endswith(
        "next notification: Thu 12 Nov 09:00, Baku: reminder for kalbajar (Kalbajar handover)\n")


@pytest.mark.parametrize(("now", "line"), [
    # In the default zone with its city, as messages write it; the year only when it is
    # not now's; a digest by its kind (issue 22).
    (datetime(2020, 12, 2, tzinfo=UTC), "Mon 7 Dec 08:00, Baku: digest"),
    (datetime(2019, 12, 31, tzinfo=UTC),
     "Thu 12 Nov 2020 09:00, Baku: reminder for kalbajar (Kalbajar handover)"),
])
def test_check_names_the_next_notification_in_words(now: datetime, line: str) -> None:
    result = check(EXAMPLE, strict=False, clock=lambda: now)
    assert result.text.splitlines()[-1] == f"next notification: {line}"


def test_errors_are_raised_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    with pytest.raises(UsageError, match="--until must be after --from"):
        plan(EXAMPLE, start=date(2020, 12, 1), end=date(2020, 11, 1), as_json=True,
             with_body=False, clock=fixed)
    with pytest.raises(ConfigError):
        plan(tmp_path / "missing.toml", start=None, end=None, as_json=True, with_body=False,
             clock=fixed)

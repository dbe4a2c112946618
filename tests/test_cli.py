"""The read-only commands on the example config, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.tables import table

from notifier.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ledger from the machine leaks into what plan/status show."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return tmp_path


def handover_plan(*more: str) -> list[dict[str, object]]:
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2020-11-08",
                         "--until", "2020-12-03", "--json", *more)
    assert status == 0, output
    items: list[dict[str, object]] = json.loads(output)
    return items


def test_plan_json_shows_the_2020_handover(isolated_state: Path) -> None:
    items = handover_plan()
    for item in items:
        assert set(item) == {"at", "deadline", "kind", "due", "offset", "channels", "title", "key"}
    kalbajar = [(i["at"], i["kind"], i["due"]) for i in items if i["deadline"] == "kalbajar"]
    assert kalbajar == [
        ("2020-11-12T05:00:00Z", "reminder", "2020-11-15T20:00:00Z"),
        ("2020-11-14T05:00:00Z", "reminder", "2020-11-15T20:00:00Z"),
        ("2020-11-15T05:00:00Z", "reminder", "2020-11-15T20:00:00Z"),
        ("2020-11-15T14:54:00Z", "rescheduled", "2020-11-25T20:00:00Z"),
        ("2020-11-22T05:00:00Z", "reminder", "2020-11-25T20:00:00Z"),
        ("2020-11-24T05:00:00Z", "reminder", "2020-11-25T20:00:00Z"),
        ("2020-11-25T05:00:00Z", "reminder", "2020-11-25T20:00:00Z"),
        ("2020-11-25T20:00:00Z", "due", "2020-11-25T20:00:00Z"),
    ]
    rescheduled = [i for i in items if i["kind"] == "rescheduled"]
    assert len(rescheduled) == 1
    assert "extended by 10 days, from 15 Nov to 25 Nov" in str(rescheduled[0]["title"])
    dues = {i["deadline"]: i["at"] for i in items if i["kind"] == "due"}
    # End of the day in Baku (UTC+4) is 20:00 UTC the same day.
    assert dues == {"aghdam": "2020-11-20T20:00:00Z", "kalbajar": "2020-11-25T20:00:00Z",
                    "lachin": "2020-12-01T20:00:00Z"}
    assert [i["at"] for i in items] == sorted(str(i["at"]) for i in items)
    reminder = next(i for i in items if i["kind"] == "reminder")
    assert reminder["offset"] == "3d"
    assert reminder["key"] == "kalbajar/reminder/2020-11-15T20:00:00Z/3d"


def test_plan_json_with_body_adds_each_message_body(isolated_state: Path) -> None:
    plain, with_body = handover_plan(), handover_plan("--body")
    assert [{k: v for k, v in i.items() if k != "body"} for i in with_body] == plain
    rescheduled = next(i for i in with_body if i["kind"] == "rescheduled")
    assert "damaged roads" in str(rescheduled["body"])
    assert all(str(i["body"]).strip() for i in with_body)


def test_json_is_an_array_of_one_item_per_line(isolated_state: Path) -> None:
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2020-11-08",
                         "--until", "2020-12-03", "--json")
    assert status == 0, output
    lines = output.strip().splitlines()
    assert (lines[0], lines[-1]) == ("[", "]")
    assert [json.loads(line.rstrip(",")) for line in lines[1:-1]] == json.loads(output)
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2019-01-01",
                         "--until", "2019-01-02", "--json")
    assert (status, json.loads(output)) == (0, [])


def test_plan_table_for_people(isolated_state: Path) -> None:
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2020-11-15T12:00+04:00",
                         "--until", "2020-11-16")
    assert status == 0
    assert "extended by 10 days" in output
    assert "Sun 15 Nov 18:54" in output  # the year is --from's


def test_plan_body_without_json_is_a_usage_error(isolated_state: Path) -> None:
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2020-11-08", "--body")
    assert status == 2
    assert output.strip() == "Error: --body adds the body to JSON items; use it with --json"


def test_plan_bad_times_are_usage_errors(isolated_state: Path) -> None:
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "next tuesday")
    assert status == 2
    assert "not an ISO 8601 date" in output
    status, output = run("plan", "-c", str(EXAMPLE), "--from", "2020-11-10", "--until", "2020-11-01")
    assert status == 2


def test_status_at_an_instant(isolated_state: Path) -> None:
    status, output = run("status", "-c", str(EXAMPLE), "--at", "2020-11-16T12:00+04:00", "--json")
    assert status == 0, output
    items = {i["deadline"]: i for i in json.loads(output)}
    kalbajar = items["kalbajar"]
    assert kalbajar["state"] == "open"
    assert kalbajar["effective_due"] == "2020-11-25T20:00:00Z"
    assert kalbajar["original_due"] == "2020-11-15T20:00:00Z"
    assert kalbajar["time_left"] == "9 days 12 h"
    assert kalbajar["history"][1]["reason"].startswith("Armenia asked for more time")
    assert kalbajar["next"]["kind"] == "reminder"
    assert kalbajar["next"]["at"] == "2020-11-22T05:00:00Z"
    assert items["aghdam"]["state"] == "open"
    status, output = run("status", "-c", str(EXAMPLE), "--at", "2020-11-21T12:00+04:00", "--json")
    assert {i["deadline"]: i["state"] for i in json.loads(output)}["aghdam"] == "overdue"


def test_status_at_the_due_instant_says_overdue(isolated_state: Path) -> None:
    # Kalbajar's extended due, the end of 25 Nov in Baku: due from that instant on.
    def state(at: str) -> object:
        status, output = run("status", "-c", str(EXAMPLE), "--at", at, "--json")
        assert status == 0, output
        return {i["deadline"]: i["state"] for i in json.loads(output)}["kalbajar"]

    assert state("2020-11-25T20:00:00Z") == "overdue"
    assert state("2020-11-25T19:59:59Z") == "open"


def test_status_table(isolated_state: Path) -> None:
    status, output = run("status", "-c", str(EXAMPLE), "--at", "2020-11-16")
    assert status == 0
    assert "kalbajar" in output
    assert "open" in output
    # Kalbajar's history: the extension announced the evening before, and why.
    history = table(output)["kalbajar"]["history"]
    assert history.startswith("extended on Sun 15 Nov 18:54"), history
    assert "Armenia asked for more time" in history
    # Before it was announced, the table knows of no extension.
    status, output = run("status", "-c", str(EXAMPLE), "--at", "2020-11-12")
    assert status == 0
    assert "kalbajar" in output
    assert "extended" not in output


def test_check_summary_on_example(isolated_state: Path) -> None:
    status, output = run("check", "-c", str(EXAMPLE))
    assert status == 0, output
    assert "OK: 3 deadlines, 1 channel, digest on" in output


def test_python_dash_m_and_config_from_env(isolated_state: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "notifier", "check"], capture_output=True,
                          text=True, check=False, env={"NOTIFIER_CONFIG": str(EXAMPLE),
                                                       "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "OK: 3 deadlines," in proc.stdout


def test_unknown_command_is_usage_error() -> None:
    status, _ = run("frobnicate")
    assert status == 2


def test_tables_show_the_users_text_as_written(isolated_state: Path) -> None:
    # Square brackets are rich's markup: "[/]" raised, "[bold]" vanished.
    config = isolated_state / "brackets.toml"
    config.write_text(
        '[defaults]\ntimezone = "UTC"\nreminders = ["1d"]\n\n'
        '[channels.out]\nurl = "console://"\n\n'
        '[[deadlines]]\nid = "renewal"\ntitle = "[ACME] renewal [/] [bold]now"\n'
        "due = 2030-01-10T12:00:00Z\n\n"
        "[[deadlines.extensions]]\ndue = 2030-01-20T12:00:00Z\n"
        'announced = 2030-01-05T12:00:00Z\nreason = "[red]ticket[/]"\n'
    )
    status, output = run("plan", "-c", str(config), "--from", "2030-01-01", "--until", "2030-02-01")
    assert status == 0, output
    assert "[ACME] renewal [/] [bold]now" in output
    status, output = run("status", "-c", str(config), "--at", "2030-01-06")
    assert status == 0, output
    assert "[red]ticket[/]" in output  # the reason, in the history column

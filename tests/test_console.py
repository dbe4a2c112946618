"""`console://` writes readable lines: the title line, the body indented under it, or
the title alone when stdout is the journal (SPEC 3: one line per message; issue 22)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.configs import config_toml, deadline_toml, write_config
from support.env import clean_env
from support.processes import notifier_cmd

from notifier.delivery.channels import ChannelSender
from notifier.delivery.outcomes import OutgoingMessage
from notifier.schedule.model import Channel

PLANNED = datetime(2020, 11, 22, 5, 0, tzinfo=UTC)

# A body with a blank line, an indented line, a bell, an escape sequence, trailing
# blanks, a CRLF and a Unicode line separator.
BODY = "line one\r\nline two\n\n  and a\x07bell \x1b[31mred\t \nlast\u2028after"
SHOWN = ["    line one", "    line two", "      and a\\u0007bell \\u001b[31mred",
         "    last", "    after"]


def test_console_writes_the_title_line_then_the_body_indented(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    sender = ChannelSender(Channel(name="ops", urls=("console://",)), timeout=10.0)
    for key, kind, title, body in (("k1", "reminder", "Kalbajar handover", BODY),
                                   ("k2", "due", "Aghdam \x1b]0;x\x07handover", "")):
        sender.send(OutgoingMessage(key=key, kind=kind, deadline="d", title=title,
                                    body=body, due=None, planned_at=PLANNED))
    assert capsys.readouterr().out.splitlines() == [
        "[reminder] Kalbajar handover", *SHOWN, "[due] Aghdam \\u001b]0;x\\u0007handover"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A console channel whose test message has a body of several lines."""
    return write_config(tmp_path / "config.toml", config_toml(
        state=tmp_path / "ledger.db", channels={"ops": "console://"},
        deadlines=deadline_toml("d01", datetime(2030, 1, 1, tzinfo=UTC)),
        extra='[templates.test]\ntitle = "drill"\n'
              'body = "first line\\n\\n    indented\\u001b[2J\\nlast line"\n'))


def send_test(config: Path, out: Path, *, journal: bool = False) -> list[str]:
    """`notifier send-test ops` with its stdout in the file `out` (which systemd's
    ``$JOURNAL_STREAM`` names as the journal if `journal`); its lines."""
    with out.open("w") as stdout:
        st = os.fstat(stdout.fileno())
        env = clean_env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}") if journal else clean_env()
        done = subprocess.run(notifier_cmd("send-test", "ops", "-c", str(config)),
                              stdout=stdout, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return out.read_text("utf-8").splitlines()


def test_send_test_to_console_shows_the_body_as_indented_lines(
        config: Path, tmp_path: Path) -> None:
    lines = send_test(config, tmp_path / "out.txt")
    assert lines[:4] == ["[test] drill", "    first line",
                         "        indented\\u001b[2J", "    last line"]
    assert lines[4].startswith("ok     console://"), lines
    assert len(lines) == 5
    assert not any(line.endswith(" ") for line in lines)


def test_console_to_the_journal_writes_one_line_per_message(
        config: Path, tmp_path: Path) -> None:
    lines = send_test(config, tmp_path / "out.txt", journal=True)
    assert lines[0] == "[test] drill"
    assert lines[1].startswith("ok     console://"), lines
    assert len(lines) == 2
    assert "\\n" not in "".join(lines)

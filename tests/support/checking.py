"""`notifier check` on a config text, as an operator runs it (click's runner, in-process)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from notifier.cli import main


def check_text(tmp_path: Path, text: str, **env: str) -> tuple[int, list[str], Path]:
    """Write `text` to tmp_path/config.toml (0600) and check it with `env`: the exit
    status, the output's lines and the file's path. Never a traceback."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    result = CliRunner().invoke(main, ["check", "-c", str(path)], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output.splitlines(), path

"""The systemd unit shipped in the package: directives, `verify` and `security`.

`systemd-analyze verify` checks that ExecStart= names an existing executable,
and the shipped unit points at /usr/local/bin/notifier, where `pip install`
puts the console script on a server but not in a test environment. So the
checks run on a copy (still named notifier.service) whose ExecStart= names the
`notifier` script of the environment running the tests (falling back to
`<this python> -m notifier`); every other line is byte-for-byte the shipped one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

SHIPPED_EXEC_START = "ExecStart=/usr/local/bin/notifier run"
MAX_EXPOSURE = 2.0


def unit_text() -> str:
    return resources.files("notifier").joinpath("notifier.service").read_text(encoding="utf-8")


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat)."""
    section = ""
    found: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        assert not line.endswith("\\"), f"continuation lines make review harder: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {raw!r}"
        found.append((section, key.strip(), value.strip()))
    return found


def service(text: str) -> dict[str, list[str]]:
    """Values of each [Service] key, in order."""
    values: dict[str, list[str]] = {}
    for section, key, value in directives(text):
        if section == "Service":
            values.setdefault(key, []).append(value)
    return values


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze") or shutil.which("systemd-analyze", path="/usr/bin:/bin")
    if found is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian package 'systemd'); "
            "CI installs it, so the unit file is checked there"
        )
    return found


def systemd_quote(word: str) -> str:
    """`word` as one ExecStart= argument."""
    word = word.replace("%", "%%")
    if re.search(r'[\s"\'\\;$]', word):
        escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
        return f'"{escaped}"'
    return word


def local_exec_start() -> str:
    """An ExecStart= line that runs `notifier run` from the environment under test."""
    script = shutil.which("notifier", path=str(Path(sys.executable).parent)) or shutil.which(
        "notifier"
    )
    if script is not None:
        command = [str(Path(script).absolute()), "run"]
    else:
        command = [str(Path(sys.executable).absolute()), "-m", "notifier", "run"]
    return "ExecStart=" + " ".join(systemd_quote(word) for word in command)


@pytest.fixture
def unit_path(tmp_path: Path) -> Path:
    text = unit_text()
    assert text.count(SHIPPED_EXEC_START + "\n") == 1
    path = tmp_path / "notifier.service"
    path.write_text(text.replace(SHIPPED_EXEC_START + "\n", local_exec_start() + "\n"))
    return path


def run_analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSTEMD_")}
    env.update(SYSTEMD_PAGER="", SYSTEMD_COLORS="0", LC_ALL="C.UTF-8")
    return subprocess.run(
        [systemd_analyze(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_verify_prints_nothing(unit_path: Path) -> None:
    result = run_analyze("verify", str(unit_path), cwd=unit_path.parent)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_security_exposure_is_at_most_2(unit_path: Path) -> None:
    result = run_analyze(
        "--no-pager", "security", "--offline=yes", str(unit_path), cwd=unit_path.parent
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for notifier\.service: (\d+(?:\.\d+)?)", output)
    assert match is not None, output
    assert float(match.group(1)) <= MAX_EXPOSURE, output


def test_substitution_touches_only_exec_start(unit_path: Path) -> None:
    shipped = unit_text().splitlines()
    tested = unit_path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(shipped, tested, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][0] == SHIPPED_EXEC_START


def test_service_basics() -> None:
    svc = service(unit_text())
    assert svc["Type"] == ["notify"]  # Debian 12 has systemd 252: no notify-reload
    assert svc["NotifyAccess"] == ["main"]
    assert svc["ExecStart"] == ["/usr/local/bin/notifier run"]
    assert svc["ExecStart"][0].startswith("/")
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert svc["WatchdogSec"] == ["60"]  # the daemon pings every 30 s
    assert svc["Restart"] == ["on-failure"]
    assert "78" in svc["RestartPreventExitStatus"][0].split()
    assert svc["DynamicUser"] == ["yes"]
    assert svc["StateDirectory"] == ["notifier"]
    assert svc["ConfigurationDirectory"] == ["notifier"]


def test_credentials_cannot_stop_the_unit_from_starting() -> None:
    """A LoadCredential= with a missing absolute path fails the start; a bare
    credential name (searched in /etc/credstore/ and the system credentials) is
    skipped when absent, or it needs a SetCredential= fallback."""
    svc = service(unit_text())
    loads = svc.get("LoadCredential", [])
    assert loads, "secrets must come in via LoadCredential="
    fallbacks = {value.partition(":")[0] for value in svc.get("SetCredential", [])}
    for value in loads:
        cred_id, _, source = value.partition(":")
        assert cred_id
        assert not source.startswith("/") or cred_id in fallbacks, value


def test_full_hardening() -> None:
    svc = service(unit_text())
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "PrivateMounts": "yes",
        "PrivateUsers": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "ProcSubset": "pid",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "UMask": "0077",
        "DevicePolicy": "closed",
        "KeyringMode": "private",
        "RemoveIPC": "yes",
    }
    for key, value in expected.items():
        assert svc.get(key) == [value], key
    assert svc["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # Apprise needs the network: no IP deny list, no private network.
    assert "IPAddressDeny" not in svc
    assert "PrivateNetwork" not in svc


def test_every_service_setting_is_explained() -> None:
    """Each [Service] key is introduced by a comment saying why."""
    lines = unit_text().splitlines()
    section = ""
    seen: set[str] = set()
    for number, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or not line or line.startswith("#"):
            continue
        key = line.partition("=")[0]
        if key in seen:
            continue  # a repeated key (SystemCallFilter=) shares its first comment
        seen.add(key)
        assert lines[number - 1].lstrip().startswith("#"), f"no comment above {raw!r}"


def test_unit_is_package_data() -> None:
    assert resources.files("notifier").joinpath("notifier.service").is_file()
    assert "[Install]\nWantedBy=multi-user.target" in unit_text()

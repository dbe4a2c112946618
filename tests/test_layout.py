"""The README's layout is the package's: every module listed, nothing listed that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "notifier"
MAX_LINES = 500


def listed_in_readme() -> set[str]:
    """Module paths (relative to notifier/) named in the README's `### Layout` tree."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Layout", 1)[1]
    block = section.split("```", 2)[1]
    lines = block.splitlines()[1:]
    assert lines[0] == "notifier/", "the layout tree starts at notifier/"
    parents: list[str] = []
    found: set[str] = set()
    for line in lines[1:]:
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        del parents[depth:]
        names = []
        for token in re.split(r"\s{2,}", line.strip()):
            if not re.fullmatch(r"[a-z_]+(\.py|/)", token):
                break
            names.append(token)
        assert names, f"layout line names no module or folder: {line!r}"
        for name in names:
            if name.endswith("/"):
                parents.append(name)
            else:
                found.add("".join(parents) + name)
    return found


def modules() -> set[str]:
    return {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
    }


def test_readme_layout_lists_exactly_the_modules() -> None:
    listed, actual = listed_in_readme(), modules()
    assert sorted(actual - listed) == [], "modules missing from the README's layout"
    assert sorted(listed - actual) == [], "the README's layout names modules that do not exist"


def test_no_module_over_500_lines() -> None:
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_subpackage_says_its_stage() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        assert init.read_text(encoding="utf-8").startswith('"""'), init

"""Reading what a jsonl:// channel wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a jsonl:// file; [] if there is none yet.

    Only the last line may be torn: a writer is appending it right now (it has
    no newline yet). A torn line anywhere else is a defect, and fails loudly.
    """
    if not path.exists():
        return []
    lines = path.read_text("utf-8", errors="replace").split("\n")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):  # no newline after it: still being written
                continue
            raise AssertionError(f"{path}:{number}: torn or invalid jsonl line {line!r}") from e
    return out


def read_jsonl_after_kills(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every whole record of a file whose writer was SIGKILLed, and how many lines were torn.

    A kill in the middle of a write can leave a fragment; the next append ends it
    with a newline, so a torn line may sit anywhere. Only kill tests accept that.
    """
    if not path.exists():
        return [], 0
    out, torn = [], 0
    for line in path.read_text("utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            torn += 1
    return out, torn

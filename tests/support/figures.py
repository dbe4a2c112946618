"""Figures a test measures: printed (visible with -s) and recorded as junit properties."""

from __future__ import annotations

from collections.abc import Callable


def report(name: str, figures: dict[str, object],
           record: Callable[[str, object], None] | None = None) -> None:
    print(f"\n[fault figures] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    if record is not None:
        for k, v in figures.items():
            record(k, v)

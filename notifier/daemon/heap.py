"""The cyclic garbage collector around a large schedule's allocations.

A schedule of 100,000 deadlines is millions of small objects that hold no
reference cycles and live until the next reload. While they are being built
the cyclic collector only re-scans them, again and again (a third of the
start-up time); once built, `gc.freeze()` moves them out of its sight, so
later collections scan only what the running daemon allocates.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def hold() -> None:
    """Stop cyclic collection until `settle` (the start-up of a daemon)."""
    gc.disable()


def settle() -> None:
    """Freeze everything allocated so far out of the collector's sight; collect again."""
    gc.freeze()
    gc.enable()


@contextmanager
def quiet() -> Iterator[None]:
    """No cyclic collection inside; then `settle`, if collection was on before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            settle()

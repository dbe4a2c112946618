"""The cyclic garbage collector around a large schedule's allocations.

A schedule of 100,000 deadlines is millions of small objects that hold no
reference cycles and live until the next reload. While they are being built
the cyclic collector only re-scans them, again and again (a third of the
start-up time); once built, `gc.freeze()` moves them out of its sight, so
later collections scan only what the running daemon allocates.

A frozen object that becomes cyclic garbage is never freed (only reference
counting frees frozen objects). A reload drops the previous config, and part
of it is cycles (apprise makes a class for each channel description, and a
class is a cycle): so a reload thaws, builds, collects once, and freezes again.
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


@contextmanager
def renewing() -> Iterator[None]:
    """Around a reload: no cyclic collection inside; then one full collection,
    which frees what the previous config left in cycles, and `settle`.

    The full collection scans the new schedule once (at 100,000 deadlines a few
    tenths of a second, inside the reload); the collector would otherwise scan
    it as it aged through the generations, at moments of its own choosing.
    """
    was = gc.isenabled()
    gc.disable()
    if was:
        gc.unfreeze()
    try:
        yield
    finally:
        if was:
            gc.collect()
            settle()

"""Process-level switches that the hot stages share."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused():
    """Pause the cyclic garbage collector for a stage that makes millions of small, acyclic
    objects (decoded rows, per-address state, replayed IRPs): the collector would only walk them
    again and again. Reference counting still frees them; the collector's state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Process-wide tuning for `chatserver serve`: the garbage collector.

A turn allocates tens of thousands of short-lived objects (the agent framework's run, the history
window), so with CPython's default thresholds the collector runs every few hundred allocations and
keeps re-walking the long-lived heap: under load that cost about a millisecond per turn, 15% of the
server's CPU (see README, Benchmarks). Freezing what startup created takes the imported modules and
the app out of every later collection, and a larger first threshold collects the young objects in
bigger, rarer batches. Cycles are still collected, just less often.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 10)
"""Allocations before a young collection; young and middle collections before an older one."""


def tune_garbage_collector() -> None:
    """Call once, after startup and before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

"""`chatserver serve` tunes the garbage collector for a server's allocation pattern."""

from __future__ import annotations

import gc

from chatserver.runtime import GC_THRESHOLDS, tune_garbage_collector


def test_serving_freezes_what_startup_made_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        frozen, thresholds = gc.get_freeze_count(), gc.get_threshold()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert frozen > 0
    assert thresholds == GC_THRESHOLDS
    assert thresholds[0] > before[0]

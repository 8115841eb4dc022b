"""Collections of the cyclic garbage collector are timed into `notifier_gc_pause_seconds`."""

from __future__ import annotations

import gc

from tests.support.metrics import sample
from workers.common.runtime.gcpauses import observe_gc_pauses


def collections(generation: int) -> float:
    return sample("notifier_gc_pause_seconds_count", {"generation": str(generation)})


def test_every_collection_is_timed_once_by_generation() -> None:
    observe_gc_pauses()
    observe_gc_pauses()  # installing twice must not count twice
    gc.disable()  # only the collections below, none the allocator starts on its own
    try:
        before = collections(2), collections(1)
        gc.collect(2)
        gc.collect(2)
        gc.collect(1)
    finally:
        gc.enable()
    assert collections(2) == before[0] + 2
    assert collections(1) == before[1] + 1
    assert sample("notifier_gc_pause_seconds_sum", {"generation": "2"}) > 0

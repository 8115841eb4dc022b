"""Pauses of the cyclic garbage collector as a histogram, `notifier_gc_pause_seconds{generation}`.

A collection stops the event loop for as long as it walks the tracked objects; in a process holding
thousands of connections a full one can take hundreds of milliseconds, which every request and frame in
flight waits out. prometheus_client's own collector counts collections but not their length.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GC_PAUSE = Histogram(
    "notifier_gc_pause_seconds",
    "Event-loop pauses of the cyclic garbage collector, by generation collected.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
for _generation in ("0", "1", "2"):
    GC_PAUSE.labels(_generation)

_started = 0.0


def _observe(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    else:
        GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _started)


def observe_gc_pauses() -> None:
    """Time every collection of this process from now on (once per process, however often called)."""
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)

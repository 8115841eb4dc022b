"""Keeping the cyclic garbage collector's pauses short while 10k connections live in the process.

A full (generation 2) collection walks every tracked object, and with 10k devices that is hundreds of
milliseconds, often, right in the delivery path. Devices live for minutes to days, so the room moves
what is alive into the permanent generation (`gc.freeze`) every `freeze_every_s`: later collections
walk only what is younger. Objects frozen and freed later by reference counting are freed as usual;
only cycles among frozen objects wait for the full collection every `collect_every_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

log = logging.getLogger(__name__)


async def keep_frozen(stopping: asyncio.Event, *, freeze_every_s: float, collect_every_s: float) -> None:
    last_full = time.monotonic()
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), freeze_every_s)
        if stopping.is_set():
            return
        if time.monotonic() - last_full >= collect_every_s:
            started = time.perf_counter()
            gc.unfreeze()
            freed = gc.collect()
            last_full = time.monotonic()
            log.info("full collection freed %d objects in %.0f ms", freed, (time.perf_counter() - started) * 1000)
        gc.freeze()

"""Keeping the cyclic garbage collector's pauses short while 10k connections live in the process.

A full (generation 2) collection walks every tracked object, and with 10k devices (about 40 objects
each) that is 250-650 ms, right in the delivery path. Devices live for minutes to days, so the room
moves what is alive into the permanent generation (`gc.freeze`, which only relinks list heads) every
`freeze_every_s`: later collections walk only what was allocated since. The interval is short (1 s by
default) because a reconnect storm brings thousands of devices in a few seconds, and the collector
may run a full collection over them before a slower freeze. Objects frozen and freed later by
reference counting are freed as usual; only cycles among frozen objects (a closed connection's
protocol and its parser, for one) wait for the full collection every `collect_every_s`, the one
planned long pause.
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

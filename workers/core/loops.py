"""Small background loops of core: pauses that end early on shutdown, and the purger."""

from __future__ import annotations

import asyncio
import logging

from workers.common.connections import REDIS_DOWN
from workers.core import metrics
from workers.core.store import Store

log = logging.getLogger(__name__)


async def sleep_unless(stopping: asyncio.Event, delay: float) -> None:
    """Sleep `delay` seconds, or less when `stopping` is set meanwhile."""
    try:
        await asyncio.wait_for(stopping.wait(), delay)
    except TimeoutError:
        return


async def purge_loop(store: Store, *, interval_s: float, batch: int, stopping: asyncio.Event) -> None:
    """Every `interval_s`, purge expired and unreferenced notifications whose retention has passed."""
    while not stopping.is_set():
        try:
            deleted = await store.purge(limit=batch)
        except REDIS_DOWN as exc:
            log.warning("purge skipped, Redis unavailable: %s", exc)
        else:
            if deleted:
                metrics.PURGED.inc(deleted)
                log.info("purged %d notifications past their retention", deleted)
        await sleep_unless(stopping, interval_s)

"""Small background loops of core: the purger."""

from __future__ import annotations

import asyncio
import logging

from workers.common.runtime.faults import REDIS
from workers.common.runtime.retry import repeat
from workers.core import metrics
from workers.core.store import Store

log = logging.getLogger(__name__)


async def purge_loop(store: Store, *, interval_s: float, batch: int, stopping: asyncio.Event) -> None:
    """Every `interval_s`, purge expired and unreferenced notifications whose retention has passed."""

    async def purge() -> float:
        deleted = await store.purge(limit=batch)
        if deleted:
            metrics.PURGED.inc(deleted)
            log.info("purged %d notifications past their retention", deleted)
        return interval_s

    await repeat(purge, what="purge notifications", stopping=stopping, dependency=REDIS)

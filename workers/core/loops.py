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
    """Every `interval_s`, purge expired and unreferenced notifications whose retention has passed and finish
    abandoned creates, in the shards whose purger lease this replica holds or takes."""

    async def purge() -> float:
        done = await store.purge(limit=batch, interval_s=interval_s)
        metrics.PURGER_SHARDS.set(done.shards)
        if done.deleted:
            metrics.PURGED.inc(done.deleted)
            log.info("purged %d notifications past their retention", done.deleted)
        if done.recovered:
            metrics.CREATES_RECOVERED.inc(done.recovered)
            log.warning("finished %d creates whose request stopped before every shard had them", done.recovered)
        return interval_s

    await repeat(purge, what="purge notifications", stopping=stopping, dependency=REDIS)

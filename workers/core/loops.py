"""Small background loops of core: the purger."""

from __future__ import annotations

import asyncio
import logging

from workers.common.runtime.assignment import ShardAssignment
from workers.common.runtime.faults import REDIS
from workers.common.runtime.retry import repeat
from workers.core import metrics
from workers.core.store import Store

log = logging.getLogger(__name__)


async def purge_loop(
    store: Store, *, interval_s: float, batch: int, stopping: asyncio.Event, shards: ShardAssignment | None = None
) -> None:
    """Every `interval_s`, purge expired and unreferenced notifications whose retention has passed and finish
    abandoned creates, in this replica's `shards` (every shard without an assignment) whose purger lease it
    holds or takes: the assignment spreads the shards over the replicas, the lease keeps two replicas that see
    the membership differently for a moment from purging one shard together."""

    async def purge() -> float:
        done = await store.purge(limit=batch, interval_s=interval_s, shards=None if shards is None else shards.mine)
        metrics.PURGER_SHARDS.set(done.shards)
        if done.deleted:
            metrics.PURGED.inc(done.deleted)
            log.info("purged %d notifications past their retention", done.deleted)
        if done.recovered:
            metrics.CREATES_RECOVERED.inc(done.recovered)
            log.warning("finished %d creates whose request stopped before every shard had them", done.recovered)
        return interval_s

    await repeat(purge, what="purge notifications", stopping=stopping, dependency=REDIS)

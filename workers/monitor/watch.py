"""One monitor cycle: read the indexes (never SCAN), judge, log, set the gauges, write the findings hash.

Every monitor replica reads every shard, unlike the pullers, which spread the shards over their replicas
(workers/common/runtime/assignment.py). Its findings are whole-stream figures: the findings hash is one key
that the controller copies into the NotificationStream status as it stands, and the alert rules take the
`max` of the gauges over the replicas. A replica reporting only its shards would make both wrong until a
reader summed the parts. The monitor only reads (one ZRANGE per shard, one LLEN per pending user, per
interval of seconds), so a second replica costs little and merely writes the same figures again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys
from workers.common.runtime.faults import REDIS
from workers.common.runtime.mapping_store import MappingCache
from workers.common.runtime.retry import repeat
from workers.monitor import metrics
from workers.monitor.findings import Findings, judge
from workers.monitor.settings import MonitorSettings

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, redis: aioredis.Redis, *, keys: BusKeys, settings: MonitorSettings) -> None:
        self._redis = redis
        self.keys = keys
        self.settings = settings
        self.mapping = MappingCache(redis, keys=keys, refresh_s=0)
        self.cycles = 0
        self.alerts = 0
        self._was_quiet = True

    async def run(self, stopping: asyncio.Event) -> None:
        """A cycle every interval until `stopping`; while Redis is away the cycle is retried, not skipped."""
        await repeat(self.cycle, what="inspect the stream", stopping=stopping, dependency=REDIS)

    async def cycle(self) -> float:
        """Run one cycle; returns the interval to wait before the next."""
        stream_settings = await self.mapping.stream_settings()
        stale_after = self.settings.stale_after_s or stream_settings.stale_after_s
        findings = await self.inspect(stale_after_s=stale_after)
        self._report(findings, stale_after_s=stale_after)
        await self.publish(findings)
        return self.settings.interval_s or stream_settings.monitor_interval_s

    async def inspect(self, *, stale_after_s: float) -> Findings:
        mapping = await self.mapping.get()
        pipe = self._redis.pipeline(transaction=False)
        for shard in self.keys.shards:
            pipe.zrange(self.keys.pending_since(shard), 0, -1, withscores=True)
        users = [(str(user), float(score)) for since in await pipe.execute() for user, score in since]
        pipe = self._redis.pipeline(transaction=False)
        for user, _ in users:
            pipe.llen(self.keys.pending(user))
        lengths = {user: int(n) for (user, _), n in zip(users, await pipe.execute(), strict=True)}
        return judge(
            pending_since=users,
            lengths=lengths,
            valid_users=set(mapping.user_brands),
            stale_after_s=stale_after_s,
            now_s=time.time(),
        )

    def _report(self, findings: Findings, *, stale_after_s: float) -> None:
        stream = self.keys.stream
        self.cycles += 1
        metrics.STALE_USERS.labels(stream).set(len(findings.stale))
        metrics.INVALID_USERS.labels(stream).set(len(findings.invalid))
        metrics.BACKLOG_ENTRIES.labels(stream).set(findings.backlog_entries)
        metrics.OLDEST_PENDING.labels(stream).set(findings.oldest_pending_s)
        metrics.CYCLES.labels(stream, "quiet" if findings.quiet else "alert").inc()
        named = [f"{u} ({age:.0f}s)" for u, age in findings.stale]
        self._alert(f"stale users, oldest entry older than {stale_after_s:.0f}s", named)
        self._alert(
            "invalid users hold data but belong to no brand", [f"{u} ({n} entries)" for u, n in findings.invalid]
        )
        if findings.quiet:
            log.info(
                "stream %s quiet%s: backlog %d entries, oldest %.1fs",
                stream,
                "" if self._was_quiet else " again",
                findings.backlog_entries,
                findings.oldest_pending_s,
            )
        self._was_quiet = findings.quiet

    def _alert(self, what: str, users: list[str]) -> None:
        """One alert line naming up to `max_users_logged` users; nothing when `users` is empty."""
        if not users:
            return
        self.alerts += 1
        limit = self.settings.max_users_logged
        shown = ", ".join(users[:limit])
        more = f" and {len(users) - limit} more" if len(users) > limit else ""
        log.warning("ALERT stream %s: %d %s: %s%s", self.keys.stream, len(users), what, shown, more)

    async def publish(self, findings: Findings) -> None:
        await self._redis.hset(
            self.keys.findings,
            mapping={
                "stale_users": len(findings.stale),
                "invalid_users": len(findings.invalid),
                "backlog_entries": findings.backlog_entries,
                "oldest_pending_seconds": round(findings.oldest_pending_s, 3),
                "invalid": json.dumps([u for u, _ in findings.invalid[:100]]),
                "stale": json.dumps([u for u, _ in findings.stale[:100]]),
                "updated_at": round(time.time(), 3),
            },
        )

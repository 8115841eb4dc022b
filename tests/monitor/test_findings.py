"""The monitor's judgement and its reading of the indexes (never the keyspace)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import write_mapping
from workers.monitor.findings import judge
from workers.monitor.settings import MonitorSettings
from workers.monitor.watch import Monitor


def test_stale_means_older_than_stale_after_and_invalid_means_no_brand() -> None:
    findings = judge(
        pending_since=[("1", 100.0), ("2", 118.0), ("x", 119.0)],
        lengths={"1": 3, "2": 1, "x": 2},
        valid_users={"1", "2"},
        stale_after_s=10,
        now_s=120.0,
    )
    assert findings.stale == [("1", 20.0)]
    assert findings.invalid == [("x", 2)]
    assert findings.backlog_entries == 6
    assert findings.oldest_pending_s == 20.0
    assert not findings.quiet


async def test_stale_users_alert_and_findings_reach_redis(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": ["1", "2"]}}))
    now = time.time()
    await redis.rpush(keys.pending("1"), "B|r1|A|1|1", "B|r2|A|1|1")
    await redis.zadd(keys.pending_since(shard_of("1", DEFAULT_SHARDS)), {"1": now - 60})
    await redis.zadd(keys.pending_since(shard_of("2", DEFAULT_SHARDS)), {"2": now})
    await redis.set(f"nf:{stream}:u:{{2}}:pending:decoy", "not read")  # a key the monitor must not scan for
    monitor = Monitor(redis, keys=keys, settings=MonitorSettings(stale_after_s=30))
    findings = await monitor.inspect(stale_after_s=30)
    assert [user for user, _ in findings.stale] == ["1"]
    assert findings.backlog_entries == 2
    await monitor.publish(findings)
    assert await redis.hget(keys.findings, "stale_users") == "1"
    assert await redis.hget(keys.findings, "invalid_users") == "0"

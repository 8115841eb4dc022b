"""One Redis node against a Redis Cluster of 3 masters (and 3 replicas), in the same invocation.

The same three jobs on each: the pusher's write path (entries fanned out to 20,000 users, the 16 shards'
scripts), the puller draining those users (one entry each), and core's store creating notifications for one
user each (the user's shard, registered in the producer id's home shard). Then how evenly keys and work spread:
each shard's share of the users against the mean, each master's share of the keys, and each master's share of
the Redis CPU each job used on the cluster. One Python process drives each job, as one room replica does; a
cluster adds masters for more replicas to use, it does not make one process faster (docs/scaling.md). The
cluster runs with NOTIFIER_REDIS_WAIT_REPLICAS=1 as deployed (`with WAIT`) and without it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio as aioredis

from tests.bench.bus import CountingSink
from tests.bench.harness import Bench, Row
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.stream import StreamSettings
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.connections import redis_client
from workers.common.runtime.mapping_store import write_mapping
from workers.common.runtime.replication import require_replicas
from workers.core.model import Stored, new_event
from workers.core.store import Store
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries

GROUP = "single node vs Redis Cluster"


async def node_cpu_s(redis: aioredis.Redis) -> dict[str, float]:
    """CPU seconds each Redis server has used (one node; each of a cluster's primaries)."""
    if isinstance(redis, aioredis.RedisCluster):
        info = await redis.info("cpu", target_nodes=aioredis.RedisCluster.PRIMARIES)
    else:
        info = await redis.info("cpu")
    nodes = info if all(isinstance(v, dict) for v in info.values()) else {"node": info}
    return {name: float(n["used_cpu_user"]) + float(n["used_cpu_sys"]) for name, n in nodes.items()}


class Work:
    """Redis CPU per job: in all (per item) and per node (how evenly a job's work spreads over the masters)."""

    def __init__(self) -> None:
        self.per_item: dict[str, float] = {}
        self.by_node: dict[str, dict[str, float]] = {}

    async def measure(self, redis: aioredis.Redis, job: str) -> _Measuring:
        return _Measuring(self, redis, job, await node_cpu_s(redis))


class _Measuring:
    def __init__(self, work: Work, redis: aioredis.Redis, job: str, before: dict[str, float]) -> None:
        self.work, self.redis, self.job, self.before = work, redis, job, before

    async def done(self, items: int) -> None:
        after = await node_cpu_s(self.redis)
        spent = {node: after[node] - self.before.get(node, 0.0) for node in after}
        self.work.by_node[self.job] = spent
        self.work.per_item[self.job] = sum(spent.values()) / items


async def bus_jobs(redis: aioredis.Redis, *, users: int, cpu: Work) -> tuple[float, float]:
    """(entries written/s by the pusher's write path, users drained/s by one puller)."""
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    keys = BusKeys(stream)
    names = [f"u{i}" for i in range(users)]
    brands = {f"B{b}": names[b : b + 1000] for b in range(0, users, 1000)}
    spec = {"brands": brands, "digest": {"windowSeconds": 0, "maxItems": 1000}}
    await write_mapping(redis, keys=keys, spec=parse_spec(spec))
    settings = StreamSettings(window_s=0, max_items=1000)
    now_ms = int(time.time() * 1000)
    measuring = await cpu.measure(redis, "push")
    started = time.perf_counter()
    for start in range(0, users, 1000):
        entry = f"B{start}|r{start}|A|{now_ms}|{now_ms}"
        batch = {u: [entry] for u in names[start : start + 1000]}
        await append_entries(redis, keys=keys, by_user=batch, settings=settings, now_s=now_ms / 1000 - 1)
    pushed = users / (time.perf_counter() - started)
    await measuring.done(users)
    sink = CountingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(batch_users=500))
    measuring = await cpu.measure(redis, "pull")
    started = time.perf_counter()
    while await puller.cycle():
        pass
    pulled = users / (time.perf_counter() - started)
    await measuring.done(users)
    assert sink.entries == users, (sink.entries, users)
    await _drop(redis, f"nf:{stream}:*")
    return pushed, pulled


async def core_creates(redis: aioredis.Redis, *, count: int, cpu: Work, concurrency: int = 64) -> float:
    """Notifications created per second through core's store, `concurrency` creates in flight."""
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    store = Store(redis, stream=stream, retention_s=3600)
    body = b"x" * 200
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            stored = Stored(id=f"n{n:08d}", created_ms=0, created_by="bench", content_type="text/plain", content=body)
            users = [f"user{n % 1000}"]
            event = new_event(stored, now_s=time.time())
            await store.create(stored, producer_notification_id=str(n), users=users, invalidate_at=None, event=event)

    measuring = await cpu.measure(redis, "create")
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = count / (time.perf_counter() - started)
    await measuring.done(count)
    copies = [0] * store.keys.shard_count
    for shard in store.keys.shards:
        async for _ in redis.scan_iter(match=store.keys.notification(shard, "*"), count=5000):
            copies[shard] += 1
    cpu.by_node["stored notifications by shard"] = {str(shard): float(n) for shard, n in enumerate(copies)}
    await _drop(redis, f"nf:{stream}:core:*")
    return rate


async def _drop(redis: aioredis.Redis, pattern: str) -> None:
    found = [key async for key in redis.scan_iter(match=pattern, count=5000)]
    for start in range(0, len(found), 1000):
        await redis.delete(*found[start : start + 1000])


def largest_share(counts: Sequence[float]) -> float:
    """The largest part's count over the mean count (1.0: perfectly even)."""
    return max(counts) / (sum(counts) / len(counts))


def master_shares(cluster: RedisCluster, keys: int) -> float:
    """Write `keys` bus-shaped keys (users of every shard) and compare the masters' key counts."""
    import redis as sync_redis

    client = sync_redis.RedisCluster.from_url(cluster.url.replace("redis+cluster://", "redis://").split(",")[0])
    try:
        bus = BusKeys("spread")
        pipe = client.pipeline()
        for i in range(keys):
            pipe.set(bus.pending(f"user-{i}"), 1)
        pipe.execute()
        counts = [int(client.execute_command("DBSIZE", target_nodes=node)) for node in client.get_primaries()]
        client.flushall(target_nodes=sync_redis.RedisCluster.PRIMARIES)
    finally:
        client.close()
    return largest_share(counts)


async def run(bench: Bench) -> None:
    users = 5_000 if bench.quick else 20_000
    creates = 2_000 if bench.quick else 10_000
    with tempfile.TemporaryDirectory(prefix="nf-bench-cluster-") as directory:
        single = RedisServer(Path(directory) / "single").start()  # its CPU counts only this benchmark's work
        cluster = RedisCluster(Path(directory) / "cluster").start()
        try:
            results: dict[str, tuple[float, float, float]] = {}
            works: dict[str, Work] = {}
            for name, url, replicas in (
                ("single node", single.url, 0),
                ("cluster", cluster.url, 0),
                ("cluster, WAIT 1", cluster.url, 1),
            ):
                redis = redis_client(url, decode_responses=True)
                require_replicas(redis, replicas, timeout_s=1.0)
                works[name] = work = Work()
                pushed, pulled = await bus_jobs(redis, users=users, cpu=work)
                created = await core_creates(redis, count=creates, cpu=work)
                await redis.aclose()
                results[name] = (pushed, pulled, created)
            base = results["single node"]
            for index, (job, unit) in enumerate(
                (
                    ("pusher write path", "entries/s"),
                    ("puller, 1 entry per user", "users/s"),
                    ("core creates", "creates/s"),
                )
            ):
                for name, figures in results.items():
                    row = Row(GROUP, f"{job}, {name}", figures[index], unit)
                    if name != "single node":
                        row.ratios["single node"] = figures[index] / base[index]
                    bench.add(row)
            for job, key, unit in (
                ("entries", "push", "entries/s"),
                ("users pulled", "pull", "users/s"),
                ("creates", "create", "creates/s"),
            ):
                each = works["single node"].per_item[key]
                note = f"{each * 1e6:.1f} us of Redis CPU each"
                bench.add(Row(GROUP, f"one Redis core's ceiling, {job}", 1 / each, unit, note=note))
            for key, job in (("push", "entries written"), ("pull", "users pulled"), ("create", "creates")):
                spent = list(works["cluster"].by_node[key].values())
                bench.add(
                    Row(GROUP, f"busiest master / mean Redis CPU, {job}", 100 * largest_share(spent), "% of mean")
                )
            stored = list(works["single node"].by_node["stored notifications by shard"].values())
            bench.add(
                Row(GROUP, f"largest store shard / mean, {creates:,} creates", 100 * largest_share(stored), "% of mean")
            )
            shards = [0] * len(BusKeys("spread").shards)
            for i in range(users):
                shards[shard_of(f"user-{i}", DEFAULT_SHARDS)] += 1
            bench.add(
                Row(GROUP, f"largest bus shard / mean, {users:,} users", 100 * largest_share(shards), "% of mean")
            )
            bench.add(
                Row(
                    GROUP,
                    f"largest master / mean keys, {users:,} users",
                    100 * master_shares(cluster, users),
                    "% of mean",
                )
            )
        finally:
            cluster.stop()
            single.stop()

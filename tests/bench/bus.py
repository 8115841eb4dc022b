"""Review bus benchmarks: pusher and puller throughput against references measured in the same run.

References: `redis-benchmark -t lpush -P 32` (Redis's own pipelined LPUSH rate) and a naive Python loop
that pays one round trip per entry. The pusher is measured on its hot path (decode ReviewEvent, fan out,
one pipeline per batch) in one and in two processes, and as a whole room fed by RabbitMQ.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

import aio_pika
import redis.asyncio as aioredis

from tests.bench.harness import Bench, Row
from tests.conftest import AMQP_URL, REDIS_URL, delete_topology, free_port
from workers.common.contract.keys import BusKeys
from workers.common.contract.names import Topology
from workers.common.contract.stream import Mapping, StreamSettings
from workers.common.contract.streamspec import parse_spec
from workers.common.contract.wire import ReviewEvent, to_timestamp
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.mapping_store import read_mapping, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest
from workers.puller.worker import Puller
from workers.pusher.fanout import FanOut, entry_of, event_key
from workers.pusher.publisher import generated_event, publish_events
from workers.pusher.writer import append_entries

BRANDS = 50
USERS_PER_BRAND = 20
GROUP = "review bus"


def spec_for(window_s: float, max_items: int) -> dict[str, object]:
    brands = {f"Brand{b}": [f"u{b}-{i}" for i in range(USERS_PER_BRAND)] for b in range(BRANDS)}
    return {"brands": brands, "digest": {"windowSeconds": window_s, "maxItems": max_items}}


async def cleanup(redis: aioredis.Redis, stream: str) -> None:
    keys = [k async for k in redis.scan_iter(match=f"nf:{stream}:*", count=5000)]
    for start in range(0, len(keys), 5000):
        await redis.delete(*keys[start : start + 5000])


def redis_benchmark_lpush(n: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "-t", "lpush", "-P", "32", "-n", str(n), "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "del", "mylist"], capture_output=True, check=True)
    match = re.search(r"LPUSH: ([\d.]+) requests per second", out)
    if not match:
        raise RuntimeError(f"unexpected redis-benchmark output: {out!r}")
    return float(match.group(1))


async def naive_loop(n: int) -> float:
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"nf:bench-naive-{uuid.uuid4().hex[:6]}:list"
    started = time.perf_counter()
    for i in range(n):
        await redis.rpush(key, f"Brand1|r{i}|A|1|1")
    elapsed = time.perf_counter() - started
    await redis.delete(key)
    await redis.aclose()
    return n / elapsed


def make_events(n: int, brands: Sequence[str]) -> list[bytes]:
    now = to_timestamp(time.time())
    return [
        ReviewEvent(
            brand_id=brands[i % len(brands)],
            review_id=f"r{i}",
            kind=i % 3,  # type: ignore[arg-type]
            occurred_at=now,
        ).SerializeToString()
        for i in range(n)
    ]


async def pusher_hot_path(stream: str, events: int, batch: int) -> tuple[int, float]:
    """Decode, fan out and write `events` in batches; returns (entries written, seconds)."""
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = BusKeys(stream)
    mapping: Mapping = await read_mapping(redis, keys=keys)
    bodies = make_events(events, sorted(mapping.brand_users))
    settings = StreamSettings(window_s=3600, max_items=10**9)
    written = 0
    started = time.perf_counter()
    for start in range(0, events, batch):
        now_s = time.time()
        now_ms = int(now_s * 1000)
        fan = FanOut()
        for body in bodies[start : start + batch]:
            review = ReviewEvent.FromString(body)
            entry = entry_of(review, now_ms=now_ms)
            fan.add(entry, mapping.brand_users[entry.brand], key=event_key(review))
        written += await append_entries(
            redis, keys=keys, by_user=fan.by_user, settings=settings, now_s=now_s, pushed=fan.pushed
        )
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return written, elapsed


def _pusher_process(stream: str, events: int, batch: int, queue: multiprocessing.Queue[tuple[int, float]]) -> None:
    queue.put(asyncio.run(pusher_hot_path(stream, events, batch)))


def pusher_processes(stream: str, *, processes: int, events: int, batch: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, float]] = ctx.Queue()
    workers = [ctx.Process(target=_pusher_process, args=(stream, events, batch, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(n for n, _ in outcomes) / max(s for _, s in outcomes)


async def pusher_room_via_broker(stream: str, events: int) -> tuple[float, float]:
    """Prefill the reviews queue, start a real pusher process, time the drain; returns (events/s, entries/s)."""
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    topology = Topology(namespace)
    connection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    declared = await declare_topology(channel, topology)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    brands = sorted((await read_mapping(redis, keys=BusKeys(stream))).brand_users)
    import random

    rng = random.Random(1)
    await publish_events(
        declared.reviews, topology=topology, events=lambda _: generated_event(brands, rng=rng), count=events
    )
    env = {
        "NOTIFIER_STREAM": stream,
        "NOTIFIER_AMQP_NAMESPACE": namespace,
        "NOTIFIER_OPS_PORT": str(free_port()),
        "NOTIFIER_LOG_LEVEL": "WARNING",
        "PATH": "/usr/bin:/bin",
    }
    queue = declared.reviews_queue
    assert (await queue.declare()).message_count == events
    process = subprocess.Popen([sys.executable, "-m", "workers.pusher"], env=env)
    try:
        while (left := (await queue.declare()).message_count or 0) == events:
            await asyncio.sleep(0.01)
        started, counted = time.perf_counter(), left
        while (await queue.declare()).message_count:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        events = counted
    finally:
        process.terminate()
        process.wait()
    await delete_topology(connection, topology)
    await connection.close()
    await redis.aclose()
    return events / elapsed, events * USERS_PER_BRAND / elapsed


class CountingSink:
    def __init__(self) -> None:
        self.entries = 0

    async def deliver(self, digests: Sequence[Digest]) -> None:
        self.entries += sum(d.entries for d in digests)

    async def close(self) -> None:
        return None


async def puller_drain(stream: str, *, users: int, per_user: int) -> tuple[float, float]:
    """Fill `users` x `per_user` due entries, drain them with one puller; returns (entries/s, users/s)."""
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = BusKeys(stream)
    brand_users = {f"Brand{b}": [f"p{b}-{i}" for i in range(users // BRANDS)] for b in range(BRANDS)}
    await write_mapping(
        redis, keys=keys, spec=parse_spec({"brands": brand_users, "digest": {"windowSeconds": 0, "maxItems": per_user}})
    )
    settings = StreamSettings(window_s=0, max_items=per_user)
    now_ms = int(time.time() * 1000)
    for brand, members in brand_users.items():
        entries = [f"{brand}|r{i}|A|{now_ms}|{now_ms}" for i in range(per_user)]
        await append_entries(
            redis, keys=keys, by_user={u: entries for u in members}, settings=settings, now_s=now_ms / 1000 - 1
        )
    sink = CountingSink()
    puller = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(batch_users=500))
    started = time.perf_counter()
    while await puller.cycle():
        pass
    elapsed = time.perf_counter() - started
    await redis.aclose()
    assert sink.entries == users * per_user, (sink.entries, users * per_user)
    return sink.entries / elapsed, users / elapsed


async def run(bench: Bench) -> None:
    import logging

    logging.getLogger("workers").setLevel(logging.WARNING)
    scale = 0.2 if bench.quick else 1.0
    stream = f"bench-{uuid.uuid4().hex[:6]}"
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    await write_mapping(redis, keys=BusKeys(stream), spec=parse_spec(spec_for(3600, 100_000)))
    try:
        lpush = bench.add(
            Row(
                GROUP,
                "redis-benchmark LPUSH -P 32",
                redis_benchmark_lpush(int(2_000_000 * scale)),
                "ops/s",
                "reference",
            )
        )
        naive = bench.add(
            Row(
                GROUP,
                "naive loop, one round trip per entry",
                await naive_loop(int(20_000 * scale)),
                "entries/s",
                "reference",
            )
        )
        events = int(20_000 * scale)
        one = await pusher_hot_path(stream, events, 1000)
        rows = [
            Row(
                GROUP,
                "pusher hot path, 1 process",
                one[0] / one[1],
                "entries/s",
                f"{USERS_PER_BRAND} users per brand, batches of 1000 events",
            ),
            Row(
                GROUP,
                "pusher hot path, 2 processes",
                pusher_processes(stream, processes=2, events=events, batch=1000),
                "entries/s",
                "sum of both",
            ),
        ]
        for row in rows:
            row.ratios = {"redis-benchmark": row.value / lpush.value, "naive loop": row.value / naive.value}
            bench.add(row)
        rows[0].target = ">= 0.20x redis-benchmark per process"
        await cleanup(redis, stream)
        await write_mapping(redis, keys=BusKeys(stream), spec=parse_spec(spec_for(3600, 100_000)))
        room_events, room_entries = await pusher_room_via_broker(stream, int(20_000 * scale))
        bench.add(
            Row(
                GROUP,
                "pusher room fed by RabbitMQ",
                room_events,
                "events/s",
                f"{room_entries:,.0f} entries/s; broker-bound",
            )
        )
        await cleanup(redis, stream)
        entries_s, users_s = await puller_drain(stream, users=int(5_000 * scale), per_user=40)
        row = bench.add(
            Row(
                GROUP,
                "puller drain, 1 process",
                entries_s,
                "entries/s",
                f"{users_s:,.0f} users/s, 40 entries per user",
                target=">= 50,000 entries/s",
            )
        )
        row.ratios = {"redis-benchmark": entries_s / lpush.value, "naive loop": entries_s / naive.value}
        bench.add(Row(GROUP, "puller drain, users", users_s, "users/s", "one digest each"))
    finally:
        await cleanup(redis, stream)
        await redis.aclose()

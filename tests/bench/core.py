"""Core benchmarks: creates/s of one core process (unicast, 1 KiB content) under a concurrent load generator,
latency at a fixed 1k creates/s, undelivered polling across many users, feed reads across the same users,
and the catch-up of one device that missed 1,000 notifications (paging the feed as `notifier listen` does).

Core runs as a real subprocess (`python -m workers.core`, log level WARNING). The load generator is
tests/bench/http.py, a minimal keep-alive HTTP/1.1 client, so the generator costs less CPU than core.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence

import aio_pika
import httpx
import redis.asyncio as aioredis

from tests.bench.harness import Bench, Row
from tests.bench.http import closed_loop, http_request, open_loop
from tests.conftest import AMQP_URL, REDIS_URL, delete_topology, free_port, room_env
from tests.support.processes import RoomProcess as CoreProcess
from tests.support.processes import core_process
from workers.client.http import read_feed
from workers.common.contract import paths
from workers.common.contract.names import Topology
from workers.common.runtime.auth import mint_token

GROUP = "core"
SECRET = "bench-secret-" + "0123456789abcdef" * 4
CONTENT = base64.b64encode(os.urandom(1024)).decode()
CATCH_UP_PAGE = 100


def create_request(token: str, *, user: str, key: str) -> bytes:
    body = {
        "invalidate_at": None,
        "user_ids": [user],
        "producer_notification_id": key,
        "content_type": "application/octet-stream",
        "content": CONTENT,
    }
    return http_request("POST", paths.UNDELIVERED, token=token, body=json.dumps(body).encode())


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def create_buckets(core: CoreProcess) -> dict[float, float]:
    """Cumulative counts of core's own create-latency histogram, by bucket upper bound (seconds)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{core.ops_port}/metrics")).text
    wanted = f'route="{paths.UNDELIVERED}"'
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("notifier_core_request_duration_seconds_bucket{")
            and wanted in line
            and 'method="POST"' in line
        ):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of what was observed between two readings."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return float("inf")


def row(name: str, value: float, unit: str, *, note: str = "", target: str = "") -> Row:
    return Row(group=GROUP, name=name, value=value, unit=unit, note=note, target=target)


def ms(seconds: float) -> float:
    return seconds * 1000


async def run(bench: Bench) -> None:
    stream = f"bench-core-{uuid.uuid4().hex[:6]}"
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    env = {**os.environ, **room_env(stream, namespace, NOTIFIER_JWT_SECRET=SECRET, NOTIFIER_LOG_LEVEL="WARNING")}
    creates = 3_000 if bench.quick else 20_000
    paced_s = 3 if bench.quick else 10
    users = 2_000 if bench.quick else 10_000
    token = mint_token(secret=SECRET, sub="bench-producer", roles=["notifier_produce"], ttl_s=3600)
    key = iter(range(10**9))

    def creates_for(n: int, user: Callable[[int], str]) -> list[bytes]:
        return [create_request(token, user=user(i), key=f"k{next(key)}") for i in range(n)]

    try:
        async with core_process(env, http_port=free_port(), ops_port=free_port()) as core:
            await closed_loop(core.http_port, creates_for(500, lambda i: f"warm-{i % 50}"), connections=16)
            rate, latencies = await closed_loop(
                core.http_port, creates_for(creates, lambda i: f"u-{i % 1000}"), connections=32
            )
            bench.add(row("creates/s, 32 connections", rate, "ops/s", target=">= 2000", note="unicast, 1 KiB"))
            bench.add(row("create p50 at full load", ms(statistics.median(latencies)), "ms"))
            bench.add(row("create p99 at full load", ms(percentile(latencies, 0.99)), "ms"))

            before = await create_buckets(core)
            requests = creates_for(1000 * paced_s, lambda i: f"p-{i % 1000}")
            paced = await open_loop(
                core.http_port, len(requests), lambda i, _planned: requests[i], rate=1000, connections=64
            )
            after = await create_buckets(core)
            bench.add(row("create p50 at 1k creates/s", ms(statistics.median(paced)), "ms"))
            bench.add(row("create p99 at 1k creates/s", ms(percentile(paced, 0.99)), "ms", target="< 50"))
            server = "core's own histogram: upper bound of the bucket"
            bench.add(
                row("create p99 at 1k creates/s, in core", ms(bucket_quantile(before, after, 0.99)), "ms", note=server)
            )

            await closed_loop(core.http_port, creates_for(users, lambda i: f"poll-{i}"), connections=32)
            note = f"{users:,} users, one notification each"
            await every_user_reads(bench, core, paths.UNDELIVERED, users=users, names=UNDELIVERED_ROWS, note=note)
            await feed(bench, core, users=users, creates=creates_for)
            outbox = await core.metric("notifier_core_outbox_entries", {})
            bench.add(row("outbox entries left at the end", outbox, "entries", note="relay keeps up when ~0"))
    finally:
        await cleanup(stream, Topology(namespace=namespace))


UNDELIVERED_ROWS = ("undelivered polls/s, 32 connections", "poll p50", "poll p99")
FEED_ROWS = ("feed reads/s, 32 connections", "feed read p50", "feed read p99")


async def every_user_reads(
    bench: Bench, core: CoreProcess, path: str, *, users: int, names: tuple[str, str, str], note: str
) -> None:
    """One GET of `path` by each of the users `poll-<i>`, 32 at a time: the rate, p50 and p99 rows."""
    reads = [
        http_request("GET", path, token=mint_token(secret=SECRET, sub=f"poll-{i}", ttl_s=3600)) for i in range(users)
    ]
    rate, latencies = await closed_loop(core.http_port, reads, connections=32)
    bench.add(row(names[0], rate, "ops/s", note=note))
    bench.add(row(names[1], ms(statistics.median(latencies)), "ms"))
    bench.add(row(names[2], ms(percentile(latencies, 0.99)), "ms"))


async def feed(bench: Bench, core: CoreProcess, *, users: int, creates: Callable[..., list[bytes]]) -> None:
    """Feed reads of every user (each has one notification, already taken by the undelivered poll), then one
    device catching up on 1,000 notifications it missed, 100 a page, from where its cursor was."""
    note = f"{users:,} users, one entry each, no cursor"
    await every_user_reads(bench, core, paths.FEED, users=users, names=FEED_ROWS, note=note)

    device = mint_token(secret=SECRET, sub="away", ttl_s=3600)
    url = f"http://127.0.0.1:{core.http_port}"
    async with httpx.AsyncClient(timeout=30) as http:
        cursor = (await read_feed(http, core_url=url, token=device, after=None, limit=CATCH_UP_PAGE)).next
        missed = 1_000
        await closed_loop(core.http_port, creates(missed, lambda _: "away"), connections=8)
        started = time.perf_counter()
        shown, pages = 0, 0
        while True:
            page = await read_feed(http, core_url=url, token=device, after=cursor, limit=CATCH_UP_PAGE)
            shown, pages, cursor = shown + len(page.notifications), pages + 1, page.next
            if len(page.notifications) < CATCH_UP_PAGE:
                break
        elapsed = time.perf_counter() - started
    if shown != missed:
        raise RuntimeError(f"the catch-up showed {shown} of {missed} notifications")
    note = f"{missed:,} missed, 1 KiB each, {pages} pages of {CATCH_UP_PAGE}"
    bench.add(row("one device caught up on 1,000 missed", ms(elapsed), "ms", note=note))


async def cleanup(stream: str, topology: Topology) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(match=f"nf:{stream}:*", count=5000)]
    for start in range(0, len(keys), 5000):
        await redis.delete(*keys[start : start + 5000])
    await redis.aclose()
    connection = await aio_pika.connect_robust(AMQP_URL)
    with contextlib.suppress(aio_pika.exceptions.AMQPError):
        await delete_topology(connection, topology)
    await connection.close()

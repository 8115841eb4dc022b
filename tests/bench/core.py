"""Core benchmarks: creates/s of one core process (unicast, 1 KiB content) under a concurrent load generator,
latency at a fixed 1k creates/s, and undelivered polling across many users.

Core runs as a real subprocess (`python -m workers.core`, log level WARNING). The load generator is a
minimal keep-alive HTTP/1.1 client on raw asyncio streams, so the generator costs less CPU than core.
"""

from __future__ import annotations

import asyncio
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
from tests.conftest import AMQP_URL, REDIS_URL, delete_topology, free_port, room_env
from tests.core.processes import CoreProcess, core_process
from workers.common import paths
from workers.common.auth import mint_token
from workers.common.topology import Topology

GROUP = "core"
SECRET = "bench-secret-" + "0123456789abcdef" * 4
CONTENT = base64.b64encode(os.urandom(1024)).decode()


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        self.writer.close()


def http_request(method: str, path: str, *, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: core\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


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


async def closed_loop(
    port: int, requests: Sequence[bytes], *, connections: int, expect: int = 200
) -> tuple[float, list[float]]:
    """Send every request as fast as `connections` keep-alive connections allow; (rate/s, latencies in s)."""
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    cursor = iter(requests)

    async def worker(conn: Connection) -> None:
        for request in cursor:
            started = time.perf_counter()
            status, _ = await conn.send(request)
            latencies.append(time.perf_counter() - started)
            if status != expect:
                raise RuntimeError(f"core answered {status}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return len(requests) / elapsed, latencies


async def open_loop(port: int, requests: Sequence[bytes], *, rate: float, connections: int) -> list[float]:
    """Send request i at start + i/rate (free connections permitting); latency counts from the planned time."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []

    async def one(planned: float, request: bytes) -> None:
        conn = await pool.get()
        status, _ = await conn.send(request)
        latencies.append(time.perf_counter() - planned)
        pool.put_nowait(conn)
        if status != 200:
            raise RuntimeError(f"core answered {status}")

    start = time.perf_counter()
    sent: list[asyncio.Task[None]] = []
    for i, request in enumerate(requests):
        planned = start + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(asyncio.create_task(one(planned, request)))
    await asyncio.gather(*sent)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies


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
            paced = await open_loop(
                core.http_port, creates_for(1000 * paced_s, lambda i: f"p-{i % 1000}"), rate=1000, connections=64
            )
            after = await create_buckets(core)
            bench.add(row("create p50 at 1k creates/s", ms(statistics.median(paced)), "ms"))
            bench.add(row("create p99 at 1k creates/s", ms(percentile(paced, 0.99)), "ms", target="< 50"))
            server = "core's own histogram: upper bound of the bucket"
            bench.add(
                row("create p99 at 1k creates/s, in core", ms(bucket_quantile(before, after, 0.99)), "ms", note=server)
            )

            await closed_loop(core.http_port, creates_for(users, lambda i: f"poll-{i}"), connections=32)
            polls = [
                http_request(
                    "GET",
                    paths.UNDELIVERED,
                    token=mint_token(secret=SECRET, sub=f"poll-{i}", ttl_s=3600),
                )
                for i in range(users)
            ]
            rate, latencies = await closed_loop(core.http_port, polls, connections=32)
            note = f"{users:,} users, one notification each"
            bench.add(row("undelivered polls/s, 32 connections", rate, "ops/s", note=note))
            bench.add(row("poll p50", ms(statistics.median(latencies)), "ms"))
            bench.add(row("poll p99", ms(percentile(latencies, 0.99)), "ms"))
            outbox = await core.metric("notifier_core_outbox_entries", {})
            bench.add(row("outbox entries left at the end", outbox, "entries", note="relay keeps up when ~0"))
    finally:
        await cleanup(stream, Topology(namespace=namespace))


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

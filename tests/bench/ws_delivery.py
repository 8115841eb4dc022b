"""ws_delivery benchmarks: idle connections and RSS per connection, acknowledged frames/s, delivery latency.

The room runs as its own process (`python -m workers.ws_delivery`, on uvloop); devices are raw WebSocket
clients in two load processes (tests/ws_delivery/devices.py), so the machine's two cores are shared by
the room, the load and, for the latency rows, core and RabbitMQ. Frame rates are measured with broadcast
UPDATED events (one event -> one frame per device, no confirmation to publish), counted by the room's
own `notifier_ws_messages_acked_total`. Latency rows use per-user NEW events at a fixed rate: from the
broker publish, and from core's POST (the whole path: core store, outbox relay, broker, room, device).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import aio_pika
import httpx
import redis.asyncio as aioredis

from tests.bench.harness import Bench, Row
from tests.bench.http import http_request, open_loop
from tests.conftest import AMQP_URL, REDIS_URL, free_port, room_env
from tests.support.metrics import sample
from tests.support.processes import ROOT, stop_process
from tests.support.waiting import wait_ready
from tests.ws_delivery import devices
from workers.common.contract import paths
from workers.common.contract.names import ROUTING_BY_STATUS, Topology
from workers.common.contract.wire import BrokerNotification, Notification, to_timestamp
from workers.common.runtime.auth import mint_token

GROUP = "ws_delivery"
SECRET = "bench-secret-0123456789-0123456789-0123456789"
LOAD_PROCESSES = 2
Timing = tuple[float, float, float]
"""(published, stamped by the room, received by the device) in unix seconds; see tests/ws_delivery/devices.py."""
CORE_CONNECTIONS = 32


class Server:
    def __init__(self, room: str, env: dict[str, str], log: Path) -> None:
        self.ops_port = free_port()
        self.port = free_port()
        out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"workers.{room}"],
            cwd=ROOT,
            env={**env, "NOTIFIER_HTTP_PORT": str(self.port), "NOTIFIER_OPS_PORT": str(self.ops_port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        await wait_ready(f"http://127.0.0.1:{self.ops_port}", exit_code=self.process.poll, timeout_s=60)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    async def acked(self, http: httpx.AsyncClient) -> float:
        text = (await http.get(f"http://127.0.0.1:{self.ops_port}/metrics")).text
        return sample("notifier_ws_messages_acked_total", text=text)

    async def gc_pauses(self, http: httpx.AsyncClient) -> dict[float, float]:
        """Cumulative counts of the process's `notifier_gc_pause_seconds`, all generations, by upper bound."""
        counts: dict[float, float] = {}
        for line in (await http.get(f"http://127.0.0.1:{self.ops_port}/metrics")).text.splitlines():
            if line.startswith("notifier_gc_pause_seconds_bucket{"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                key = float("inf") if bound == "+Inf" else float(bound)
                counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
        return counts

    def stop(self) -> None:
        stop_process(self.process, timeout_s=30)


class Load:
    """Device processes; users are spread over them round robin."""

    def __init__(self, port: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(LOAD_PROCESSES):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=devices.main, args=(child, port, SECRET), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    async def ask(self, *commands: tuple[object, ...]) -> list[object]:
        loop = asyncio.get_running_loop()
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        return list(await asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in self.pipes)))

    async def connect(self, users: Sequence[str]) -> int:
        """Connect more devices; returns how many are connected in all."""
        shares = [("connect", list(users[i::LOAD_PROCESSES])) for i in range(LOAD_PROCESSES)]
        return sum(int(n) for n in await self.ask(*shares))  # type: ignore[call-overload]

    async def timings(self) -> list[Timing]:
        found: list[Timing] = []
        for _, timings in await self.ask(*[("stats",)] * LOAD_PROCESSES):  # type: ignore[misc]
            found.extend(timings)
        return found

    async def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("quit",))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def event(nid: str, *, status: int, users: Sequence[str] = (), content: bytes = b"") -> bytes:
    n = Notification(id=nid, status=status, timestamp=to_timestamp(time.time()))  # type: ignore[arg-type]
    if status == Notification.NEW:
        n.content_type, n.content, n.created_by = "text/plain", content, "bench"
    else:
        n.seen = True
    return BrokerNotification(user_ids=list(users), notification=n).SerializeToString()


async def frames_per_second(
    server: Server, exchange: aio_pika.abc.AbstractExchange, *, devices_n: int, events: int
) -> float:
    """Broadcast `events` UPDATED events; acknowledged frames per second until every device acked every one."""
    async with httpx.AsyncClient() as http:
        target = await server.acked(http) + devices_n * events
        started = time.perf_counter()
        for i in range(events):
            body = event(f"b-{uuid.uuid4().hex[:8]}-{i}", status=Notification.UPDATED)
            await exchange.publish(aio_pika.Message(body), routing_key=ROUTING_BY_STATUS[Notification.UPDATED])
        async with asyncio.timeout(300):
            while await server.acked(http) < target:
                await asyncio.sleep(0.05)
    return devices_n * events / (time.perf_counter() - started)


async def at_rate(rate: float, seconds: float, send: object) -> float:
    """Call `send(i)` (a coroutine function) `rate` times a second for `seconds`, open loop; the rate achieved."""
    total, started, tasks = int(rate * seconds), time.perf_counter(), []
    for i in range(total):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(i)))  # type: ignore[operator]
    await asyncio.gather(*tasks)
    return total / (time.perf_counter() - started)


def percentiles(latencies: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


async def wait_timings(load: Load, expected: int) -> list[Timing]:
    found: list[Timing] = []
    async with asyncio.timeout(60):
        while len(found) < expected:
            found += await load.timings()
            await asyncio.sleep(0.2)
    return found


def longest_pause(before: dict[float, float], after: dict[float, float]) -> str:
    """Bounds the longest collection between two readings: the first bucket that holds every new one."""
    inf = float("inf")
    total = after[inf] - before.get(inf, 0.0)
    upper = next(bound for bound in sorted(after) if after[bound] - before.get(bound, 0.0) >= total)
    return f"{total:.0f} GC pauses in the room, the longest <= {upper * 1000:g} ms"


def latency_rows(bench: Bench, path: str, rate: float, timings: list[Timing], note: str) -> None:
    """p50/p99 of the whole path, and the note splits it at the room's stamp: before the room, room to device."""
    p50, p99 = percentiles([received - published for published, _, received in timings])
    _, before = percentiles([stamped - published for published, stamped, _ in timings])
    _, after = percentiles([received - stamped for _, stamped, received in timings])
    legs = f"p99 up to the room {before:.1f} ms, room -> device {after:.1f} ms"
    bench.add(Row(GROUP, f"{path} -> device p50 at {rate:.0f}/s", p50, "ms", note))
    bench.add(Row(GROUP, f"{path} -> device p99 at {rate:.0f}/s", p99, "ms", f"{note}; {legs}", target="< 100 ms"))


async def run(bench: Bench) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = (200, 500, 1000) if bench.quick else (1000, 5000, 10000)
    rate, seconds = (200.0, 3.0) if bench.quick else (1000.0, 5.0)
    stream, namespace = f"bench-{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}."
    env = {**os.environ, **room_env(stream, namespace, NOTIFIER_JWT_SECRET=SECRET, NOTIFIER_LOG_LEVEL="WARNING")}
    logs = Path(".bench")
    os.makedirs(logs, exist_ok=True)
    ws = Server("ws_delivery", env, logs / "ws_delivery.log")
    core = Server("core", env, logs / "core.log")
    amqp = await aio_pika.connect_robust(AMQP_URL)
    load: Load | None = None
    try:
        await ws.ready()
        await core.ready()
        channel = await amqp.channel(publisher_confirms=False)
        exchange = await channel.get_exchange(Topology(namespace).notifications_exchange)
        load = Load(ws.port)
        baseline = ws.rss_bytes()
        users = [f"u{i}" for i in range(sizes[-1])]
        connected = 0
        for size in sizes:
            began = time.perf_counter()
            connected = await load.connect(users[connected:size])
            note = f"connected in {time.perf_counter() - began:.1f}s"
            if size == sizes[-1]:
                per = (ws.rss_bytes() - baseline) / connected
                bench.add(Row(GROUP, f"idle connections in one process ({connected})", connected, "connections", note))
                bench.add(
                    Row(GROUP, "RSS per idle connection", per / 1024, "KiB", f"{connected} devices", target="<= 50 KiB")
                )
            events = max(5, 200_000 // size // (4 if bench.quick else 1))
            fps = await frames_per_second(ws, exchange, devices_n=connected, events=events)
            bench.add(
                Row(
                    GROUP,
                    f"acked frames/s, {connected} devices",
                    fps,
                    "frames/s",
                    f"{events} broadcasts",
                    target=">= 20k",
                )
            )
        latency_users = users[: min(1000, len(users))]

        async def publish(i: int) -> None:
            body = event(
                f"l-{i}",
                status=Notification.NEW,
                users=[latency_users[i % len(latency_users)]],
                content=f"t={time.time()}".encode(),
            )
            await exchange.publish(aio_pika.Message(body), routing_key=ROUTING_BY_STATUS[Notification.NEW])

        await load.timings()
        async with httpx.AsyncClient() as http:
            before = await ws.gc_pauses(http)
            achieved = await at_rate(rate, seconds, publish)
            timings = await wait_timings(load, int(rate * seconds))
            pauses = longest_pause(before, await ws.gc_pauses(http))
        note = f"{achieved:.0f}/s achieved, {connected} devices connected, {pauses}"
        latency_rows(bench, "broker publish", rate, timings, note)

        token = mint_token(secret=SECRET, sub="bench", roles=["notifier_produce"], ttl_s=3600)

        def create(i: int, planned: float) -> bytes:
            body = {
                "user_ids": [latency_users[i % len(latency_users)]],
                "producer_notification_id": f"p-{i}",
                "content_type": "text/plain",
                "content": base64.b64encode(f"t={planned}".encode()).decode(),
            }
            return http_request("POST", paths.UNDELIVERED, token=token, body=json.dumps(body).encode())

        count = int(rate * seconds)
        async with httpx.AsyncClient() as http:
            before = await core.gc_pauses(http)
            began = time.perf_counter()
            await open_loop(core.port, count, create, rate=rate, connections=CORE_CONNECTIONS)
            achieved = count / (time.perf_counter() - began)
            timings = await wait_timings(load, count)
            pauses = longest_pause(before, await core.gc_pauses(http)).replace("the room", "core")
        note = f"{achieved:.0f}/s achieved (POST to core), {connected} devices connected, {pauses}"
        latency_rows(bench, "POST", rate, timings, note)
    finally:
        if load is not None:
            await load.close()
        ws.stop()
        core.stop()
        await cleanup(amqp, namespace, stream)
        await amqp.close()


async def cleanup(amqp: aio_pika.abc.AbstractRobustConnection, namespace: str, stream: str) -> None:
    from tests.conftest import delete_topology

    await delete_topology(amqp, Topology(namespace))
    redis = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(match=f"nf:{stream}:*", count=5000)]
    for start in range(0, len(keys), 5000):
        await redis.delete(*keys[start : start + 5000])
    await redis.aclose()

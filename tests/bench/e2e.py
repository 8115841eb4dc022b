"""End to end: every room as processes on this machine (one replica each, then two; one monitor), digest window 0.

Review events go in through RabbitMQ from publisher processes at a rate that doubles step by step, then
is bisected between the last step that kept up and the first that did not; a device per brand (in-process
`Listener`s) reads the digests. A step kept up when, once publishing stops, every device has every review
within `DRAIN_LIMIT_S` (what was left was in flight, not a backlog). The best achieved rate that kept up is
the sustained figure; then, at half of it, review-to-device latency p50/p99 over every (review, device) pair.
Everything shares this machine's cores: the rooms, RabbitMQ, Redis, the publishers and the devices.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

import aio_pika
import httpx

from tests.bench.harness import Bench, Row
from tests.conftest import AMQP_URL, REDIS_URL, delete_topology
from workers.client.ws import Listener
from workers.common.contract import paths
from workers.common.contract.names import Topology
from workers.common.contract.streamspec import parse_spec
from workers.common.contract.wire import from_timestamp
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.auth import mint_token
from workers.common.runtime.settings import BrokerSettings
from workers.local.devices import decode_digest
from workers.local.reviews import Published, ReviewSource
from workers.local.rooms import Rooms
from workers.local.session import Session

GROUP = "end to end"
BRANDS = 10
USERS_PER_BRAND = 4
FIRST_RATE = 100.0
BISECTIONS = 3
SATURATED = 0.75
"""A step whose publishers achieved less than this share of the rate asked saturated them."""
PUBLISHERS = 2
DRAIN_LIMIT_S = 2.0
DRAIN_WAIT_S = 60.0
ROOM_ENV = {"NOTIFIER_LOG_LEVEL": "WARNING"}
REPLICAS = "NOTIFIER_BENCH_E2E_REPLICAS"
"""When set, only that many replicas of each room (else 1, then 2)."""
FIXED_RATE = "NOTIFIER_BENCH_E2E_RATE"
"""When set (events/s), the latency step runs at that rate at once, without the ramp: for looking at one hop."""
Published_ = dict[str, Published]
Sent = tuple[Published_, float, float]
"""What one publisher process sent, in how many seconds, and the wall time it finished."""
Commands: TypeAlias = "multiprocessing.Queue[tuple[float, float] | None]"
Results: TypeAlias = "multiprocessing.Queue[Sent]"


@dataclass(frozen=True, slots=True)
class Stamps:
    """When the hops before a device handled one digest (unix seconds): the oldest entry's write to the bus by
    a pusher, the puller's claim (the digest window's start and end) and core's create (the notification's
    timestamp)."""

    written: float
    claimed: float
    created: float


@dataclass
class Device:
    """A listening device of one user (the first user of one brand): when it showed each review, and the
    stamps of the digest that showed it."""

    user: str
    brand: str
    shown: dict[str, float] = field(default_factory=dict)
    stamps: dict[str, Stamps] = field(default_factory=dict)


async def listen(device: Device, listener: Listener) -> None:
    async for received in listener.notifications():
        notification = received.notification
        digest = decode_digest(notification.content_type, notification.content)
        if digest is None:
            continue
        now = time.time()
        stamps = digest_stamps(notification.content, created=from_timestamp(notification.timestamp))
        for review in digest.review_ids:
            if review not in device.shown:
                device.shown[review] = now
                device.stamps[review] = stamps


def digest_stamps(content: bytes, *, created: float) -> Stamps:
    window = json.loads(content)["window"]
    start, end = (datetime.fromisoformat(window[edge].replace("Z", "+00:00")).timestamp() for edge in ("start", "end"))
    return Stamps(written=start, claimed=end, created=created)


def _publisher(namespace: str, brands: list[str], tag: str, commands: Commands, results: Results) -> None:
    asyncio.run(_serve(namespace, brands, tag, commands, results))


async def _serve(namespace: str, brands: list[str], tag: str, commands: Commands, results: Results) -> None:
    """A publisher process: connect once, then publish at each (rate, seconds) it is given until told None."""
    connection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    topology = Topology(namespace)
    declared = await declare_topology(channel, topology)
    source = ReviewSource(declared.reviews, topology, brands, rng=random.Random(tag), tag=tag)
    results.put(({}, 0.0, time.time()))  # ready
    while (command := await asyncio.to_thread(commands.get)) is not None:
        rate, seconds = command
        before = len(source.published)
        started = time.monotonic()
        await source.publish(rate=rate, duration_s=seconds)
        elapsed = time.monotonic() - started
        results.put((dict(list(source.published.items())[before:]), elapsed, time.time()))
    await connection.close()


@dataclass
class Publishers:
    """PUBLISHERS processes, each publishing its share of the rate (the bench's own process runs the devices)."""

    namespace: str
    brands: list[str]
    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    commands: list[Commands] = field(default_factory=list)
    results: Results | None = None

    async def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        for _ in range(PUBLISHERS):
            self.commands.append(ctx.Queue())
            args = (self.namespace, self.brands, uuid.uuid4().hex[:4], self.commands[-1], self.results)
            self.processes.append(ctx.Process(target=_publisher, args=args))
            self.processes[-1].start()
        for _ in self.processes:
            await asyncio.to_thread(self.results.get, True, 120)

    async def publish(self, *, rate: float, seconds: float, published: Published_) -> tuple[float, float]:
        """Publish at `rate` in all; adds what was sent to `published`; returns (events/s, wall time it ended)."""
        assert self.results is not None
        for commands in self.commands:
            commands.put((rate / len(self.commands), seconds))
        results = [await asyncio.to_thread(self.results.get, True, seconds + 120) for _ in self.commands]
        for sent, _, _ in results:
            published.update(sent)
        achieved = sum(len(sent) for sent, _, _ in results) / max(elapsed for _, elapsed, _ in results)
        return achieved, max(ended for _, _, ended in results)

    def stop(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(30)


def outstanding(devices: list[Device], published: Published_) -> int:
    """(device, review) pairs published for a device's brand and not shown on it yet."""
    per_brand: dict[str, int] = {}
    for sent in published.values():
        per_brand[sent.brand] = per_brand.get(sent.brand, 0) + 1
    return sum(per_brand.get(d.brand, 0) - len(d.shown) for d in devices)


async def drain_seconds(devices: list[Device], published: Published_, *, since: float) -> float:
    """Seconds from `since` (wall time) until every device showed every review published (inf past DRAIN_WAIT_S)."""
    while outstanding(devices, published) > 0:
        if time.time() - since > DRAIN_WAIT_S:
            return float("inf")
        await asyncio.sleep(0.02)
    return max((max(d.shown.values(), default=since) for d in devices), default=since) - since


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


@dataclass
class Load:
    publishers: Publishers
    devices: list[Device]
    seconds: float
    published: Published_ = field(default_factory=dict)

    async def step(self, rate: float) -> tuple[float, float]:
        """Publish at `rate` for `seconds`; returns (achieved events/s, seconds to drain once publishing ended)."""
        achieved, ended = await self.publishers.publish(rate=rate, seconds=self.seconds, published=self.published)
        behind = outstanding(self.devices, self.published)
        drained = max(0.0, await drain_seconds(self.devices, self.published, since=ended))
        print(
            f"  {rate:,.0f}/s asked, {achieved:,.0f}/s achieved: {behind} (review, device) pairs outstanding "
            f"when the publishers reported, all shown {drained:.2f}s after they ended",
            flush=True,
        )
        return achieved, drained


async def run(bench: Bench) -> None:
    """The whole measurement with one replica of each room, then with two: on this machine's two cores the
    second doubles the processes that share them."""
    chosen = os.environ.get(REPLICAS)
    for replicas in [int(chosen)] if chosen else [1, 2]:
        await measure(bench, replicas=replicas)


async def measure(bench: Bench, *, replicas: int) -> None:
    group = f"{GROUP}, {replicas} of each room"
    tag = uuid.uuid4().hex[:6]
    settings = BrokerSettings.model_validate({"redis_url": REDIS_URL, "amqp_url": AMQP_URL})
    session = await Session.open(
        stream=f"bench-e2e-{tag}",
        namespace=f"benche2e{tag}.",
        log_dir=Path(".bench/e2e-logs"),
        env=ROOM_ENV,
        settings=settings,
    )
    brands = {f"B{b}": [f"u{b}-{i}" for i in range(USERS_PER_BRAND)] for b in range(BRANDS)}
    spec = parse_spec({"brands": brands, "digest": {"windowSeconds": 0, "maxItems": 100}})
    listeners: list[asyncio.Task[None]] = []
    publishers = Publishers(session.namespace, sorted(brands))
    try:
        await session.load(spec)
        rooms = await session.start_rooms(replicas=replicas)
        devices = [Device(users[0], brand) for brand, users in sorted(brands.items())]
        async with httpx.AsyncClient(timeout=30) as http:
            for index, device in enumerate(devices):
                listener = Listener(
                    ws_url=rooms.ws_url(index),
                    core_url=rooms.core_url(index),
                    token=mint_token(secret=session.settings.jwt_secret, sub=device.user),
                    http=http,
                )
                listeners.append(asyncio.create_task(listen(device, listener)))
            await session.wait_connected(len(devices))
            await publishers.start()
            load = Load(publishers, devices, seconds=3.0 if bench.quick else 8.0)
            fixed = os.environ.get(FIXED_RATE)
            sustained = 2 * float(fixed) if fixed else await ramp(bench, load, group=group)
            why = f"${FIXED_RATE}" if fixed else "half the sustained rate"
            await latency(bench, load, rooms, group=group, rate=max(1.0, sustained / 2), why=why)
    finally:
        publishers.stop()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await session.reset()
        await delete_topology(session.amqp, session.topology)
        await session.close()


async def ramp(bench: Bench, load: Load, *, group: str) -> float:
    """Double the rate until the pipeline falls behind, then bisect; returns the best achieved rate that kept up.

    Stops early when the publishers (sharing the machine's cores with everything else) achieve well under
    the rate asked while the pipeline still keeps up: the figure is then a lower bound.
    """
    good, bad, saturated = 0.0, 0.0, False
    rate = FIRST_RATE
    while not bad and not saturated and rate <= (400 if bench.quick else 100_000):
        achieved, drained = await load.step(rate)
        if drained > DRAIN_LIMIT_S:
            bad = achieved
            break
        good = max(good, achieved)
        saturated = achieved < SATURATED * rate
        rate *= 2
    for _ in range(BISECTIONS if bad and not bench.quick else 0):
        achieved, drained = await load.step((good + bad) / 2)
        if drained <= DRAIN_LIMIT_S:
            good = max(good, achieved)
        else:
            bad = min(bad, achieved)
    if bad:
        limit = f"fell behind at {bad:,.0f}/s"
    else:
        limit = "publishers saturated, a lower bound" if saturated else "never fell behind"
    note = f"{limit}; {load.seconds:g}s steps; x{USERS_PER_BRAND} entries per event; {BRANDS * USERS_PER_BRAND} users"
    bench.add(Row(group, "sustained review events/s (window 0)", good, "events/s", note))
    return good


HOPS = (
    ("publish -> pusher's bus write", "oldest review of each digest"),
    ("bus write -> puller claim", "oldest review of each digest"),
    ("publish -> puller claim", "every pair"),
    ("puller claim -> core create", "every pair"),
    ("core create -> device", "every pair"),
)


TIMED = (
    ("pushers", "notifier_pusher_batch_seconds", "", "pusher: one batch written to Redis"),
    (
        "pullers",
        "notifier_puller_cycle_seconds",
        "",
        "puller: one cycle with work (claim, digests, core, finish)",
    ),
    (
        "cores",
        "notifier_core_request_duration_seconds",
        f'method="POST",route="{paths.UNDELIVERED_BATCH}"',
        "core: one batch of digests, server side",
    ),
    ("ws", "notifier_ws_event_age_seconds", "", "ws_delivery: a NEW event's age on arrival (core create -> here)"),
)
"""The rooms' own histograms whose mean over the latency step the bench reports: (group of `Rooms`, family,
a label the samples must carry, what one observation is)."""


async def timed(rooms: Rooms) -> dict[str, tuple[float, float]]:
    """Per entry of `TIMED`, the (sum, count) of its histogram over the group's replicas now."""
    found: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(timeout=5.0) as client:
        for group, family, label, what in TIMED:
            texts = [(await client.get(f"{proc.ops_url}/metrics")).text for proc in getattr(rooms, group)]
            lines = [line for text in texts for line in text.splitlines() if label in line]
            total, count = (
                sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(f"{family}{suffix}"))
                for suffix in ("_sum", "_count")
            )
            found[what] = (total, count)
    return found


async def latency(bench: Bench, load: Load, rooms: Rooms, *, group: str, rate: float, why: str) -> None:
    """Review -> device p50/p99 over the (review, device) pairs of one step at `rate`, and per hop."""
    since, before = time.time(), await timed(rooms)
    await load.step(rate)
    after = await timed(rooms)
    for what, (total, count) in after.items():
        runs = count - before[what][1]
        mean = (total - before[what][0]) / runs * 1000 if runs else float("nan")
        bench.add(Row(group, f"{what}, mean", mean, "ms", f"{runs:,.0f} observations in the latency step"))
    pairs = [
        (sent.at_s, device.shown[review], device.stamps[review])
        for review, sent in load.published.items()
        if sent.at_s >= since
        for device in load.devices
        if device.brand == sent.brand and review in device.shown
    ]
    oldest: dict[int, tuple[float, Stamps]] = {}
    for at_s, _, stamps in pairs:
        if id(stamps) not in oldest or at_s < oldest[id(stamps)][0]:
            oldest[id(stamps)] = (at_s, stamps)
    hops = {
        HOPS[0][0]: [stamps.written - at_s for at_s, stamps in oldest.values()],
        HOPS[1][0]: [stamps.claimed - stamps.written for _, stamps in oldest.values()],
        HOPS[2][0]: [stamps.claimed - at_s for at_s, _, stamps in pairs],
        HOPS[3][0]: [stamps.created - stamps.claimed for _, _, stamps in pairs],
        HOPS[4][0]: [shown - stamps.created for _, shown, stamps in pairs],
    }
    note = f"at {rate:,.0f}/s ({why}), {len(pairs):,} (review, device) pairs"
    samples = [shown - at_s for at_s, shown, _ in pairs]
    bench.add(Row(group, "review -> device p50 (window 0)", percentile(samples, 0.5) * 1000, "ms", note))
    p99 = percentile(samples, 0.99) * 1000
    bench.add(Row(group, "review -> device p99 (window 0)", p99, "ms", note, target="< 100 ms on a quiet machine"))
    for hop, over in HOPS:
        values, hop_note = hops[hop], f"{over}: {len(oldest):,} digests" if over != "every pair" else note
        bench.add(Row(group, f"{hop} p50", percentile(values, 0.5) * 1000, "ms", hop_note))
        bench.add(Row(group, f"{hop} p99", percentile(values, 0.99) * 1000, "ms", hop_note))

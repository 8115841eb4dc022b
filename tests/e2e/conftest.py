"""End-to-end fixtures: every room as a real process (two replicas each), devices running `notifier listen`.

Each test gets its own stream and AMQP namespace (from the shared fixtures) and a short digest window,
publishes review events in bursts ("rounds") that each fit well inside one window, and reads back what
every device printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.support.bus import indexed
from tests.support.waiting import eventually
from workers.common.contract.addresses import is_cluster_url
from workers.common.contract.streamspec import StreamSpec, parse_spec
from workers.common.runtime.settings import BrokerSettings
from workers.local.devices import Device, DigestView
from workers.local.ledger import expected_reviews, missing_on
from workers.local.reviews import ReviewSource
from workers.local.rooms import Rooms
from workers.local.session import Session

BRANDS = {"BrandA": ["a1", "a2", "off"], "BrandB": ["a2", "b1", "off"]}
SPEC = {"brands": BRANDS, "digest": {"windowSeconds": 1, "maxItems": 1000}}
DEVICES = (("a1-1", "a1"), ("a1-2", "a1"), ("a2-1", "a2"), ("a2-2", "a2"), ("b1-1", "b1"))
"""(device, user): device i on ws_delivery replica i mod 2 (long-polling core replica i mod 2); user `off` has none."""
TUNING = {
    "NOTIFIER_PULLER_LEASE_S": "2",
    "NOTIFIER_CORE_RELAY_CLAIM_IDLE_S": "1",
    "NOTIFIER_CORE_RELAY_BLOCK_S": "0.2",
    "NOTIFIER_CORE_RETRY_DELAY_S": "0.2",
    "NOTIFIER_WS_RETRY_INTERVAL_S": "1",
}
"""Short leases and retries, so a killed replica's work is taken over within the test's time."""
ARRIVAL_S = 45.0


@dataclass
class Run:
    session: Session
    spec: StreamSpec
    source: ReviewSource
    rounds: list[list[str]] = field(default_factory=list)

    @property
    def rooms(self) -> Rooms:
        assert self.session.rooms is not None
        return self.session.rooms

    @property
    def devices(self) -> list[Device]:
        return self.session.devices.items

    async def round(self, count: int) -> list[str]:
        """Publish one burst of `count` review events (well inside one digest window)."""
        ids = await self.source.burst(count)
        self.rounds.append(ids)
        return ids

    def expected(self, user: str, reviews: Iterable[str]) -> set[str]:
        wanted = set(reviews)
        mine = expected_reviews(self.source.published, self.spec.user_brands.get(user, ()))
        return mine & wanted

    async def wait_every_device(self, reviews: Iterable[str]) -> None:
        """Wait until every device listed every one of `reviews` that its user should get."""
        wanted = list(reviews)
        done = await self.session.devices.wait_until(
            lambda: all(not missing_on(d, self.expected(d.user, wanted)) for d in self.devices), timeout_s=ARRIVAL_S
        )
        missing = {d.name: len(missing_on(d, self.expected(d.user, wanted))) for d in self.devices}
        assert done, f"reviews missing per device after {ARRIVAL_S}s: {missing}"

    async def wait_every_user(self, reviews: Iterable[str], *, users: set[str] | None = None) -> None:
        """Wait until, for every user (of `users`), the user's devices together listed all of `reviews` for it."""
        wanted = list(reviews)

        def missing(user: str) -> set[str]:
            listed = {r for d in self.session.devices.of_user(user) for r in listed_reviews(d)}
            return self.expected(user, wanted) - listed

        users = users or {d.user for d in self.devices}
        done = await self.session.devices.wait_until(lambda: not any(missing(u) for u in users), timeout_s=ARRIVAL_S)
        assert done, f"reviews missing per user after {ARRIVAL_S}s: { {u: len(missing(u)) for u in users} }"

    async def wait_drained(self, *, timeout_s: float = 30.0) -> None:
        """Wait until no user has pending entries or a batch in flight (every digest is in core)."""
        redis: aioredis.Redis = self.session.redis
        keys = self.session.keys

        async def drained() -> bool:
            return not await indexed(redis, keys, keys.due) and not await indexed(redis, keys, keys.pending_since)

        await eventually(drained, timeout_s=timeout_s, what="a bus without due or pending users")


async def assert_each_review_shown_once(run: Run) -> None:
    """Every review of the run on the devices of every user of its brands, in exactly one digest, no device
    showing a digest twice, and core lists each shown digest as delivered to its user."""
    for device in run.devices:
        ids = [notification_id for notification_id, _ in digests(device)]
        assert len(ids) == len(set(ids)), f"{device.name} showed a digest twice"
    everything = [review for reviews in run.rounds for review in reviews]
    for user in sorted({d.user for d in run.devices}):
        shown = {nid: digest for d in run.session.devices.of_user(user) for nid, digest in digests(d)}
        counted = Counter(review for digest in shown.values() for review in digest.review_ids)
        expected = run.expected(user, everything)
        assert set(counted) == expected, f"user {user}: {len(expected - set(counted))} reviews lost"
        assert set(counted.values()) == {1}, f"user {user}: reviews in two digests: {counted.most_common(3)}"
        listed = await run.session.wait_delivered_in_core(user, set(shown))
        assert set(shown) <= listed, f"core does not list {user}'s digests"


def digests(device: Device) -> list[tuple[str, DigestView]]:
    return [(r.notification_id, r.digest) for r in device.receipts if r.digest is not None]


def listed_reviews(device: Device) -> list[str]:
    return [review for _, digest in digests(device) for review in digest.review_ids]


def kind_counts(run: Run, reviews: Iterable[str]) -> dict[str, Counter[str]]:
    """Per brand, how many of `reviews` were published as added, updated and deleted."""
    counts: dict[str, Counter[str]] = {}
    for review in reviews:
        published = run.source.published[review]
        counts.setdefault(published.brand, Counter())[published.kind] += 1
    return counts


@pytest.fixture
async def run(
    stream: str,
    amqp_namespace: str,
    redis_url: str,
    amqp_url: str,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    tmp_path: Path,
) -> AsyncIterator[Run]:
    """Every room running (two replicas each, one monitor), the mapping loaded, the devices connected."""
    replicas = 1 if is_cluster_url(redis_url) else 0  # a cluster's failover must not lose acknowledged writes
    settings = BrokerSettings.model_validate(
        {"redis_url": redis_url, "amqp_url": amqp_url, "redis_wait_replicas": replicas}
    )
    session = await Session.open(
        stream=stream, namespace=amqp_namespace, log_dir=tmp_path / "logs", env=TUNING, settings=settings
    )
    try:
        spec = parse_spec(SPEC)
        await session.load(spec)
        await session.start_rooms(replicas=2)
        for index, (name, user) in enumerate(DEVICES):
            await session.add_device(user=user, name=name, index=index)
        assert await session.wait_connected(len(DEVICES)), "devices did not connect"
        yield Run(session, spec, session.source(sorted(spec.brands), seed=7))
    finally:
        codes = await session.close()
    assert all(code == 0 for code in codes.values()), f"processes that did not stop cleanly: {codes}"

"""The outbox: no event is lost between the store and the broker, none is published twice by replicas,
a crashed relay's entries are taken over, and old notifications are purged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import AMQP_URL, REDIS_URL
from tests.core.conftest import EventTap, running_core, settings_for
from tests.core.helpers import create, in_seconds, take
from tests.support.metrics import sample
from tests.support.store import copies, expire, outbox_entries
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from workers.common.contract import paths
from workers.common.contract.keys import StoreKeys
from workers.common.runtime.assignment import owner_of
from workers.core.main import CoreRoom
from workers.core.model import Stored, addressed, new_event
from workers.core.relay import GROUP


def client(room: CoreRoom) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{room.http_port}", timeout=30)


def ids_in(tap: EventTap) -> list[str]:
    return [event.notification.id for _, event in tap.events]


async def outbox_drained(redis: aioredis.Redis, stream: str) -> bool:
    return await outbox_entries(redis, StoreKeys(stream)) == 0


async def test_events_written_while_the_broker_is_cut_go_out_once_it_is_back(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tap: EventTap
) -> None:
    broker = urlsplit(AMQP_URL)
    async with TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as proxy:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2"
        settings = settings_for(stream, amqp_namespace, amqp_url=url, publish_timeout_s=1.0)
        async with running_core(settings) as room, client(room) as http:
            first = await create(http, ["alice"], "before")
            await eventually(lambda: _has(tap, first))
            await proxy.cut()
            during = [await create(http, ["alice"], f"during-{i}") for i in range(20)]
            assert len(await take(http, "alice")) == 21, "the API keeps answering without the broker"
            assert await outbox_entries(redis, StoreKeys(stream)) > 0

            async def backlog_reported() -> bool:
                entries = sample("notifier_core_outbox_entries")
                return entries > 0 and sample("notifier_core_outbox_age_seconds") > 0

            await eventually(backlog_reported)
            proxy.restore()
            await eventually(lambda: _has(tap, *during), timeout_s=30)
            await eventually(lambda: outbox_drained(redis, stream))
    assert set(during) <= set(ids_in(tap))


async def test_the_relay_keeps_publishing_while_confirms_are_outstanding(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tap: EventTap
) -> None:
    """The broker's replies to core (its publisher confirms) are held back: each new event still goes out
    at once, none leaves the outbox unconfirmed, and the outbox empties when the confirms come through."""
    broker = urlsplit(AMQP_URL)
    async with TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as proxy:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        async with running_core(settings_for(stream, amqp_namespace, amqp_url=url)) as room, client(room) as http:
            proxy.hold_replies()
            created = [await create(http, ["alice"], f"held-{i}") for i in range(5)]
            await eventually(lambda: _has(tap, *created))
            assert await outbox_entries(redis, StoreKeys(stream)) == 5, "nothing confirmed, nothing dropped"
            proxy.release_replies()
            await eventually(lambda: outbox_drained(redis, stream))
    assert ids_in(tap) == created


async def _has(tap: EventTap, *notification_ids: str) -> bool:
    return set(notification_ids) <= set(ids_in(tap))


async def test_two_relays_publish_each_event_exactly_once(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tap: EventTap
) -> None:
    settings = settings_for(stream, amqp_namespace, relay_batch=7)
    async with running_core(settings) as one, running_core(settings) as two, client(one) as a, client(two) as b:
        created = await asyncio.gather(*(create(a if i % 2 else b, [f"user-{i % 5}"], f"n-{i}") for i in range(120)))
        await eventually(lambda: _has(tap, *created), timeout_s=30)
        await eventually(lambda: outbox_drained(redis, stream))
        published = [room.relay.published if room.relay else 0 for room in (one, two)]
        assert sum(published) == 120
        keys = StoreKeys(stream)
        readers = {c["name"] for shard in keys.shards for c in await redis.xinfo_consumers(keys.outbox(shard), GROUP)}
        assert {room.relay.consumer for room in (one, two) if room.relay} <= readers, "both relays read the outboxes"
    assert sorted(ids_in(tap)) == sorted(created), "each event once, whichever relay took it"


async def test_entries_of_a_crashed_relay_are_taken_over(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tap: EventTap
) -> None:
    keys = StoreKeys(stream)
    outbox = keys.outbox(keys.shard_of("alice"))
    orphan = Stored(id="orphan-1", created_ms=1, created_by="p", content_type="text/plain", content=b"x")
    event = new_event(orphan, now_s=time.time())
    body = addressed(event.body, ["alice"], shard=keys.shard_of("alice"), shards=keys.shard_count)
    await redis.xgroup_create(outbox, GROUP, id="0", mkstream=True)
    await redis.xadd(outbox, {"rk": event.routing_key, "b": body})
    raw = aioredis.Redis.from_url(REDIS_URL)
    assert await raw.xreadgroup(GROUP, "crashed-relay", {outbox: ">"}, count=10), "a relay read it, then died"
    await raw.aclose()
    settings = settings_for(stream, amqp_namespace, relay_claim_idle_s=0.3)
    async with running_core(settings):
        await eventually(lambda: _has(tap, orphan.id))
        await eventually(lambda: outbox_drained(redis, stream))
    assert ids_in(tap) == [orphan.id]
    assert (await redis.xpending(outbox, GROUP))["pending"] == 0


async def test_expired_and_deleted_notifications_are_purged_after_the_retention(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> None:
    keys = StoreKeys(stream)
    settings = settings_for(stream, amqp_namespace, retention_s=0.0, purge_interval_s=0.05)
    async with running_core(settings) as room, client(room) as http:
        deleted = await create(http, ["carol"], "del")
        kept = await create(http, ["carol"], "kept")
        await take(http, "carol")
        gone = await http.delete(paths.DELIVERED_ONE.replace("{id}", deleted), headers=bearer("carol"))
        assert gone.status_code == 204
        expired = await create(http, ["alice", "bob"], "exp", invalidate_at=in_seconds(30))
        cast = await create(http, [], "exp-all", invalidate_at=in_seconds(30))
        held = await create(http, [], "held-all", invalidate_at=in_seconds(30))
        assert [n["id"] for n in await take(http, "dave")] == [cast, held]
        await http.delete(paths.DELIVERED_ONE.replace("{id}", cast), headers=bearer("dave"))
        await expire(redis, keys, expired, cast, held, at=time.time() - 1)

        async def purged() -> bool:
            return not any([await copies(redis, keys, n) for n in (expired, cast, deleted)])

        await eventually(purged)
        assert await copies(redis, keys, kept) == [keys.shard_of("carol")]
        assert await copies(redis, keys, held) == [keys.shard_of("dave")], "a user still holds its copy"
        assert (await http.get(paths.DELIVERED_ONE.replace("{id}", held), headers=bearer("dave"))).status_code == 200
        assert await redis.zcard(keys.undelivered("alice")) == 0
        for shard in keys.shards:
            assert await redis.zcard(keys.broadcasts(shard)) == 0
            assert await redis.zcard(keys.garbage(shard)) == 0
        assert await take(http, "bob") == []


async def test_two_replicas_split_the_shards_purging_and_one_takes_all_when_the_other_stops(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> None:
    keys = StoreKeys(stream)
    settings = settings_for(stream, amqp_namespace, purge_interval_s=0.1)

    async def holders() -> dict[int, str]:
        return {shard: await redis.get(keys.purger(shard)) for shard in keys.shards}

    async with running_core(settings) as one:
        async with running_core(settings) as two:
            assert one.store is not None
            assert two.store is not None
            replicas = {one.store.replica, two.store.replica}

            async def split() -> bool:
                held = await holders()
                return set(held.values()) == replicas and all(
                    owner == owner_of(shard, replicas) for shard, owner in held.items()
                )

            await eventually(split, timeout_s=15)
        alone = one.store.replica
        await eventually(lambda: _all_held_by(holders, alone), timeout_s=15)


async def _all_held_by(holders: Callable[[], Awaitable[dict[int, str]]], replica: str) -> bool:
    return set((await holders()).values()) == {replica}

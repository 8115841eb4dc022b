"""Creates whose recipients live in several store shards: registered in the producer id's home shard, applied
by every shard with recipients, finished by a retry of the same request or by the home shard's purger, and
never applied twice (docs/design.md section 5)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import BOTH_REDIS
from tests.support.store import copies
from workers.common.contract.keys import StoreKeys, tagged
from workers.common.contract.paths import MAX_PRODUCER_ID
from workers.common.contract.wire import BrokerNotification
from workers.common.runtime.connections import redis_client
from workers.core.model import Stored, new_event
from workers.core.store import Duplicate, Store

pytestmark = BOTH_REDIS


@pytest.fixture
async def client(redis_url: str, stream: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"nf:{stream}:*", count=1000)]
    for key in keys:
        await client.delete(key)
    await client.aclose()


def users_in_other_shards(keys: StoreKeys, count: int) -> list[str]:
    """`count` users of `count` different shards."""
    found: dict[int, str] = {}
    for n in range(10_000):
        found.setdefault(keys.shard_of(f"user-{n}"), f"user-{n}")
        if len(found) == count:
            break
    return list(found.values())


def stored(notification_id: str) -> Stored:
    return Stored(
        id=notification_id, created_ms=int(time.time() * 1000), created_by="p", content_type="text/plain", content=b"x"
    )


async def create(store: Store, notification_id: str, pnid: str, users: list[str]) -> None:
    one = stored(notification_id)
    await store.create(
        one,
        producer_notification_id=pnid,
        users=users,
        invalidate_at=None,
        event=new_event(one, now_s=time.time()),
    )


async def events(client: aioredis.Redis, keys: StoreKeys, notification_id: str) -> list[tuple[int, list[str]]]:
    """(shard, recipients) of every outbox event about the notification."""
    found = []
    for shard in keys.shards:
        for _, fields in await client.xrange(keys.outbox(shard)):
            event = BrokerNotification.FromString(fields[b"b"])
            if event.notification.id == notification_id:
                found.append((shard, sorted(event.user_ids)))
    return found


async def undelivered(client: aioredis.Redis, keys: StoreKeys, users: list[str]) -> dict[str, list[Any]]:
    return {user: await client.zrange(keys.undelivered(user), 0, -1) for user in users}


class Interrupted(Exception):
    pass


@pytest.fixture
def store(client: aioredis.Redis, stream: str) -> Store:
    return Store(client, stream=stream, retention_s=3600)


def stop_after_applying(store: Store, monkeypatch: pytest.MonkeyPatch, shards: int) -> None:
    """From now on a create spanning shards stops (as its process would) once `shards` shards applied it."""
    real_apply = store._apply_parts

    async def stopping(nid: str, meta: Any, content: bytes, body: bytes, parts: dict[int, list[str]]) -> None:
        await real_apply(nid, meta, content, body, dict(list(parts.items())[:shards]))
        raise Interrupted

    monkeypatch.setattr(store, "_apply_parts", stopping)


async def interrupted_create(
    store: Store, monkeypatch: pytest.MonkeyPatch, *, recipients: int, applied: int
) -> list[str]:
    """Create `n-1` (producer id `pnid-1`) for users of `recipients` shards, stopped once `applied` shards have
    it; the create stays stopped that way until `monkeypatch.undo()`. Returns the recipients."""
    users = users_in_other_shards(store.keys, recipients)
    stop_after_applying(store, monkeypatch, applied)
    with pytest.raises(Interrupted):
        await create(store, "n-1", "pnid-1", users)
    return users


async def assert_applied_once(client: aioredis.Redis, keys: StoreKeys, users: list[str]) -> None:
    """`n-1` is in every recipient's undelivered index once, and each recipient shard published it once."""
    assert sorted(await events(client, keys, "n-1")) == sorted((keys.shard_of(u), [u]) for u in users)
    assert await undelivered(client, keys, users) == {user: [b"n-1"] for user in users}


async def test_a_create_cut_after_registering_is_finished_by_the_retry_and_only_once(
    client: aioredis.Redis, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = store.keys
    users = await interrupted_create(store, monkeypatch, recipients=3, applied=1)
    assert len(await events(client, keys, "n-1")) == 1, "one shard applied it before the process stopped"
    assert await client.zrange(keys.creating(keys.home_of("p", "pnid-1")), 0, -1) == [b"n-1"]

    monkeypatch.undo()
    with pytest.raises(Duplicate) as duplicate:
        await create(store, "n-2", "pnid-1", users)  # the producer retries: same id, a new notification id
    assert duplicate.value.existing_id == "n-1"
    await assert_applied_once(client, keys, users)
    assert await client.zcard(keys.creating(keys.home_of("p", "pnid-1"))) == 0
    assert not await client.exists(keys.create_record(keys.home_of("p", "pnid-1"), "n-1"))
    assert await copies(client, keys, "n-2") == []


async def test_the_home_shards_purger_finishes_an_abandoned_create(
    client: aioredis.Redis, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = store.keys
    users = await interrupted_create(store, monkeypatch, recipients=4, applied=0)
    with pytest.raises(Interrupted):
        await create(store, "cast-1", "pnid-2", [])
    monkeypatch.undo()
    assert await events(client, keys, "n-1") == [], "nothing is published before it is stored"

    assert (await store.purge(limit=100, interval_s=1)).recovered == 0, "not yet abandoned"
    done = await store.purge(limit=100, interval_s=1, recover_after_s=0)
    assert done.recovered == 2
    assert (await store.purge(limit=100, interval_s=1, recover_after_s=0)).recovered == 0
    await assert_applied_once(client, keys, users)
    assert sorted(shard for shard, _ in await events(client, keys, "cast-1")) == list(keys.shards)
    assert await copies(client, keys, "cast-1") == list(keys.shards)


async def test_a_producer_id_is_unique_whoever_the_recipients(client: aioredis.Redis, store: Store) -> None:
    alice, bob = users_in_other_shards(store.keys, 2)
    await create(store, "n-1", "same", [alice])
    with pytest.raises(Duplicate):
        await create(store, "n-2", "same", [bob])
    with pytest.raises(Duplicate):
        await create(store, "n-3", "same", [])
    assert await copies(client, store.keys, "n-1") == [store.keys.shard_of(alice)]
    assert await copies(client, store.keys, "n-2") == await copies(client, store.keys, "n-3") == []


async def test_one_shard_keeps_every_key_of_a_stream_in_one_slot(client: aioredis.Redis, stream: str) -> None:
    store = Store(client, stream=stream, retention_s=3600, shards=1)
    await create(store, "n-1", "a", ["alice", "bob", "carol"])
    await create(store, "cast-1", "b", [])
    keys = [key async for key in client.scan_iter(match=f"nf:{stream}:*", count=1000)]
    assert keys
    assert all(f"{{{stream}.0}}".encode() in key for key in keys)
    assert [users for _, users in await events(client, store.keys, "n-1")] == [["alice", "bob", "carol"]]
    assert await client.zcard(store.keys.creating(0)) == 0, "one script did the whole create"


async def test_a_producer_id_tagged_with_its_one_recipient_is_created_by_one_script(
    client: aioredis.Redis, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = store.keys
    alice, bob = users_in_other_shards(keys, 2)
    pnid = tagged(alice, "d-1", limit=MAX_PRODUCER_ID)
    assert keys.home_of("p", pnid) == keys.shard_of(alice) != keys.home_of("p", "d-1")

    async def spanning(*_: Any) -> None:
        raise AssertionError("a create in its home shard goes through no create record")

    monkeypatch.setattr(store, "_apply_parts", spanning)
    await create(store, "n-1", pnid, [alice])
    assert await client.hget(keys.producer_ids(keys.shard_of(alice), "p"), pnid) == b"n-1"
    assert await events(client, keys, "n-1") == [(keys.shard_of(alice), [alice])]
    assert await client.zcard(keys.creating(keys.shard_of(alice))) == 0
    monkeypatch.undo()
    with pytest.raises(Duplicate):
        await create(store, "n-2", pnid, [bob])
    assert await copies(client, keys, "n-2") == []

"""The protobuf event each state change emits, read from a test queue bound to the notifications exchange."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import BOTH_REDIS
from tests.core.conftest import EventTap, producer
from tests.core.helpers import body, create, take
from tests.support.metrics import sample
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from workers.common.contract import paths
from workers.common.contract.keys import StoreKeys
from workers.common.contract.names import ROUTING_DELETED, ROUTING_NEW, ROUTING_UPDATED
from workers.common.contract.wire import BrokerNotification, Notification, from_timestamp

pytestmark = [pytest.mark.usefixtures("core"), BOTH_REDIS]


def about(notification_id: str, status: int) -> Callable[[str, BrokerNotification], bool]:
    def match(_: str, event: BrokerNotification) -> bool:
        return event.notification.id == notification_id and event.notification.status == status

    return match


async def test_create_publishes_new_with_every_field_to_the_recipients(http: httpx.AsyncClient, tap: EventTap) -> None:
    """Each shard with recipients publishes the event for its own; together they name every recipient once."""
    keys = StoreKeys("any")
    bob = next(u for u in (f"bob-{n}" for n in range(10_000)) if keys.shard_of(u) != keys.shard_of("alice"))
    nid = await create(http, ["alice", bob, "carol"], "e1", content=b"\x01\x02")

    def addressed() -> list[str]:
        return sorted(u for _, e in tap.events if e.notification.id == nid for u in e.user_ids)

    await eventually(lambda: addressed() == sorted(["alice", bob, "carol"]))
    routing_key, event = await tap.first(about(nid, Notification.NEW))
    assert routing_key == ROUTING_NEW
    assert len([e for _, e in tap.events if e.notification.id == nid]) == len(
        {keys.shard_of(u) for u in ("alice", bob, "carol")}
    )
    n = event.notification
    assert (n.created_by, n.content_type, n.content, n.seen) == ("producer-1", "text/plain", b"\x01\x02", False)
    assert n.HasField("created_by")
    assert n.HasField("seen")
    assert n.HasField("content")
    assert n.HasField("content_type")
    assert from_timestamp(n.timestamp) > 0


async def test_broadcast_publishes_new_with_no_user_ids_once_per_shard(http: httpx.AsyncClient, tap: EventTap) -> None:
    """A broadcast is one event per store shard, each for the users of its shard (with its shard's position)."""
    nid = await create(http, [], "e-all")
    shards = StoreKeys("any").shard_count

    def audiences() -> list[int]:
        return sorted(e.audience_shard for _, e in tap.events if e.notification.id == nid)

    await eventually(lambda: audiences() == list(range(shards)))
    for _, event in tap.events:
        if event.notification.id == nid:
            assert list(event.user_ids) == []
            assert event.audience_shards == shards
            assert event.notification.position


async def test_seen_publishes_updated_and_delete_publishes_deleted_to_the_caller_only(
    http: httpx.AsyncClient, tap: EventTap
) -> None:
    nid = await create(http, ["alice", "bob"], "e2")
    await take(http, "alice")
    seen = paths.DELIVERED_SEEN.replace("{id}", nid)
    assert (await http.put(seen, json={"seen": True}, headers=bearer("alice"))).status_code == 204
    routing_key, updated = await tap.first(about(nid, Notification.UPDATED))
    assert routing_key == ROUTING_UPDATED
    assert list(updated.user_ids) == ["alice"]
    assert updated.notification.HasField("seen")
    assert updated.notification.seen is True
    assert not updated.notification.HasField("content")
    assert (await http.delete(paths.DELIVERED_ONE.replace("{id}", nid), headers=bearer("alice"))).status_code == 204
    routing_key, deleted = await tap.first(about(nid, Notification.DELETED))
    assert routing_key == ROUTING_DELETED
    assert list(deleted.user_ids) == ["alice"]
    assert not deleted.notification.HasField("seen")
    assert not deleted.notification.HasField("created_by")
    new, upd, dele = (
        tap.events.index(e) for e in tap.events if e[1].notification.id == nid and "alice" in e[1].user_ids
    )
    assert new < upd < dele, "events leave in the order of the changes"


async def test_refused_requests_publish_nothing(http: httpx.AsyncClient, tap: EventTap) -> None:
    await create(http, ["alice"], "dup")
    again = await http.post(paths.UNDELIVERED, json=body(["alice"], "dup"), headers=producer())
    assert again.status_code == 409
    missing = await http.put(paths.DELIVERED_SEEN.replace("{id}", "nope"), json={"seen": True}, headers=bearer("a"))
    assert missing.status_code == 404
    last = await create(http, ["alice"], "after")
    await tap.first(about(last, Notification.NEW))
    assert len(tap.events) == 2
    assert sample("notifier_core_events_published_total", {"routing_key": ROUTING_NEW}) >= 2

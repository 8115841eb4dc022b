"""The per-user feed (DESIGN sections 5 and 6): positions, paging, latest state, broadcasts, cursors, long polls."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import BOTH_REDIS
from tests.core.conftest import EventTap
from tests.core.helpers import create, in_seconds, take
from tests.support.metrics import sample
from tests.support.store import expire
from tests.support.tokens import bearer
from workers.common.contract import paths
from workers.common.contract.keys import StoreKeys
from workers.common.contract.wire import Notification
from workers.common.runtime.connections import redis_client
from workers.core.main import CoreRoom
from workers.core.store import Store

pytestmark = [pytest.mark.usefixtures("core"), BOTH_REDIS]


async def read(http: httpx.AsyncClient, user: str, **params: Any) -> dict[str, Any]:
    response = await http.get(paths.FEED, params=params, headers=bearer(user))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def read_all(http: httpx.AsyncClient, user: str, *, after: str | None = None, limit: int = 100) -> list[Any]:
    """Every entry after `after`, page by page, checking that each page's `next` is where the next one starts."""
    items: list[Any] = []
    while True:
        page = await read(http, user, limit=limit, **({} if after is None else {"after": after}))
        items += page["items"]
        if page["items"]:
            assert page["items"][-1]["position"] == page["next"] or len(page["items"]) < limit
        if len(page["items"]) < limit and page["next"] == after:
            return items
        after = page["next"]


def one(path: str, notification_id: str) -> str:
    return path.replace("{id}", notification_id)


async def test_feed_pages_oldest_first_with_every_notification_once(http: httpx.AsyncClient) -> None:
    ids = [await create(http, ["alice"], f"n-{i}", content=f"c{i}".encode()) for i in range(25)]
    first = await read(http, "alice", limit=10)
    assert [item["id"] for item in first["items"]] == ids[:10]
    assert first["next"] == first["items"][-1]["position"]
    assert first["items"][0] == {
        "position": first["items"][0]["position"],
        "id": ids[0],
        "status": "NEW",
        "created_at": first["items"][0]["created_at"],
        "created_by": "producer-1",
        "seen": False,
        "content_type": "text/plain",
        "content": base64.b64encode(b"c0").decode(),
    }
    rest = await read_all(http, "alice", after=first["next"], limit=10)
    assert [item["id"] for item in rest] == ids[10:]
    positions = [item["position"] for item in first["items"] + rest]
    assert len(set(positions)) == 25
    assert [int(p) for p in positions] == sorted(int(p) for p in positions), "positions grow"
    caught_up = await read(http, "alice", after=rest[-1]["position"])
    assert caught_up["items"] == []
    assert await read(http, "alice", after=caught_up["next"]) == caught_up, "an idle read is stable"


async def test_a_device_catches_up_on_what_another_device_took(http: httpx.AsyncClient) -> None:
    nid = await create(http, ["alice"], "taken-elsewhere")
    assert [n["id"] for n in await take(http, "alice")] == [nid], "device A takes it (marked delivered)"
    assert [item["id"] for item in (await read(http, "alice"))["items"]] == [nid], "device B still sees it"


async def test_reading_the_feed_marks_new_entries_delivered(http: httpx.AsyncClient) -> None:
    def delivered_by_feed() -> float:
        return sample("notifier_core_notifications_delivered_total", {"path": "feed"})

    nid = await create(http, ["alice"], "read-by-feed")
    before = delivered_by_feed()
    assert [item["id"] for item in (await read(http, "alice"))["items"]] == [nid]
    assert delivered_by_feed() == before + 1
    assert [item["id"] for item in (await read(http, "alice"))["items"]] == [nid], "read again: still there"
    assert delivered_by_feed() == before + 1, "delivered once"
    assert await take(http, "alice") == [], "a device read it: delivered for the user"
    delivered = await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("alice"))
    assert delivered.status_code == 200


async def test_a_user_never_sees_another_users_feed(http: httpx.AsyncClient) -> None:
    mine = await create(http, ["alice"], "alice-only")
    theirs = await create(http, ["bob"], "bob-only")
    both = await create(http, ["alice", "bob"], "both")
    assert [i["id"] for i in (await read(http, "alice"))["items"]] == [mine, both]
    assert [i["id"] for i in (await read(http, "bob"))["items"]] == [theirs, both]
    assert (await read(http, "carol"))["items"] == []
    assert (await http.get(paths.FEED)).status_code == 401


async def test_seen_and_delete_move_the_entry_and_show_the_latest_state(http: httpx.AsyncClient) -> None:
    a = await create(http, ["alice", "bob"], "a")
    b = await create(http, ["alice"], "b")
    start = await read(http, "alice")
    assert [i["id"] for i in start["items"]] == [a, b]
    seen = await http.put(one(paths.DELIVERED_SEEN, a), json={"seen": True}, headers=bearer("alice"))
    assert seen.status_code == 204
    after_seen = await read(http, "alice", after=start["next"])
    assert [(i["id"], i["status"], i["seen"]) for i in after_seen["items"]] == [(a, "UPDATED", True)]
    assert after_seen["items"][0]["content"] == base64.b64encode(b"hello").decode(), "UPDATED carries the content"
    everything = (await read(http, "alice"))["items"]
    assert [(i["id"], i["status"]) for i in everything] == [(b, "NEW"), (a, "UPDATED")], "one entry per id"
    assert (await http.delete(one(paths.DELIVERED_ONE, b), headers=bearer("alice"))).status_code == 204
    deleted = (await read(http, "alice", after=after_seen["next"]))["items"]
    assert deleted == [
        {
            "position": deleted[0]["position"],
            "id": b,
            "status": "DELETED",
            "created_at": None,
            "created_by": None,
            "seen": False,
            "content_type": None,
            "content": None,
        }
    ]
    assert [(i["id"], i["status"]) for i in (await read(http, "bob"))["items"]] == [(a, "NEW")], "per user"


async def test_events_carry_the_position_the_feed_shows(http: httpx.AsyncClient, tap: EventTap) -> None:
    nid = await create(http, ["alice"], "positioned")
    await read(http, "alice")
    await http.put(one(paths.DELIVERED_SEEN, nid), json={"seen": True}, headers=bearer("alice"))
    await http.delete(one(paths.DELIVERED_ONE, nid), headers=bearer("alice"))
    events = await tap.wait_for(3)
    positions = [event.notification.position for _, event in events]
    assert [event.notification.status for _, event in events] == [
        Notification.NEW,
        Notification.UPDATED,
        Notification.DELETED,
    ]
    assert events[0][1].notification.content == b"hello", "the position merges into the notification"
    assert all(event.notification.HasField("position") for _, event in events)
    assert (await read(http, "alice"))["items"][0]["position"] == positions[2]
    assert [int(p) for p in positions] == sorted(int(p) for p in positions)
    assert len(set(positions)) == 3


async def test_a_broadcast_is_in_every_feed_also_of_users_first_seen_later(http: httpx.AsyncClient) -> None:
    before = await create(http, ["alice"], "before")
    cast = await create(http, [], "everyone")
    after = await create(http, ["alice"], "after")
    assert [i["id"] for i in (await read(http, "alice"))["items"]] == [before, cast, after]
    assert [i["id"] for i in (await read(http, "someone-new"))["items"]] == [cast]
    seen = await http.put(one(paths.DELIVERED_SEEN, cast), json={"seen": True}, headers=bearer("alice"))
    assert seen.status_code == 204, "reading the feed delivered the broadcast to alice"
    assert [(i["id"], i["status"]) for i in (await read(http, "alice"))["items"]] == [
        (before, "NEW"),
        (after, "NEW"),
        (cast, "UPDATED"),
    ]
    assert [(i["id"], i["status"]) for i in (await read(http, "bob"))["items"]] == [(cast, "NEW")]


async def test_expired_notifications_drop_out_of_the_feed(
    http: httpx.AsyncClient, redis: aioredis.Redis, stream: str
) -> None:
    gone = await create(http, ["alice"], "gone", invalidate_at=in_seconds(60))
    cast = await create(http, [], "gone-cast", invalidate_at=in_seconds(60))
    kept = await create(http, ["alice"], "kept")
    await expire(redis, StoreKeys(stream), gone, cast, at=1)  # as if the minute had passed
    assert [i["id"] for i in (await read(http, "alice"))["items"]] == [kept]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", " 1", "12345678901234567890123", ""])
async def test_a_garbage_cursor_is_422(http: httpx.AsyncClient, cursor: str) -> None:
    response = await http.get(paths.FEED, params={"after": cursor}, headers=bearer("alice"))
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], (str, list))


async def test_a_cursor_from_the_future_is_422(http: httpx.AsyncClient) -> None:
    page = await read(http, "alice")
    response = await http.get(paths.FEED, params={"after": str(int(page["next"]) + 1)}, headers=bearer("alice"))
    assert response.status_code == 422
    assert "ahead" in response.json()["detail"][0]["msg"]


async def test_bad_limit_and_wait_are_422(http: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"wait": 61}, {"wait": -1}, {"limit": "x"}):
        assert (await http.get(paths.FEED, params=params, headers=bearer("alice"))).status_code == 422, params


async def test_a_cursor_older_than_the_retention_is_410_resync(
    http: httpx.AsyncClient, core: CoreRoom, stream: str, redis_url: str
) -> None:
    old = await create(http, ["alice"], "old")
    start = await read(http, "alice")
    assert [i["id"] for i in start["items"]] == [old]
    client = redis_client(redis_url)
    try:
        assert core.store is not None
        store = Store(client, stream=stream, retention_s=3600, feed_retention_s=0, replica=core.store.replica)
        assert (await store.purge(limit=10, interval_s=1)).shards > 0, "the purger's leases are the room's"
    finally:
        await client.aclose()
    response = await http.get(paths.FEED, params={"after": "0"}, headers=bearer("alice"))
    assert response.status_code == 410
    assert response.json()["resync"] is True
    assert "resync" in response.json()["detail"]
    assert (await read(http, "alice", after=start["next"]))["items"] == [], "a cursor at the floor is kept"
    assert (await read(http, "alice"))["items"] == [], "the old change is past the retention"
    fresh = await create(http, ["alice"], "fresh")
    assert [i["id"] for i in (await read(http, "alice"))["items"]] == [fresh], "no cursor: from the oldest kept"


async def test_long_poll_answers_on_a_create_and_on_a_change_from_another_device(http: httpx.AsyncClient) -> None:
    start = await read(http, "alice")
    poll = asyncio.create_task(read(http, "alice", after=start["next"], wait=30))
    await asyncio.sleep(0)
    nid = await create(http, ["bob"], "not-for-alice")
    nid = await create(http, ["alice"], "wake")
    page = await asyncio.wait_for(poll, 10)
    assert [i["id"] for i in page["items"]] == [nid]
    poll = asyncio.create_task(read(http, "alice", after=page["next"], wait=30))
    seen = await http.put(one(paths.DELIVERED_SEEN, nid), json={"seen": True}, headers=bearer("alice"))
    assert seen.status_code == 204
    page = await asyncio.wait_for(poll, 10)
    assert [(i["id"], i["status"]) for i in page["items"]] == [(nid, "UPDATED")]


async def test_long_poll_with_nothing_arriving_answers_empty_with_the_same_cursor(http: httpx.AsyncClient) -> None:
    start = await read(http, "alice")
    page = await read(http, "alice", after=start["next"], wait=0.3)
    assert page == {"items": [], "next": start["next"]}


async def test_the_feed_is_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    parameters = {p["name"] for p in document["paths"][paths.FEED]["get"]["parameters"]}
    assert {"after", "limit", "wait"} <= parameters

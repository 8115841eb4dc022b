"""Every row of the core API table (DESIGN section 6), with every status code it can answer."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from tests.conftest import BOTH_REDIS
from tests.core.conftest import producer, running_core, settings_for
from tests.core.helpers import body, create, in_seconds, take
from tests.support.metrics import sample
from tests.support.store import copies, expire
from tests.support.tokens import SECRET, bearer
from tests.support.waiting import eventually
from workers.common.contract import paths
from workers.common.contract.keys import StoreKeys
from workers.core.main import CoreRoom

pytestmark = [pytest.mark.usefixtures("core"), BOTH_REDIS]


def one(path: str, notification_id: str) -> str:
    return path.replace("{id}", notification_id)


async def test_created_notification_is_delivered_once_to_its_recipient(http: httpx.AsyncClient) -> None:
    first = await create(http, ["alice"], "n-1", content=b"\x00binary\xff")
    second = await create(http, ["alice"], "n-2")
    assert first < second, "ids sort by creation time"
    taken = await take(http, "alice")
    assert [n["id"] for n in taken] == [first, second]
    assert taken[0] == {
        "id": first,
        "created_at": taken[0]["created_at"],
        "created_by": "producer-1",
        "seen": False,
        "content_type": "text/plain",
        "content": base64.b64encode(b"\x00binary\xff").decode(),
    }
    assert taken[0]["created_at"].endswith("Z")
    assert await take(http, "alice") == []
    assert await take(http, "bob") == []


BAD_TOKENS = {
    "missing": {},
    "empty": {"Authorization": "Bearer"},
    "basic": {"Authorization": "Basic dXNlcjpwdw=="},
    "malformed": {"Authorization": "Bearer not-a-jwt"},
    "expired": {"Authorization": "Bearer " + jwt.encode({"sub": "p", "exp": int(time.time()) - 10}, SECRET)},
    "wrong-secret": {
        "Authorization": "Bearer " + jwt.encode({"sub": "p", "exp": int(time.time()) + 60}, "another-secret" * 5)
    },
    "alg-none": {
        "Authorization": "Bearer " + jwt.encode({"sub": "p", "exp": int(time.time()) + 60}, None, algorithm="none")
    },
    "no-sub": {"Authorization": "Bearer " + jwt.encode({"exp": int(time.time()) + 60}, SECRET)},
    "no-exp": {"Authorization": "Bearer " + jwt.encode({"sub": "p"}, SECRET)},
}


async def test_bad_tokens_are_401_with_a_json_detail(http: httpx.AsyncClient) -> None:
    for case, headers in BAD_TOKENS.items():
        for method, path in [("GET", paths.UNDELIVERED), ("POST", paths.UNDELIVERED), ("GET", paths.DELIVERED)]:
            response = await http.request(method, path, headers=headers, json=body(["u"], "x"))
            assert response.status_code == 401, (case, method, path)
            assert isinstance(response.json()["detail"], str)


async def test_hs512_tokens_are_accepted(http: httpx.AsyncClient) -> None:
    response = await http.get(paths.UNDELIVERED, headers=bearer("alice", algorithm="HS512"))
    assert response.status_code == 200


async def test_create_without_the_produce_role_is_403(http: httpx.AsyncClient) -> None:
    response = await http.post(paths.UNDELIVERED, json=body(["alice"], "n"), headers=bearer("someone", "other"))
    assert response.status_code == 403
    assert "detail" in response.json()


async def test_body_over_the_http_limit_is_413_before_parsing(http: httpx.AsyncClient) -> None:
    oversized = b"{" + b" " * 9000 + b"}"
    response = await http.post(paths.UNDELIVERED, content=oversized, headers=producer())
    assert response.status_code == 413
    assert "detail" in response.json()
    put = await http.put(one(paths.DELIVERED_SEEN, "x"), content=oversized, headers=bearer("alice"))
    assert put.status_code == 413


async def test_chunked_body_over_the_http_limit_is_413(http: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 1000

    response = await http.post(paths.UNDELIVERED, content=chunks(), headers=producer())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_decoded_content_over_the_content_limit_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post(paths.UNDELIVERED, json=body(["alice"], "big", content=b"x" * 4097), headers=producer())
    assert response.status_code == 413
    at_limit = await http.post(paths.UNDELIVERED, json=body(["alice"], "ok", content=b"x" * 4096), headers=producer())
    assert at_limit.status_code == 200


BAD_FIELDS = [
    {"content": "not base64!"},
    {"content": "YWJj="},
    {"content": 12},
    {"user_ids": ["has space"]},
    {"user_ids": ["x" * 129]},
    {"user_ids": "alice"},
    {"producer_notification_id": ""},
    {"producer_notification_id": "x" * 129},
    {"producer_notification_id": True},
    {"content_type": ""},
    {"invalidate_at": "tomorrow"},
    {"invalidate_at": "2099-01-01T00:00:00"},
    {"invalidate_at": "2001-01-01T00:00:00Z"},
    {"unknown": 1},
]


async def test_bad_fields_are_422_and_store_nothing(http: httpx.AsyncClient) -> None:
    for bad in BAD_FIELDS:
        response = await http.post(paths.UNDELIVERED, json={**body(["alice"], "n"), **bad}, headers=producer())
        assert response.status_code == 422, (bad, response.text)
        assert "detail" in response.json()
    assert await take(http, "alice") == []


async def test_malformed_json_and_missing_fields_are_422(http: httpx.AsyncClient) -> None:
    malformed = await http.post(paths.UNDELIVERED, content=b'{"user_ids": [', headers=producer())
    assert malformed.status_code == 422
    missing = await http.post(paths.UNDELIVERED, json={"user_ids": ["alice"]}, headers=producer())
    assert missing.status_code == 422


async def test_repeated_producer_notification_id_is_409_and_stores_nothing(http: httpx.AsyncClient) -> None:
    await create(http, ["alice"], 42)
    again = await http.post(paths.UNDELIVERED, json=body(["alice", "bob"], "42"), headers=producer())
    assert again.status_code == 409
    assert "detail" in again.json()
    assert len(await take(http, "alice")) == 1
    assert await take(http, "bob") == []
    await create(http, ["bob"], 42, by="producer-2")
    assert len(await take(http, "bob")) == 1


async def test_concurrent_duplicate_creates_store_exactly_one(http: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(http.post(paths.UNDELIVERED, json=body(["alice"], "same"), headers=producer()) for _ in range(25))
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 24
    assert len(await take(http, "alice")) == 1


async def test_multicast_keeps_delivery_seen_and_deleted_state_per_user(http: httpx.AsyncClient) -> None:
    nid = await create(http, ["alice", "bob", "alice"], "multi")
    assert [n["id"] for n in await take(http, "alice")] == [nid]
    missing = await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("bob"))
    assert missing.status_code == 404, "not delivered to bob yet"
    assert (
        await http.put(one(paths.DELIVERED_SEEN, nid), json={"seen": True}, headers=bearer("alice"))
    ).status_code == 204
    assert [n["id"] for n in await take(http, "bob")] == [nid]
    bob_view = (await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("bob"))).json()
    assert bob_view["seen"] is False
    assert (await http.delete(one(paths.DELIVERED_ONE, nid), headers=bearer("alice"))).status_code == 204
    assert (await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("alice"))).status_code == 404
    assert (await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("bob"))).status_code == 200
    assert (await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("carol"))).status_code == 404


async def test_broadcast_is_stored_once_and_delivered_lazily_to_every_user(
    http: httpx.AsyncClient, redis: aioredis.Redis, stream: str
) -> None:
    before = {key async for key in redis.scan_iter(match=f"nf:{stream}:*", count=10_000)}
    nid = await create(http, [], "everyone")
    created = {key async for key in redis.scan_iter(match=f"nf:{stream}:*", count=10_000)} - before
    keys = StoreKeys(stream)
    written_by_purger = {
        key for shard in keys.shards for key in (keys.feed_marks(shard), keys.feed_floor(shard), keys.purger(shard))
    }
    per_shard = {
        key
        for shard in keys.shards
        for key in (keys.notification(shard, nid), keys.broadcasts(shard), keys.seq(shard), keys.outbox(shard))
    }
    registered = {keys.producer_ids(shard, "producer-1") for shard in keys.shards}
    assert created - written_by_purger - per_shard - registered == set()
    assert len(await copies(redis, keys, nid)) == keys.shard_count, "one copy in each shard, no per-user key"
    for user in ("alice", "bob", "someone-new"):
        assert [n["id"] for n in await take(http, user)] == [nid]
        assert await take(http, user) == []
    assert (await http.delete(one(paths.DELIVERED_ONE, nid), headers=bearer("alice"))).status_code == 204
    assert await take(http, "alice") == [], "a deleted broadcast is not delivered again"
    assert (await http.get(one(paths.DELIVERED_ONE, nid), headers=bearer("bob"))).status_code == 200


async def test_expired_notifications_are_never_delivered(
    http: httpx.AsyncClient, redis: aioredis.Redis, stream: str
) -> None:
    unicast = await create(http, ["alice"], "u", invalidate_at=in_seconds(60))
    broadcast = await create(http, [], "b", invalidate_at=in_seconds(60))
    keep = await create(http, ["alice"], "k", invalidate_at=in_seconds(3600))
    await expire(redis, StoreKeys(stream), unicast, broadcast, at=time.time() - 1)  # as if the minute had passed
    assert [n["id"] for n in await take(http, "alice")] == [keep]
    assert await take(http, "bob") == []


async def test_long_poll_answers_as_soon_as_a_notification_arrives(http: httpx.AsyncClient) -> None:
    assert await take(http, "alice") == []
    poll = asyncio.create_task(take(http, "alice", wait=30))
    other = asyncio.create_task(take(http, "bob", wait=30))

    async def both_waiting() -> bool:
        return sample("notifier_core_waiting_polls") == 2

    await eventually(both_waiting)
    nid = await create(http, ["alice"], "wake")
    taken = await asyncio.wait_for(poll, 20)
    assert [n["id"] for n in taken] == [nid]
    assert not other.done()
    broadcast = await create(http, [], "wake-all")
    assert [n["id"] for n in await asyncio.wait_for(other, 20)] == [broadcast]


async def test_long_poll_with_nothing_arriving_answers_empty(http: httpx.AsyncClient) -> None:
    assert await take(http, "alice", wait=0.2) == []


async def test_bad_wait_is_422(http: httpx.AsyncClient) -> None:
    for wait in ("61", "-1", "soon"):
        response = await http.get(paths.UNDELIVERED, params={"wait": wait}, headers=bearer("alice"))
        assert response.status_code == 422, wait


async def test_creator_changes_invalidate_at(http: httpx.AsyncClient) -> None:
    nid = await create(http, ["alice"], "inv", invalidate_at=in_seconds(60))
    path = one(paths.UNDELIVERED_INVALIDATE_AT, nid)
    assert (await http.put(path, json={"invalidate_at": in_seconds(3600)}, headers=producer())).status_code == 204
    assert (await http.put(path, json={"invalidate_at": None}, headers=producer())).status_code == 204
    past = await http.put(path, json={"invalidate_at": in_seconds(-5)}, headers=producer())
    assert past.status_code == 422
    assert (await http.put(path, json={"invalidate_at": None}, headers=producer("producer-2"))).status_code == 404
    assert (await http.put(path, json={"invalidate_at": None}, headers=bearer("alice"))).status_code == 403
    unknown = one(paths.UNDELIVERED_INVALIDATE_AT, "0000nothing")
    assert (await http.put(unknown, json={"invalidate_at": None}, headers=producer())).status_code == 404
    assert (await http.put(path, json={"invalidate_at": "never"}, headers=producer())).status_code == 422
    assert [n["id"] for n in await take(http, "alice")] == [nid]


async def test_moving_invalidate_at_closer_expires_the_notification(
    http: httpx.AsyncClient, redis: aioredis.Redis, stream: str
) -> None:
    nid = await create(http, ["alice"], "soon")
    path = one(paths.UNDELIVERED_INVALIDATE_AT, nid)
    assert (await http.put(path, json={"invalidate_at": in_seconds(30)}, headers=producer())).status_code == 204
    keys = StoreKeys(stream)
    assert await redis.zscore(keys.expiry(keys.shard_of("alice")), nid) is not None
    await expire(redis, keys, nid, at=time.time() - 1)
    assert (await http.put(path, json={"invalidate_at": None}, headers=producer())).status_code == 404
    assert await take(http, "alice") == []


async def test_delivered_pages_newest_first_with_a_seen_filter(http: httpx.AsyncClient) -> None:
    ids = [await create(http, ["alice"], f"p{i}") for i in range(5)]
    await take(http, "alice")
    newest_first = list(reversed(ids))

    async def page(**params: object) -> list[str]:
        response = await http.get(paths.DELIVERED, params=params, headers=bearer("alice"))
        assert response.status_code == 200, response.text
        return [n["id"] for n in response.json()]

    assert await page() == newest_first
    assert await page(page_idx=0, page_size=2) == newest_first[:2]
    assert await page(page_idx=1, page_size=2) == newest_first[2:4]
    assert await page(page_idx=3, page_size=2) == []
    await http.put(one(paths.DELIVERED_SEEN, ids[1]), json={"seen": True}, headers=bearer("alice"))
    assert await page(seen="true") == [ids[1]]
    assert await page(seen="false") == [i for i in newest_first if i != ids[1]]
    await http.put(one(paths.DELIVERED_SEEN, ids[1]), json={"seen": False}, headers=bearer("alice"))
    assert await page(seen="true") == []
    assert await page(page_size=100) == newest_first


async def test_bad_paging_is_422(http: httpx.AsyncClient) -> None:
    for params in ({"page_size": 0}, {"page_size": 101}, {"page_idx": -1}, {"seen": "maybe"}):
        response = await http.get(paths.DELIVERED, params=params, headers=bearer("alice"))
        assert response.status_code == 422, params
        assert "detail" in response.json()


async def test_seen_and_delete_answer_404_unless_delivered_to_the_caller(http: httpx.AsyncClient) -> None:
    nid = await create(http, ["alice"], "guard")
    seen, delete = one(paths.DELIVERED_SEEN, nid), one(paths.DELIVERED_ONE, nid)
    assert (await http.put(seen, json={"seen": True}, headers=bearer("alice"))).status_code == 404
    assert (await http.delete(delete, headers=bearer("alice"))).status_code == 404
    await take(http, "alice")
    assert (await http.put(seen, json={"seen": True}, headers=bearer("bob"))).status_code == 404
    assert (await http.delete(delete, headers=bearer("bob"))).status_code == 404
    assert (await http.put(seen, json={"seen": "yes please"}, headers=bearer("alice"))).status_code == 422
    assert (await http.put(seen, json={"seen": True}, headers=bearer("alice"))).status_code == 204
    assert (await http.get(delete, headers=bearer("alice"))).json()["seen"] is True
    assert (await http.delete(delete, headers=bearer("alice"))).status_code == 204
    assert (await http.delete(delete, headers=bearer("alice"))).status_code == 404
    assert (await http.put(seen, json={"seen": False}, headers=bearer("alice"))).status_code == 404


async def test_every_error_is_json_with_a_detail(http: httpx.AsyncClient) -> None:
    unknown = await http.get("/api/v1/nothing-here", headers=bearer("alice"))
    assert unknown.status_code == 404
    assert "detail" in unknown.json()
    wrong_method = await http.patch(paths.UNDELIVERED, headers=bearer("alice"))
    assert wrong_method.status_code == 405
    assert "detail" in wrong_method.json()


async def test_openapi_document_lists_every_endpoint(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    for path in (paths.UNDELIVERED, paths.UNDELIVERED_INVALIDATE_AT, paths.DELIVERED, paths.DELIVERED_ONE):
        assert path in document["paths"]
    assert (await http.get("/docs")).status_code == 200


async def test_metrics_count_requests_by_route_template(http: httpx.AsyncClient, core: CoreRoom) -> None:
    def count() -> float:
        labels = {"route": paths.DELIVERED_ONE, "method": "GET", "status": "404"}
        return sample("notifier_core_requests_total", labels)

    before = count()
    await http.get(one(paths.DELIVERED_ONE, "some-id"), headers=bearer("alice"))
    assert count() == before + 1


async def test_rs256_tokens_are_accepted_with_the_configured_public_key(
    stream: str, amqp_namespace: str, amqp: object
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, key, algorithm="RS256")
    forged = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")
    settings = settings_for(stream, amqp_namespace, jwt_public_key=public.decode())
    async with running_core(settings) as room, httpx.AsyncClient(base_url=f"http://127.0.0.1:{room.http_port}") as http:
        ok = await http.get(paths.UNDELIVERED, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        bad = await http.get(paths.UNDELIVERED, headers={"Authorization": f"Bearer {forged}"})
        assert bad.status_code == 401

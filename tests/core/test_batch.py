"""A batch of creates (`POST /api/v1/notifications/undelivered/batch`): each create answered as if sent alone."""

from __future__ import annotations

import base64

import httpx

from tests.conftest import BOTH_REDIS
from tests.core.conftest import EventTap, producer
from tests.core.helpers import body, take
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from workers.common.contract import paths

pytestmark = BOTH_REDIS


async def batch(http: httpx.AsyncClient, items: list[dict[str, object]], **headers: str) -> httpx.Response:
    return await http.post(paths.UNDELIVERED_BATCH, json={"notifications": items}, headers=headers or producer())


async def test_each_create_of_a_batch_is_answered_in_order_as_if_sent_alone(
    http: httpx.AsyncClient, tap: EventTap
) -> None:
    past = "2000-01-01T00:00:00+00:00"
    items = [
        body(["alice"], "b-1"),
        body(["alice", "bob"], "b-2"),
        body(["carol"], "b-1"),  # the same producer id again, in the same batch
        body(["dave"], "b-3", invalidate_at=past),
        body(["erin"], "b-4", content=b"x" * 5000),
        {**body(["frank"], "b-5"), "content": "not base64!"},
        body([], "b-6"),
    ]
    response = await batch(http, items)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 200, 409, 422, 413, 422, 200]
    assert all(set(r) == {"status", "id"} for r in results if r["status"] == 200)
    assert results[2]["detail"] == "producer_notification_id was already used"
    assert results[3]["detail"][0]["msg"] == "invalidate_at must be in the future"
    assert isinstance(results[4]["detail"], str)
    assert [n["id"] for n in await take(http, "alice")] == [results[0]["id"], results[1]["id"], results[6]["id"]]
    assert [n["id"] for n in await take(http, "bob")] == [results[1]["id"], results[6]["id"]]
    for user in ("carol", "dave", "erin", "frank"):
        assert [n["id"] for n in await take(http, user)] == [results[6]["id"]], f"{user} got only the broadcast"
    await eventually(lambda: {e.notification.id for _, e in tap.events} >= {results[i]["id"] for i in (0, 1, 6)})

    again = await batch(http, [body(["alice"], "b-1"), body(["alice"], "b-7")])
    assert [r["status"] for r in again.json()["results"]] == [409, 200], "a repeated batch stores only what is new"


async def test_a_batch_is_refused_whole_when_it_does_not_validate_or_authorize(http: httpx.AsyncClient) -> None:
    assert (await batch(http, [])).status_code == 422
    assert (await batch(http, [body(["alice"], "x")] * 501)).status_code == 422
    bad_user = await batch(http, [body(["alice"], "ok"), body(["not a user!"], "bad")])
    assert bad_user.status_code == 422
    assert bad_user.json()["detail"][0]["loc"][:3] == ["body", "notifications", 1]
    assert (await batch(http, [body(["alice"], "y")], Authorization="Bearer nope")).status_code == 401
    assert (await batch(http, [body(["alice"], "z")], **bearer("alice"))).status_code == 403
    assert await take(http, "alice") == [], "nothing of a refused batch is stored"


async def test_a_batch_has_its_own_body_limit(http: httpx.AsyncClient) -> None:
    """Up to 500 creates of up to 4 KiB content fit the batch limit (4 MiB), far above the 8 KiB of one request."""
    content = b"y" * 4096
    items = [body([f"user-{n}"], f"big-{n}", content=content) for n in range(500)]
    response = await batch(http, items)
    assert response.status_code == 200, response.text[:200]
    assert {r["status"] for r in response.json()["results"]} == {200}
    one = await take(http, "user-499")
    assert base64.b64decode(one[0]["content"]) == content
    too_large = await http.post(
        paths.UNDELIVERED_BATCH,
        content=b'{"notifications": [' + b" " * (4 * 1024 * 1024) + b"]}",
        headers={**producer(), "content-type": "application/json"},
    )
    assert too_large.status_code == 413
    assert "over 4194304 bytes" in too_large.json()["detail"]

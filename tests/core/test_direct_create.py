"""The create endpoint is served below FastAPI (`DirectCreate`); what a producer sees is the API of
DESIGN section 6 all the same: media types, refusals with their headers, metrics and store outages."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.types import Receive, Scope, Send

from tests.conftest import REDIS_URL
from tests.core.conftest import producer, running_core, settings_for
from tests.core.helpers import body, take
from tests.support.metrics import sample
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import bearer
from workers.common.contract import paths
from workers.common.runtime.auth import TokenVerifier
from workers.core.api import DirectCreate, Services, create_app
from workers.core.store import Store
from workers.core.tokens import CachingVerifier
from workers.core.wakeups import Wakeups


def created(status: int) -> float:
    labels = {"route": paths.UNDELIVERED, "method": "POST", "status": str(status)}
    return sample("notifier_core_requests_total", labels)


@pytest.mark.usefixtures("core")
async def test_json_with_parameters_is_created_and_other_media_types_are_422(http: httpx.AsyncClient) -> None:
    raw = json.dumps(body(["alice"], "with-charset")).encode()
    answer = await http.post(
        paths.UNDELIVERED, content=raw, headers={**producer(), "Content-Type": "application/json; charset=utf-8"}
    )
    assert answer.status_code == 200, answer.text
    assert [n["id"] for n in await take(http, "alice")] == [answer.json()["id"]]
    as_text = await http.post(
        paths.UNDELIVERED,
        content=json.dumps(body(["alice"], "as-text")).encode(),
        headers={**producer(), "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 422
    assert "detail" in as_text.json()
    assert await take(http, "alice") == []


@pytest.mark.usefixtures("core")
async def test_refusals_keep_their_headers_and_json_detail(http: httpx.AsyncClient) -> None:
    anonymous = await http.post(paths.UNDELIVERED, json=body(["alice"], "n"))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json() == {"detail": "missing bearer token"}
    content = body(["alice"], "bad-content") | {"content": "not base64!"}
    assert (await http.post(paths.UNDELIVERED, json=content, headers=producer())).json() == {
        "detail": [{"loc": [], "msg": "content is not valid base64", "type": "value_error"}]
    }
    assert await take(http, "alice") == []


@pytest.mark.usefixtures("core")
async def test_creates_and_refusals_are_counted_under_the_route_template(http: httpx.AsyncClient) -> None:
    ok, forbidden, invalid = created(200), created(403), created(422)
    assert (await http.post(paths.UNDELIVERED, json=body(["alice"], "a"), headers=producer())).status_code == 200
    refused = await http.post(paths.UNDELIVERED, json=body(["alice"], "b"), headers=bearer("x", "other"))
    assert refused.status_code == 403
    assert (await http.post(paths.UNDELIVERED, json={"user_ids": 1}, headers=producer())).status_code == 422
    assert (created(200), created(403), created(422)) == (ok + 1, forbidden + 1, invalid + 1)


async def test_a_create_while_redis_is_away_is_503_with_retry_after(
    stream: str, amqp_namespace: str, amqp: object
) -> None:
    target = urlsplit(REDIS_URL)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}{target.path}"
        async with (
            running_core(settings_for(stream, amqp_namespace, redis_url=url)) as room,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{room.http_port}", timeout=30) as http,
        ):
            await proxy.cut()
            answer = await http.post(paths.UNDELIVERED, json=body(["alice"], "n"), headers=producer())
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.json() == {"detail": "store unavailable, retry later"}
            proxy.restore()
            again = await http.post(paths.UNDELIVERED, json=body(["alice"], "n"), headers=producer())
            assert again.status_code == 200, again.text


async def test_only_bodies_that_do_not_validate_go_on_to_fastapi(stream: str, amqp_namespace: str) -> None:
    settings = settings_for(stream, amqp_namespace)
    redis = aioredis.Redis.from_url(REDIS_URL)
    store = Store(redis, stream=stream, retention_s=60)
    services = Services(
        store=store,
        wakeups=Wakeups(channel=store.keys.wake),
        verifier=CachingVerifier(TokenVerifier.from_settings(settings)),
        settings=settings,
        stopping=asyncio.Event(),
    )
    route = create_app(services).routes[0]
    passed_on: list[str] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": (await receive())["body"]})

    app = DirectCreate(downstream, services=services, route=route)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core") as http:
            valid = await http.post(paths.UNDELIVERED, json=body(["alice"], "n"), headers=producer())
            assert valid.status_code == 200
            assert passed_on == []
            invalid = await http.post(paths.UNDELIVERED, content=b'{"user_ids": [', headers=producer())
            assert (invalid.status_code, invalid.content) == (299, b'{"user_ids": [')
            assert (await http.get(paths.UNDELIVERED, headers=producer())).status_code == 299
            assert passed_on == [f"POST {paths.UNDELIVERED}", f"GET {paths.UNDELIVERED}"]
    finally:
        keys = [key async for key in redis.scan_iter(match=f"nf:{stream}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

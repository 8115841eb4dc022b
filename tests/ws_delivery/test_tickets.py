"""Tickets: single use, expiring, required; the WebSocket upgrade answers 400/401 without a good one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import BOTH_REDIS
from tests.support.tokens import token
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import StartInstance, open_device
from workers.client.http import get_ticket, websocket_url
from workers.common.contract.keys import GatewayKeys

pytestmark = BOTH_REDIS


async def status_of_upgrade(url: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url)
    return info.value.response.status_code


async def test_ticket_opens_the_websocket_once(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    ticket = await get_ticket(http, ws_url=instance.url, token=token("alice"))
    ws = await websockets.connect(websocket_url(instance.url, ticket))
    await eventually(lambda: instance.room.hub.devices("alice") == 1)
    assert await status_of_upgrade(websocket_url(instance.url, ticket)) == 401
    await ws.close()


async def test_unknown_ticket_is_401_and_missing_ticket_is_400(start_instance: StartInstance) -> None:
    instance = await start_instance()
    assert await status_of_upgrade(websocket_url(instance.url, "x" * 32)) == 401
    assert await status_of_upgrade(websocket_url(instance.url, "")) == 400


async def test_expired_ticket_is_401(
    start_instance: StartInstance, http: httpx.AsyncClient, redis: aioredis.Redis, stream: str
) -> None:
    instance = await start_instance(ticket_ttl_s=0.05)
    ticket = await get_ticket(http, ws_url=instance.url, token=token("alice"))
    key = GatewayKeys(stream).ticket(ticket)

    async def expired() -> bool:
        return not await redis.exists(key)

    await eventually(expired)
    assert await status_of_upgrade(websocket_url(instance.url, ticket)) == 401


async def test_two_racing_uses_of_one_ticket_open_exactly_one_websocket(
    start_instance: StartInstance, http: httpx.AsyncClient
) -> None:
    instance = await start_instance()
    ticket = await get_ticket(http, ws_url=instance.url, token=token("alice"))
    url = websocket_url(instance.url, ticket)
    results = await asyncio.gather(*(websockets.connect(url) for _ in range(2)), return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InvalidStatus)]
    assert len(opened) == 1
    assert [r.response.status_code for r in refused] == [401]
    await opened[0].close()


async def test_ticket_needs_a_valid_token(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    missing = await http.get(f"{instance.url}/api/v1/ticket")
    forged = await http.get(f"{instance.url}/api/v1/ticket", headers={"Authorization": "Bearer not.a.token"})
    assert (missing.status_code, forged.status_code) == (401, 401)
    assert "detail" in missing.json()


async def test_ticket_is_bound_to_the_token_subject(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    ws = await open_device(http, instance, "bob")
    await eventually(lambda: instance.room.hub.devices("bob") == 1)
    assert instance.room.hub.devices("alice") == 0
    await ws.close()


async def test_a_connection_that_never_sends_a_request_is_dropped(start_instance: StartInstance) -> None:
    instance = await start_instance(handshake_timeout_s=0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", instance.room.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()

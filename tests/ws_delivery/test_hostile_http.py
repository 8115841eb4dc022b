"""ws_delivery's HTTP side under hostile requests, over real sockets."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.common.hostile_tokens import lenient_tokens
from tests.support.tokens import SECRET, token
from tests.ws_delivery.conftest import Instance, StartInstance
from workers.client.http import get_ticket, websocket_url
from workers.common.contract import paths


@pytest.fixture
async def instance(start_instance: StartInstance) -> Instance:
    return await start_instance()


async def exchange(instance: Instance, raw: bytes) -> bytes:
    """Send raw bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", instance.room.port)
    writer.write(raw)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def status_and_body(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_a_plain_get_of_the_websocket_path_is_426_and_leaves_the_ticket_valid(
    instance: Instance, http: httpx.AsyncClient
) -> None:
    ticket = await get_ticket(http, ws_url=instance.url, token=token("alice"))
    plain = await http.get(f"{instance.url}{paths.WEBSOCKET}", params={"ticket": ticket})
    assert plain.status_code == 426
    assert plain.json() == {"detail": "a WebSocket upgrade is required"}
    fake = await http.get(
        f"{instance.url}{paths.WEBSOCKET}",
        params={"ticket": ticket},
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"},  # no key
    )
    assert fake.status_code == 426
    device = await websockets.connect(websocket_url(instance.url, ticket))
    assert device.protocol.state.name == "OPEN"
    await device.close()


async def test_a_garbage_request_line_is_answered_400_with_a_json_detail(instance: Instance) -> None:
    status, body = status_and_body(await exchange(instance, b"\x16\x03\x01 garbage here\r\n\r\n"))
    assert status == 400
    assert body == {"detail": "invalid HTTP request"}


async def test_pipelined_requests_get_the_first_answer_and_connection_close(instance: Instance) -> None:
    request = b"GET /openapi.json HTTP/1.1\r\nHost: ws\r\n\r\n"
    raw = await exchange(instance, request * 3)
    assert raw.count(b"HTTP/1.1 ") == 1
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nConnection: close\r\n" in raw


async def test_pipelined_bytes_after_an_upgrade_request_do_not_break_the_handshake(
    instance: Instance, http: httpx.AsyncClient
) -> None:
    ticket = await get_ticket(http, ws_url=instance.url, token=token("bob"))
    reader, writer = await asyncio.open_connection("127.0.0.1", instance.room.port)
    writer.write(
        f"GET {paths.WEBSOCKET}?ticket={ticket} HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        "GET /openapi.json HTTP/1.1\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")


async def test_repeated_headers_are_refused_not_crashed_on(instance: Instance) -> None:
    bearer = f"Bearer {token('alice')}".encode()
    raw = await exchange(
        instance,
        b"GET "
        + paths.TICKET.encode()
        + b" HTTP/1.1\r\nHost: ws\r\nAuthorization: "
        + bearer
        + b"\r\nAuthorization: "
        + bearer
        + b"\r\n\r\n",
    )
    status, body = status_and_body(raw)
    assert status == 401
    assert body == {"detail": "missing bearer token"}


@pytest.mark.parametrize("name", sorted(lenient_tokens(SECRET)))
async def test_each_lenient_token_gets_no_ticket(instance: Instance, http: httpx.AsyncClient, name: str) -> None:
    response = await http.get(
        f"{instance.url}{paths.TICKET}", headers={"Authorization": f"Bearer {lenient_tokens(SECRET)[name]}"}
    )
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}


async def test_every_status_a_path_answers_is_in_its_openapi_document(
    instance: Instance, http: httpx.AsyncClient
) -> None:
    document = (await http.get(f"{instance.url}/openapi.json")).json()
    websocket = document["paths"][paths.WEBSOCKET]["get"]["responses"]
    assert {"101", "400", "401", "426", "503"} <= set(websocket)
    assert {"200", "401", "503"} <= set(document["paths"][paths.TICKET]["get"]["responses"])

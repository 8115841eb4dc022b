"""Closes with their codes: heartbeat, lagged, bad frames, admin (on every instance), shutdown."""

from __future__ import annotations

import asyncio
import socket

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import BOTH_REDIS
from tests.support.metrics import sample
from tests.support.tokens import bearer, token
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Bus, Instance, StartInstance, notification, open_device, receive
from workers.client.http import get_ticket, websocket_url

pytestmark = BOTH_REDIS


def closes(reason: str) -> float:
    return sample("notifier_ws_closes_total", {"reason": reason})


def closing_as(instance: Instance, user: str, reason: str) -> bool:
    return any(conn.close_reason == reason for conn in instance.room.hub.connections(user))


async def close_code(device: ClientConnection) -> int | None:
    """Read whatever is left until the close frame; the close code the server sent."""
    try:
        async for _ in device:
            pass
    except ConnectionClosed:
        pass
    return device.close_code


async def test_two_unanswered_pings_close_with_4001(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance(ping_interval_s=0.05, close_timeout_s=5)
    device = await open_device(http, instance, "alice", ping_interval=None)
    device.transport.pause_reading()  # pings go unread, so unanswered
    await eventually(lambda: closing_as(instance, "alice", "heartbeat"))
    device.transport.resume_reading()
    assert await close_code(device) == 4001
    assert device.close_reason


async def test_a_device_answering_pings_stays_connected(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance(ping_interval_s=0.2)
    device = await open_device(http, instance, "alice")
    (server_side,) = instance.room.hub.connections("alice")
    # Seven ping intervals: a device that left two pings in a row unanswered would be closed after 0.4-0.6 s
    # (the test above). The time passing is what is tested, so it is slept, not waited for.
    await asyncio.sleep(1.5)
    assert server_side.close_reason is None
    assert list(instance.room.hub.connections("alice")) == [server_side]
    await device.close()


async def test_overflowing_send_buffer_closes_as_lagged(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance(send_buffer=4, close_timeout_s=5, content_limit_bytes=65536)
    ticket = await get_ticket(http, ws_url=instance.url, token=token("alice"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", instance.room.port))
    device = await websockets.connect(websocket_url(instance.url, ticket), sock=sock, max_queue=1)
    device.transport.pause_reading()
    for n in range(100):
        big = notification(f"big{n}")
        big.content = b"x" * 65536
        await bus.publish(big, "alice")
        if closing_as(instance, "alice", "lagged"):
            break
    await eventually(lambda: closing_as(instance, "alice", "lagged"))
    device.transport.resume_reading()
    assert await close_code(device) == 4002


async def test_text_frame_closes_with_1003_and_other_devices_carry_on(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance()
    bad, good = await open_device(http, instance, "alice"), await open_device(http, instance, "alice")
    closes_before = closes("text_frame")
    await bad.send("hello")
    assert await close_code(bad) == 1003
    assert bad.close_reason
    await eventually(lambda: closes("text_frame") == closes_before + 1)
    await bus.publish(notification("n1"), "alice")
    assert (await receive(good)).notification.id == "n1"


async def test_undecodable_confirmation_closes_with_1007_and_other_devices_carry_on(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance()
    bad, good = await open_device(http, instance, "alice"), await open_device(http, instance, "alice")
    await bad.send(b"\xff\xff\xff")
    assert await close_code(bad) == 1007
    assert bad.close_reason
    await bus.publish(notification("n1"), "alice")
    assert (await receive(good)).notification.id == "n1"


async def test_admin_close_reaches_every_instance(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    first, second = await start_instance(), await start_instance()
    alice = [await open_device(http, first, "alice"), await open_device(http, second, "alice")]
    bob = await open_device(http, second, "bob")
    response = await http.delete(f"{first.url}/api/v1/connection/alice", headers=bearer("root", "notifier_admin"))
    assert response.status_code == 204
    assert [await close_code(device) for device in alice] == [4003, 4003]
    assert second.room.hub.devices("bob") == 1
    await bob.close()


async def test_admin_close_needs_the_admin_role(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    url = f"{instance.url}/api/v1/connection/alice"
    anonymous = await http.delete(url)
    plain_user = await http.delete(url, headers=bearer("mallory"))
    assert (anonymous.status_code, plain_user.status_code) == (401, 403)


async def test_shutdown_closes_devices_with_1001(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    device = await open_device(http, instance, "alice")
    await instance.stop()
    assert await close_code(device) == 1001

"""`python -m workers.ws_delivery` as operators run it (uvloop, signals, ops port)."""

from __future__ import annotations

import asyncio
import signal

import httpx
import websockets

from tests.support.processes import RoomProcess
from tests.support.tokens import token
from tests.ws_delivery.conftest import Bus, ack, notification, receive
from workers.client.http import get_ticket, websocket_url


async def test_room_process_delivers_and_closes_devices_with_1001_on_sigterm(
    ws_process: tuple[RoomProcess, str], bus: Bus
) -> None:
    room, url = ws_process
    async with httpx.AsyncClient() as http:
        ticket = await get_ticket(http, ws_url=url, token=token("alice"))
    device = await websockets.connect(websocket_url(url, ticket))
    await bus.publish(notification("n1"), "alice")
    message = await receive(device)
    await ack(device, message)
    assert message.notification.id == "n1"
    assert await bus.confirmations(1) == [("alice", "n1")]
    room.process.send_signal(signal.SIGTERM)
    await device.wait_closed()
    assert device.close_code == 1001
    assert await asyncio.to_thread(room.process.wait, 15) == 0
    assert "1 connections" in room.log

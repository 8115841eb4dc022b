"""`python -m workers.ws_delivery` as operators run it (uvloop, signals, ops port)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import websockets
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import free_port
from tests.processes import start_room
from tests.ws_delivery.conftest import SECRET, Bus, ack, notification, receive, token
from workers.client.http import get_ticket, websocket_url


async def test_room_process_delivers_and_closes_devices_with_1001_on_sigterm(
    env: dict[str, str], amqp: AbstractRobustConnection, bus: Bus, tmp_path: Path
) -> None:
    port = free_port()
    room = start_room(
        "ws_delivery",
        env={**env, "NOTIFIER_HTTP_PORT": str(port), "NOTIFIER_JWT_SECRET": SECRET},
        log_dir=tmp_path,
        ops_port=free_port(),
    )
    try:
        await room.wait_ready()
        url = f"http://127.0.0.1:{port}"
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
    finally:
        room.kill()

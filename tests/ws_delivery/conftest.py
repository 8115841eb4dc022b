"""ws_delivery instances run in-process against the test's Redis keys and AMQP namespace.

Devices are `websockets` clients holding a ticket got over HTTP; events are published by the test
straight onto the notifications exchange, and confirmations are read straight from their queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import websockets
from aio_pika.abc import AbstractRobustConnection
from websockets.asyncio.client import ClientConnection

from tests.conftest import AMQP_URL, free_port, take_bodies
from tests.support.processes import RoomProcess, start_room
from tests.support.tokens import SECRET, token
from workers.client.http import get_ticket, websocket_url
from workers.common.contract.names import ROUTING_BY_STATUS, Topology
from workers.common.contract.wire import (
    BrokerConfirmation,
    BrokerNotification,
    Notification,
    WebSocketConfirmation,
    WebSocketMessage,
    to_timestamp,
)
from workers.ws_delivery.main import WsDeliveryRoom
from workers.ws_delivery.settings import WsSettings

TIMEOUT_S = 5.0


@dataclass
class Instance:
    room: WsDeliveryRoom
    stack: AsyncExitStack

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.room.port}"

    async def stop(self) -> None:
        await self.room.stop_intake()
        await asyncio.wait_for(self.room.drain(), 10)
        await self.stack.aclose()


StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
def ws_settings(stream: str, amqp_namespace: str, redis_url: str) -> Callable[..., WsSettings]:
    def make(**overrides: Any) -> WsSettings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "amqp_url": AMQP_URL,
            "stream": stream,
            "amqp_namespace": amqp_namespace,
            "jwt_secret": SECRET,
            "http_host": "127.0.0.1",
            "http_port": 0,
            "close_timeout_s": 2.0,
            **overrides,
        }
        return WsSettings(**values)

    return make


@pytest.fixture
async def start_instance(
    ws_settings: Callable[..., WsSettings], amqp: AbstractRobustConnection
) -> AsyncIterator[StartInstance]:
    instances: list[Instance] = []

    async def start(**overrides: Any) -> Instance:
        room = WsDeliveryRoom(ws_settings(**overrides))
        stack = AsyncExitStack()
        await room.start(stack)
        room.is_ready = True
        instance = Instance(room, stack)
        instances.append(instance)
        return instance

    yield start
    for instance in instances:
        if not instance.room.stopping.is_set():
            await instance.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        yield client


async def open_device(http: httpx.AsyncClient, instance: Instance, user: str, **options: Any) -> ClientConnection:
    ticket = await get_ticket(http, ws_url=instance.url, token=token(user))
    return await websockets.connect(websocket_url(instance.url, ticket), compression=None, **options)


@pytest.fixture
async def alice(start_instance: StartInstance, http: httpx.AsyncClient) -> ClientConnection:
    """A device of user alice, connected to an instance with the default settings."""
    return await open_device(http, await start_instance(), "alice")


async def receive(ws: ClientConnection, timeout_s: float = TIMEOUT_S) -> WebSocketMessage:
    data = await asyncio.wait_for(ws.recv(), timeout_s)
    assert isinstance(data, bytes), "server frames are binary"
    return WebSocketMessage.FromString(data)


async def ack(ws: ClientConnection, message: WebSocketMessage) -> None:
    await ws.send(WebSocketConfirmation(message_id=message.message_id).SerializeToString())


def notification(nid: str, *, status: int = Notification.NEW, at: float = 1_700_000_000.0) -> Notification:
    n = Notification(id=nid, status=status, timestamp=to_timestamp(at))  # type: ignore[arg-type]
    if status == Notification.NEW:
        n.content_type = "text/plain"
        n.content = b"hello"
        n.created_by = "producer"
    elif status == Notification.UPDATED:
        n.seen = True
    return n


class Bus:
    """The test's side of RabbitMQ: publishes events, reads confirmations."""

    def __init__(self, connection: AbstractRobustConnection, topology: Topology) -> None:
        self._connection = connection
        self._topology = topology

    async def publish(self, event_notification: Notification, *users: str) -> None:
        channel = await self._connection.channel()
        exchange = await channel.get_exchange(self._topology.notifications_exchange)
        event = BrokerNotification(user_ids=list(users), notification=event_notification)
        await exchange.publish(
            aio_pika.Message(event.SerializeToString()), routing_key=ROUTING_BY_STATUS[event_notification.status]
        )
        await channel.close()

    async def publish_raw(self, body: bytes) -> None:
        channel = await self._connection.channel()
        exchange = await channel.get_exchange(self._topology.notifications_exchange)
        await exchange.publish(aio_pika.Message(body), routing_key=ROUTING_BY_STATUS[0])
        await channel.close()

    async def confirmations(self, count: int, *, timeout_s: float = TIMEOUT_S) -> list[tuple[str, str]]:
        """The next `count` confirmations in order (fails on fewer within the timeout)."""
        bodies = await take_bodies(self._connection, self._topology.confirmations_queue, count, timeout_s=timeout_s)
        return [(c.user_id, c.id) for c in map(BrokerConfirmation.FromString, bodies)]

    async def dead_letters(self, count: int, *, timeout_s: float = TIMEOUT_S) -> list[bytes]:
        return await take_bodies(self._connection, self._topology.dead_letter_queue, count, timeout_s=timeout_s)


@pytest.fixture
def bus(amqp: AbstractRobustConnection, topology: Topology) -> Bus:
    return Bus(amqp, topology)


@pytest.fixture
async def ws_process(
    env: dict[str, str], redis: object, amqp: AbstractRobustConnection, tmp_path: Path
) -> AsyncIterator[tuple[RoomProcess, str]]:
    """`python -m workers.ws_delivery` as operators run it, ready; the process and its HTTP base URL."""
    port = free_port()
    room = start_room(
        "ws_delivery",
        env={**env, "NOTIFIER_HTTP_PORT": str(port), "NOTIFIER_JWT_SECRET": SECRET},
        log_dir=tmp_path,
        ops_port=free_port(),
    )
    try:
        await room.wait_ready()
        yield room, f"http://127.0.0.1:{port}"
    finally:
        room.kill()

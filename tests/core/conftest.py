"""Fixtures of the core tests: an in-process core room on real Redis and RabbitMQ, tokens, an event tap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from tests.conftest import AMQP_URL, REDIS_URL
from tests.support.rooms import running_room
from tests.support.tokens import SECRET, bearer
from workers.common.contract.names import ROUTING_ALL, Topology
from workers.common.contract.wire import BrokerNotification
from workers.common.runtime.amqp import declare_topology
from workers.core.main import CoreRoom
from workers.core.settings import CoreSettings

PRODUCE = "notifier_produce"


def settings_for(stream: str, namespace: str, **overrides: object) -> CoreSettings:
    values: dict[str, object] = {
        "redis_url": REDIS_URL,
        "amqp_url": AMQP_URL,
        "stream": stream,
        "amqp_namespace": namespace,
        "jwt_secret": SECRET,
        "http_port": 0,
        "ops_port": 0,
        "relay_block_s": 0.2,
        "retry_delay_s": 0.2,
        "connect_timeout_s": 5.0,
        **overrides,
    }
    return CoreSettings.model_validate(values)


def producer(sub: str = "producer-1") -> dict[str, str]:
    return bearer(sub, PRODUCE)


def running_core(settings: CoreSettings) -> contextlib.AbstractAsyncContextManager[CoreRoom]:
    """A core room started in this event loop, stopped the way SIGTERM stops it."""
    return running_room(CoreRoom(settings), drain_timeout_s=10)


@pytest.fixture
def core_settings(stream: str, amqp_namespace: str, redis_url: str) -> CoreSettings:
    return settings_for(stream, amqp_namespace, redis_url=redis_url)


@pytest.fixture
async def core(core_settings: CoreSettings, redis: object, amqp: AbstractRobustConnection) -> AsyncIterator[CoreRoom]:
    async with running_core(core_settings) as room:
        yield room


@pytest.fixture
async def http(core: CoreRoom) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{core.http_port}", timeout=30) as client:
        yield client


@dataclass
class EventTap:
    """Every event published on the test's notifications exchange, in arrival order."""

    events: list[tuple[str, BrokerNotification]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        async with self.arrived:
            self.events.append((message.routing_key or "", BrokerNotification.FromString(message.body)))
            self.arrived.notify_all()
        await message.ack()

    async def wait_for(self, count: int, *, within: float = 10.0) -> list[tuple[str, BrokerNotification]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.events) >= count), within)
            return list(self.events)

    async def first(
        self, predicate: Callable[[str, BrokerNotification], bool], *, within: float = 10.0
    ) -> tuple[str, BrokerNotification]:
        def found() -> tuple[str, BrokerNotification] | None:
            return next(((rk, ev) for rk, ev in self.events if predicate(rk, ev)), None)

        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: found() is not None), within)
            result = found()
            assert result is not None
            return result


@pytest.fixture
async def tap(amqp: AbstractRobustConnection, topology: Topology) -> AsyncIterator[EventTap]:
    channel = await amqp.channel()
    declared = await declare_topology(channel, topology)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(declared.notifications, routing_key=ROUTING_ALL)
    tap = EventTap()
    await queue.consume(tap.on_message)
    yield tap
    await channel.close()


__all__ = ["PRODUCE", "EventTap", "producer", "running_core", "settings_for"]

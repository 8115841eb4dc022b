"""Broker outage: devices are told to long-poll (ERROR) and to come back (OK); delivery resumes after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.tcp_proxy import TcpProxy
from tests.ws_delivery.conftest import Bus, StartInstance, ack, notification, open_device, receive
from workers.common.contract.wire import WebSocketMessage


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", 5672) as running:
        yield running


async def status_frame(device: object) -> WebSocketMessage.NetworkStatus:
    message = await receive(device)  # type: ignore[arg-type]
    assert not message.HasField("notification"), "a status frame carries no notification"
    await ack(device, message)  # type: ignore[arg-type]
    return message.network_status


async def test_broker_cut_sends_error_and_restore_sends_ok(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus, proxy: TcpProxy
) -> None:
    instance = await start_instance(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1")
    early = await open_device(http, instance, "alice")
    await proxy.cut()
    assert await status_frame(early) == WebSocketMessage.ERROR
    late = await open_device(http, instance, "bob")
    assert await status_frame(late) == WebSocketMessage.ERROR, "a device connecting during the outage gets ERROR first"
    proxy.restore()
    assert await status_frame(early) == WebSocketMessage.OK
    assert await status_frame(late) == WebSocketMessage.OK
    await bus.publish(notification("after"), "alice", "bob")
    assert (await receive(early)).notification.id == "after", "the instance's queue is bound again"
    assert (await receive(late)).notification.id == "after"


async def test_confirmations_acked_during_an_outage_are_published_after_it(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus, proxy: TcpProxy
) -> None:
    instance = await start_instance(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1")
    device = await open_device(http, instance, "alice")
    await bus.publish(notification("n1"), "alice")
    delivered = await receive(device)
    await proxy.cut()
    assert await status_frame(device) == WebSocketMessage.ERROR
    await ack(device, delivered)
    proxy.restore()
    assert await status_frame(device) == WebSocketMessage.OK
    assert await bus.confirmations(1) == [("alice", "n1")]

"""Metrics: connections, frames sent, resent and acked, ack latency, events by outcome and age, confirmations, broker
gauge.

The registry is the process's, shared by every instance a test starts, so each test reads
differences from a snapshot taken before it acts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.metrics import sample
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Bus, StartInstance, ack, notification, open_device, receive
from workers.common.contract.wire import WebSocketMessage


class Snapshot:
    """Sample values at one moment; `delta` is how far each has moved since."""

    NAMES = (
        ("notifier_ws_connections", {}),
        ("notifier_ws_messages_sent_total", {}),
        ("notifier_ws_messages_resent_total", {}),
        ("notifier_ws_messages_acked_total", {}),
        ("notifier_ws_ack_latency_seconds_count", {}),
        ("notifier_ws_ack_latency_seconds_sum", {}),
        ("notifier_ws_confirmations_published_total", {}),
        ("notifier_ws_event_age_seconds_count", {}),
        ("notifier_ws_events_total", {"outcome": "delivered"}),
        ("notifier_ws_events_total", {"outcome": "duplicate"}),
        ("notifier_ws_events_total", {"outcome": "invalid"}),
        ("notifier_ws_closes_total", {"reason": "client"}),
    )

    def __init__(self) -> None:
        self.before = {self._key(n, lb): sample(n, lb) for n, lb in self.NAMES}

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> str:
        return name + "".join(f"/{v}" for v in labels.values())

    def delta(self, name: str, **labels: str) -> float:
        return sample(name, labels) - self.before[self._key(name, labels)]


async def test_connect_deliver_ack_and_close_move_their_metrics(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance()
    snapshot = Snapshot()
    phone, laptop = await open_device(http, instance, "alice"), await open_device(http, instance, "alice")
    await eventually(lambda: snapshot.delta("notifier_ws_connections") == 2)

    await bus.publish(notification("n1"), "alice")
    first, second = await receive(phone), await receive(laptop)
    await ack(phone, first)
    await ack(laptop, second)
    await ack(laptop, second)
    assert await bus.confirmations(2) == [("alice", "n1"), ("alice", "n1")]
    await eventually(lambda: snapshot.delta("notifier_ws_confirmations_published_total") == 2)
    assert snapshot.delta("notifier_ws_messages_sent_total") == 2, "one frame per device"
    assert snapshot.delta("notifier_ws_messages_acked_total") == 2, "a repeated ack counts once"
    assert snapshot.delta("notifier_ws_ack_latency_seconds_count") == 2
    assert snapshot.delta("notifier_ws_events_total", outcome="delivered") == 1
    assert snapshot.delta("notifier_ws_event_age_seconds_count") == 1, "a NEW event's age, once per event"

    await bus.publish(notification("n1"), "alice")
    await bus.publish_raw(b"\xff not protobuf")
    await bus.dead_letters(1)
    await eventually(lambda: snapshot.delta("notifier_ws_events_total", outcome="duplicate") == 1)
    assert snapshot.delta("notifier_ws_events_total", outcome="invalid") == 1

    await phone.close()
    await laptop.close()
    await eventually(lambda: snapshot.delta("notifier_ws_connections") == 0)
    assert snapshot.delta("notifier_ws_closes_total", reason="client") == 2


async def test_every_resend_is_counted_apart_from_the_first_send(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance(retry_interval_s=0.1, retry_limit=5)
    device = await open_device(http, instance, "alice")
    snapshot = Snapshot()
    await bus.publish(notification("n1"), "alice")
    first = await receive(device)
    for _ in range(2):
        assert (await receive(device)).message_id == first.message_id
    await ack(device, first)
    await eventually(lambda: snapshot.delta("notifier_ws_messages_acked_total") == 1)
    assert snapshot.delta("notifier_ws_messages_sent_total") == 1
    assert snapshot.delta("notifier_ws_messages_resent_total") >= 2
    assert snapshot.delta("notifier_ws_ack_latency_seconds_sum") >= 0.2, "latency runs from the first send"


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", 5672) as running:
        yield running


async def test_broker_gauge_follows_the_connection(
    start_instance: StartInstance, http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    instance = await start_instance(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1")
    device = await open_device(http, instance, "alice")
    assert sample("notifier_ws_broker_connected") == 1
    await proxy.cut()
    error = await receive(device)
    await ack(device, error)
    assert error.network_status == WebSocketMessage.ERROR
    assert sample("notifier_ws_broker_connected") == 0
    proxy.restore()
    ok = await receive(device)
    await ack(device, ok)
    assert ok.network_status == WebSocketMessage.OK
    assert sample("notifier_ws_broker_connected") == 1

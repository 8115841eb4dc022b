"""Acks: confirmations of NEW notifications per recipient, harmless repeats, resends and the unresponsive close."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Bus, StartInstance, ack, notification, open_device, receive
from workers.common.contract.wire import Notification, WebSocketMessage


async def test_acking_a_new_notification_publishes_a_confirmation(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1"), "alice")
    await ack(alice, await receive(alice))
    assert await bus.confirmations(1) == [("alice", "n1")]


async def test_each_recipient_of_a_multicast_confirms_for_itself(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = await start_instance(), await start_instance()
    alice, bob = await open_device(http, first, "alice"), await open_device(http, second, "bob")
    await bus.publish(notification("n1"), "alice", "bob")
    to_alice, to_bob = await receive(alice), await receive(bob)
    await ack(alice, to_alice)
    assert await bus.confirmations(1) == [("alice", "n1")]
    await ack(bob, to_bob)
    assert await bus.confirmations(1) == [("bob", "n1")]


async def test_repeated_acks_and_acks_of_updates_publish_nothing_more(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1"), "alice")
    message = await receive(alice)
    await ack(alice, message)
    await ack(alice, message)
    await ack(alice, WebSocketMessage(message_id="never-sent"))
    await bus.publish(notification("n1", status=Notification.UPDATED), "alice")
    await ack(alice, await receive(alice))
    await bus.publish(notification("n2"), "alice")
    await ack(alice, await receive(alice))
    assert await bus.confirmations(2) == [("alice", "n1"), ("alice", "n2")]
    assert alice.state.name == "OPEN", "a repeated or unknown ack is harmless"


async def test_unacked_message_is_sent_six_times_then_the_connection_closes_as_unresponsive(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    instance = await start_instance(retry_interval_s=0.05, retry_limit=5)
    device = await open_device(http, instance, "alice")
    await bus.publish(notification("n1"), "alice")
    ids = []
    try:
        while True:
            ids.append((await receive(device)).message_id)
    except ConnectionClosed:
        pass
    assert len(ids) == 6
    assert len(set(ids)) == 1, "a resend carries the same message id"
    assert device.close_code == 4000
    assert device.close_reason


async def test_an_ack_stops_the_resends(start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus) -> None:
    instance = await start_instance(retry_interval_s=0.3, retry_limit=5)
    device = await open_device(http, instance, "alice")
    await bus.publish(notification("n1"), "alice")
    first = await receive(device)
    resent = await receive(device)
    assert resent.message_id == first.message_id
    await ack(device, resent)
    (server_side,) = instance.room.hub.connections("alice")
    await eventually(lambda: server_side.unacknowledged == 0)
    await bus.publish(notification("n2"), "alice")
    following = await receive(device)
    await ack(device, following)
    assert following.notification.id == "n2"
    assert instance.room.hub.devices("alice") == 1, "acknowledged in time, the device stays connected"

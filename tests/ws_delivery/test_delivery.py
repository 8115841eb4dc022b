"""Fan-out of notification events to every device of the addressed users, across instances, deduplicated."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import ClientConnection

from tests.conftest import BOTH_REDIS
from tests.ws_delivery.conftest import Bus, StartInstance, ack, notification, open_device, receive
from workers.common.contract.keys import StoreKeys
from workers.common.contract.wire import BrokerNotification, Notification, WebSocketMessage

pytestmark = BOTH_REDIS


async def test_event_reaches_every_device_of_the_user_on_every_instance(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = await start_instance(), await start_instance()
    alice = [
        await open_device(http, first, "alice"),
        await open_device(http, first, "alice"),
        await open_device(http, second, "alice"),
    ]
    bob = await open_device(http, second, "bob")
    await bus.publish(notification("n1"), "alice")
    await bus.publish(notification("n2"), "bob")
    for device in alice:
        message = await receive(device)
        assert message.notification.id == "n1"
        assert message.notification.content == b"hello"
    assert (await receive(bob)).notification.id == "n2", "bob gets only what is addressed to him"


async def test_broadcast_reaches_every_connected_device(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = await start_instance(), await start_instance()
    devices = [await open_device(http, first, "alice"), await open_device(http, second, "bob")]
    await bus.publish(notification("everyone"))
    for device in devices:
        assert (await receive(device)).notification.id == "everyone"


async def test_a_broadcast_of_one_store_shard_reaches_the_devices_of_that_shards_users_only(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    """Core publishes a broadcast once per store shard (each with its shard's feed position): a device takes the
    one of its user's shard, once, whatever the other shards' events say."""
    keys = StoreKeys("any")
    alice = "alice"
    bob = next(u for u in (f"bob-{n}" for n in range(1000)) if keys.shard_of(u) != keys.shard_of(alice))
    instance = await start_instance()
    devices = {user: await open_device(http, instance, user) for user in (alice, bob)}
    for shard in keys.shards:
        n = notification("everyone")
        n.position = f"{shard}"
        event = BrokerNotification(notification=n, audience_shard=shard, audience_shards=keys.shard_count)
        await bus.publish_raw(event.SerializeToString())
    await bus.publish(notification("after"), alice, bob)
    for user, device in devices.items():
        first = await receive(device)
        assert (first.notification.id, first.notification.position) == ("everyone", f"{keys.shard_of(user)}")
        await ack(device, first)
        assert (await receive(device)).notification.id == "after", "one broadcast frame per device"


async def test_no_frame_on_connect_while_the_broker_is_up(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1"), "alice")
    first = await receive(alice)
    assert first.HasField("notification")
    assert first.notification.id == "n1"
    assert first.network_status == WebSocketMessage.OK


async def test_message_ids_are_unique_per_connection(alice: ClientConnection, bus: Bus) -> None:
    for nid in ("n1", "n2", "n3"):
        await bus.publish(notification(nid), "alice")
    ids = [(await receive(alice)).message_id for _ in range(3)]
    assert len(set(ids)) == 3


async def test_duplicated_user_ids_in_one_event_deliver_once(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1"), "alice", "alice", "alice")
    await bus.publish(notification("barrier"), "alice")
    assert [(await receive(alice)).notification.id for _ in range(2)] == ["n1", "barrier"]


async def test_redelivered_and_stale_events_are_dropped(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1", at=100.0), "alice")
    await bus.publish(notification("n1", at=100.0), "alice")  # a redelivery
    await bus.publish(notification("n1", status=Notification.UPDATED, at=300.0), "alice")
    await bus.publish(notification("n1", status=Notification.UPDATED, at=200.0), "alice")  # stale reordering
    await bus.publish(notification("n1", status=Notification.UPDATED, at=400.0), "alice")
    await bus.publish(notification("barrier"), "alice")
    received = []
    for _ in range(4):
        message = await receive(alice)
        await ack(alice, message)
        received.append((message.notification.id, message.notification.status, message.notification.timestamp.seconds))
    assert received == [
        ("n1", Notification.NEW, 100),
        ("n1", Notification.UPDATED, 300),
        ("n1", Notification.UPDATED, 400),
        ("barrier", Notification.NEW, 1_700_000_000),
    ]


async def test_updated_and_deleted_of_one_notification_both_go_out(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish(notification("n1", status=Notification.UPDATED, at=500.0), "alice")
    await bus.publish(notification("n1", status=Notification.DELETED, at=500.0), "alice")
    statuses = [(await receive(alice)).notification.status for _ in range(2)]
    assert statuses == [Notification.UPDATED, Notification.DELETED]


async def test_undecodable_event_is_dead_lettered_and_delivery_goes_on(alice: ClientConnection, bus: Bus) -> None:
    await bus.publish_raw(b"\xff\xff not protobuf")
    await bus.publish(notification("n1"), "alice")
    assert (await receive(alice)).notification.id == "n1"
    assert await bus.dead_letters(1) == [b"\xff\xff not protobuf"]


async def test_events_are_settled_in_order_past_a_small_prefetch_window(
    start_instance: StartInstance, http: httpx.AsyncClient, bus: Bus
) -> None:
    """Handled events are acked in batches and bad ones rejected between them: with a prefetch of 4, 40
    events only all arrive if every one was settled, and a wrong tag would close the channel."""
    instance = await start_instance(amqp_prefetch=4)
    device = await open_device(http, instance, "alice")
    for i in range(40):
        if i % 7 == 3:
            await bus.publish_raw(f"bad {i}".encode())
        await bus.publish(notification(f"n{i}"), "alice")
    ids = []
    for _ in range(40):
        message = await receive(device)
        ids.append(message.notification.id)
        await ack(device, message)
    assert ids == [f"n{i}" for i in range(40)]
    assert sorted(await bus.dead_letters(6)) == sorted(f"bad {i}".encode() for i in range(40) if i % 7 == 3)

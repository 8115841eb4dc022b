"""Garbage on `notifier.notifications` reaches no device: each body is dead-lettered with its reason."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection
from websockets.asyncio.client import ClientConnection

from tests.conftest import take_messages
from tests.ws_delivery.conftest import Bus, notification, receive
from workers.common.contract.names import DEAD_LETTER_BODY_BYTES, REASON_HEADER, Topology
from workers.common.contract.wire import BrokerNotification, Notification

LIMIT = 4096  # the content limit of the test instances (the default)


def event(n: Notification, *users: str) -> bytes:
    return BrokerNotification(user_ids=list(users), notification=n).SerializeToString()


def new(nid: str, *, content: bytes = b"hello", created_by: str = "producer") -> Notification:
    n = notification(nid)
    n.content = content
    n.created_by = created_by
    return n


GARBAGE: dict[str, tuple[bytes, str]] = {
    "empty body": (b"", "no notification"),
    "not protobuf": (b"\xff\xff not protobuf", "undecodable BrokerNotification"),
    "empty id": (event(new(""), "alice"), "notification id does not match the id pattern"),
    "100 KB id": (event(new("x" * 100_000), "alice"), "notification id does not match the id pattern"),
    "id with spaces": (event(new("a b"), "alice"), "notification id does not match the id pattern"),
    "bad user id": (event(new("n-1"), "alice", "bad user!"), "a user id does not match the id pattern"),
    "empty user id": (event(new("n-2"), ""), "a user id does not match the id pattern"),
    "content over the limit": (event(new("n-3", content=b"x" * (LIMIT + 1))), f"content over {LIMIT} bytes"),
    "4 MB broadcast": (event(new("n-4", content=b"x" * 4_000_000)), "larger than any core makes"),
    "bad created_by": (event(new("n-5", created_by="no way!"), "alice"), "created_by does not match"),
    "deleted for everybody": (event(notification("n-6", status=Notification.DELETED)), "without user ids"),
    "audience out of range": (
        BrokerNotification(notification=new("n-8"), audience_shard=5, audience_shards=4).SerializeToString(),
        "audience shard 5 of 4 is out of range",
    ),
    "unknown status": (event(Notification(id="n-7", status=7), "alice"), "unknown status 7"),  # type: ignore[arg-type]
}


async def test_each_garbage_event_is_dead_lettered_with_its_reason_and_reaches_no_device(
    alice: ClientConnection, bus: Bus, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    for body, _ in GARBAGE.values():
        await bus.publish_raw(body)
    await bus.publish(notification("good"), "alice")
    first = await receive(alice)
    assert first.notification.id == "good", "a garbage event reached the device before the good one"
    dead = await take_messages(amqp, topology.dead_letter_queue, len(GARBAGE))
    reasons = [str((message.headers or {})[REASON_HEADER]) for message in dead]
    for (name, (body, reason)), found, message in zip(GARBAGE.items(), reasons, dead, strict=True):
        assert reason in found, f"{name}: dead-lettered for {found!r}"
        assert message.body == body[:DEAD_LETTER_BODY_BYTES], name
        assert (message.headers or {})["x-notifier-bytes"] == len(body), name
    truncated = [message for message in dead if (message.headers or {}).get("x-notifier-truncated")]
    assert [len(message.body) for message in truncated] == [DEAD_LETTER_BODY_BYTES] * 2  # the 100 KB id, 4 MB

"""AMQP frames queued in one loop turn leave in one write (workers/common/runtime/amqpwrites.py)."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from aiormq.abc import ChannelFrame

from tests.conftest import AMQP_URL
from workers.common.runtime.amqpwrites import CoalescingFrames
from workers.common.runtime.connections import connect_amqp
from workers.common.runtime.publishing import Properties, publish_confirmed


def frame(payload: bytes, *, drain: asyncio.Future[None] | None = None, close: bool = False) -> ChannelFrame:
    return ChannelFrame(payload=payload, should_close=close, drain_future=drain)


async def queued(*frames: ChannelFrame) -> asyncio.Queue[ChannelFrame]:
    queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()
    for f in frames:
        queue.put_nowait(f)
    return queue


async def test_frames_already_queued_leave_as_one_payload_in_order() -> None:
    queue = await queued(frame(b"a"), frame(b"bb"), frame(b"ccc"))
    merged = await CoalescingFrames(queue).__anext__()
    assert merged.payload == b"abbccc"
    assert not merged.should_close
    assert not merged.should_drain
    async with asyncio.timeout(1):
        await queue.join()  # every frame taken is marked done


async def test_a_frame_waiting_for_its_drain_ends_the_payload() -> None:
    drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    queue = await queued(frame(b"a"), frame(b"b", drain=drained), frame(b"c"))
    frames = CoalescingFrames(queue)
    first = await frames.__anext__()
    assert first.payload == b"ab"
    assert first.should_drain
    first.drain()  # what the writer does once the bytes left
    assert drained.done()
    assert (await frames.__anext__()).payload == b"c"


async def test_a_closing_frame_ends_the_payload() -> None:
    queue = await queued(frame(b"a"), frame(b"close", close=True), frame(b"late"))
    first = await CoalescingFrames(queue).__anext__()
    assert (first.payload, first.should_close) == (b"aclose", True)
    assert queue.qsize() == 1


async def test_a_lone_frame_passes_unchanged() -> None:
    lone = frame(b"only")
    assert await CoalescingFrames(await queued(lone)).__anext__() is lone


async def test_a_connection_writes_a_published_batch_in_few_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    payloads: list[int] = []
    original = CoalescingFrames.__anext__

    async def counted(self: CoalescingFrames) -> ChannelFrame:
        merged = await original(self)
        payloads.append(len(merged.payload))
        return merged

    monkeypatch.setattr(CoalescingFrames, "__anext__", counted)
    connection = await connect_amqp(AMQP_URL, timeout_s=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"amqpwrites-{uuid.uuid4().hex[:8]}", exclusive=True)
        bodies = [f"message {i}".encode() for i in range(200)]
        payloads.clear()
        failures = await publish_confirmed(
            channel, "", [(body, queue.name, Properties()) for body in bodies], timeout_s=10
        )
        assert failures == [None] * len(bodies)
        assert 0 < len(payloads) <= len(bodies) // 4, payloads  # aiormq queues up to 10 frames: ~10 per write
        received = []
        async with asyncio.timeout(10), queue.iterator(no_ack=True) as messages:
            async for message in messages:
                received.append(message.body)
                if len(received) == len(bodies):
                    break
        assert received == bodies
    finally:
        await connection.close()


async def test_connections_of_the_plain_client_keep_working_beside_coalescing_ones() -> None:
    """aio-pika connections opened directly (tests, tools) share the module: they coalesce too, and work."""
    await (await connect_amqp(AMQP_URL, timeout_s=10)).close()  # installs
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"plain"), routing_key=queue.name)
        async with asyncio.timeout(10):
            message = None
            while message is None:
                message = await queue.get(no_ack=True, fail=False)
                await asyncio.sleep(0.01)
        assert message.body == b"plain"
    finally:
        await connection.close()

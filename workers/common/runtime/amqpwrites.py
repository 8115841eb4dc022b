"""One socket write for the AMQP frames queued in one event-loop turn, instead of one write each.

aiormq's connection writer takes its write queue one `ChannelFrame` at a time and writes each to the
socket on its own: a publish with confirms, an ack, a heartbeat. core's relay and ws_delivery's
confirmations publish in batches (`publish_confirmed` queues a batch's publishes in one turn), yet at a
thousand messages a second that was a thousand system calls, each waking the broker for one small read. Here the writer
takes every frame already queued when it wakes and writes them as one payload: the same bytes in the
same order, one system call and one broker read for the batch.

aiormq bounds the write queue at 10 frames, and a publisher that finds it full holds its channel's
lock until a slot frees: past the tenth, a batch's publishes then reach the writer one per turn, and
each would leave alone. The queue is a hand-over to the writer task, not the socket's flow control
(the transport buffers what the writer writes), so `install()` also makes it hold `FRAME_BUFFER`.

A frame that asks for a drain (`should_drain`: its publisher waits until the bytes left) or closes the
connection ends a payload, so the writer drains or stops right after it, as it would have.

aiormq's writer looks `FrameGenerator` up in its module each time a connection starts its writer;
`install()` puts the coalescing one there, and the check in tests/common/test_amqpwrites.py fails if an
aiormq upgrade stops reading it from there.
"""

from __future__ import annotations

import aiormq.connection
from aiormq.abc import ChannelFrame

FRAME_BUFFER = 1024
"""Frames aiormq's write queue holds: a batch of publishes is queued in one turn and leaves in one write."""


class CoalescingFrames(aiormq.connection.FrameGenerator):
    async def __anext__(self) -> ChannelFrame:
        frame: ChannelFrame = await super().__anext__()
        if frame.should_close or frame.should_drain or self.queue.empty():
            return frame
        payloads = [frame.payload]
        while not self.queue.empty():
            frame = self.queue.get_nowait()
            self.queue.task_done()
            payloads.append(frame.payload)
            if frame.should_close or frame.should_drain:
                break
        last = frame
        return ChannelFrame(payload=b"".join(payloads), should_close=last.should_close, drain_future=last.drain_future)


def install() -> None:
    """Make every aiormq connection started from now on write coalesced frames (idempotent)."""
    aiormq.connection.FrameGenerator = CoalescingFrames  # type: ignore[misc]
    aiormq.connection.Connection.FRAME_BUFFER_SIZE = FRAME_BUFFER

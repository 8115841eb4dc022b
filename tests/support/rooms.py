"""Running a room inside the test's event loop, the way the lifecycle runs it, minus the signals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TypeVar

from workers.common.runtime.lifecycle import Room

R = TypeVar("R", bound=Room)


@contextlib.asynccontextmanager
async def running_room(room: R, *, drain_timeout_s: float = 30.0) -> AsyncIterator[R]:
    """Start `room`, yield it ready, then stop intake and drain as SIGTERM would; fails if a task died."""
    async with AsyncExitStack() as stack:
        await room.start(stack)
        room.is_ready = True
        try:
            yield room
        finally:
            await room.stop_intake()
            await asyncio.wait_for(room.drain(), drain_timeout_s)
    assert not room.crashed.is_set(), f"a {room.name} task died"

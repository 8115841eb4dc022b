"""The async idioms every room and the client share, with no client library underneath.

`Backoff` is the one backoff (jittered, capped exponential), `pause` the one stop-aware sleep and
`first_of` the one "whichever comes first" wait. `workers.common.runtime.retry` builds the retry of dependencies
on them; the reference client uses them without loading Redis or RabbitMQ clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable

FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0
"""Caps every room's backoff: short enough that a recovered Redis or broker is used again within ~2 s."""


class Backoff:
    """Exponential delays from `first_s` up to `max_s`, each jittered by ±20% so replicas do not retry in step."""

    def __init__(self, *, first_s: float = FIRST_DELAY_S, max_s: float = MAX_DELAY_S) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = self.first_s


async def pause(stopping: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds`, ending early when `stopping` is set; True when stopping."""
    if stopping is None:
        await asyncio.sleep(seconds)
        return False
    if seconds > 0 and not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
    raise_if_cancelled()
    return stopping.is_set()


def raise_if_cancelled() -> None:
    """Raise CancelledError when the running task was asked to stop but the cancellation got lost on its way
    (Python 3.11's `wait_for` can swallow one that meets a completing wait, and a client library may turn
    one into its own connection error): a loop that goes on after its task was cancelled never ends."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def first_of(*waits: Awaitable[object], timeout_s: float | None = None) -> None:
    """Wait until any of `waits` completes (or `timeout_s` passed); the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

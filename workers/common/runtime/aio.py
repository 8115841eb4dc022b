"""The async idioms every room and the client share, with no client library underneath.

`Backoff` is the one backoff (jittered, capped exponential), `pause` the one stop-aware sleep,
`first_of` the one "whichever comes first" wait and `LingerInbox` the one batch collector.
`workers.common.runtime.retry` builds the retry of dependencies on them; the reference client uses them
without loading Redis or RabbitMQ clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable
from typing import Generic, TypeVar

T = TypeVar("T")

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


class LingerInbox(Generic[T]):
    """Items put one by one, taken as batches: a batch's first item waits up to `linger_s` for more to
    arrive, and a batch is taken at once when it holds `max_batch`. Batching pays where the cost is mostly
    per batch (one pipeline, one ack), and the linger trades that much latency for fewer batches."""

    def __init__(self, *, max_batch: int, linger_s: float) -> None:
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._items: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._arrived.set()
        if len(self._items) >= self.max_batch:
            self._full.set()

    def __len__(self) -> int:
        return len(self._items)

    async def next_batch(self, stopping: asyncio.Event) -> list[T]:
        """The next batch, oldest first; empty only once `stopping` is set and nothing is left. Stopping
        ends a linger early: what is there is taken."""
        while not self._items:
            if stopping.is_set():
                return []
            self._arrived.clear()
            await first_of(self._arrived.wait(), stopping.wait())
        if len(self._items) < self.max_batch and self.linger_s > 0 and not stopping.is_set():
            self._full.clear()
            await first_of(self._full.wait(), stopping.wait(), timeout_s=self.linger_s)
        batch = [self._items.popleft() for _ in range(min(self.max_batch, len(self._items)))]
        if len(self._items) < self.max_batch:
            self._full.clear()
        return batch

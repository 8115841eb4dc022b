"""Long polling core while the WebSocket cannot be relied on, and one catch-up poll after it can again.

`want(polling=True)` keeps long polls going (ws_delivery reported ERROR, or the WebSocket is gone);
`want(polling=False)` makes sure one more poll starts after this moment and then stops. A poll in flight
is never cancelled: core marks what it answers as delivered, so an answer must not be dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import httpx

from workers.common.runtime.aio import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


class Poller(Generic[T]):
    """Runs `fetch(wait_s)` (a long poll while `polling`, else one quick read) and hands each item to `emit`."""

    def __init__(
        self, *, fetch: Callable[[float], Awaitable[list[T]]], emit: Callable[[T], None], wait_s: float
    ) -> None:
        self._fetch = fetch
        self._emit = emit
        self._wait_s = wait_s
        self._polling = False
        self._task: asyncio.Task[None] | None = None

    @property
    def polling(self) -> bool:
        return self._polling

    @property
    def idle(self) -> bool:
        """No poll is running or due."""
        return self._task is None or self._task.done()

    def want(self, *, polling: bool) -> None:
        self._polling = polling
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="long-poll")

    async def _run(self) -> None:
        backoff = Backoff(first_s=0.2, max_s=5.0)
        while True:
            polling = self._polling
            try:
                items = await self._fetch(self._wait_s if polling else 0.0)
            except httpx.HTTPError as exc:
                delay = backoff.next()
                log.warning("polling core failed (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for item in items:
                self._emit(item)
            if not polling and not self._polling:
                return

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

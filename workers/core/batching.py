"""Script calls made in the same event-loop turn go to Redis as one pipeline: one write and one read for
all of them, instead of a round trip (and its client-side bookkeeping) each. Under concurrent requests
this halves the client's CPU per call; a lone call waits at most one loop turn: the turn in which the
sending task, created with the first call, takes what was queued meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from workers.common.contract.errors import ServiceUnavailable
from workers.common.runtime.scripts import run_scripts

Call = tuple[Any, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._queued: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, script: Any, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a registered script (from `register_script`) with the other calls of this loop turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((script, keys, args, future))
        if len(self._queued) == 1:
            task = asyncio.ensure_future(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return await future

    async def _send(self) -> None:
        batch, self._queued = self._queued, []
        try:
            results = await run_scripts(self.redis, [(script, keys, args) for script, keys, args, _ in batch])
            for (*_, future), result in zip(batch, results, strict=True):
                _settle(future, result)
        except (RedisError, ServiceUnavailable) as exc:  # Redis away, or replicas did not confirm: every caller
            for *_, future in batch:
                _settle(future, exc)
        finally:
            for *_, future in batch:
                _settle(future, RuntimeError("script call abandoned"))


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)

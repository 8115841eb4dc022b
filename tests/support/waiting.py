"""Waiting for what offers no event to await: another process, a broker, an external API.

    await eventually(lambda: sink.digests)                       # a plain function ...
    found = await eventually(lambda: api.read(name), what="the stream")   # ... or one returning an awaitable
    await wait_ready(room.ops_url, exit_code=room.process.poll)   # GET /readyz answers 200

Both poll: each asks again every `interval_s` until the answer is truthy, and fail the test with an
AssertionError after `timeout_s`. A probe that meets a dependency going away (a Redis node a test just
killed: the client sends nothing twice on its own, workers/common/runtime/redis_once.py) is asked again too.
Where the system offers an event (a Condition, a queue, a future), await that instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

import httpx

from workers.common.runtime.faults import temporary

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = ..., what: str = ..., interval_s: float = ...
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T | None], *, timeout_s: float = ..., what: str = ..., interval_s: float = ...
) -> T: ...


async def eventually(
    probe: Callable[[], object], *, timeout_s: float = 20.0, what: str = "", interval_s: float = 0.05
) -> object:
    """Call `probe` until it returns something truthy and return that; `probe` may be sync or async."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = probe()
            last = await answer if inspect.isawaitable(answer) else answer
        except Exception as exc:
            if temporary(exc) is None or time.monotonic() >= deadline:
                raise
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or probe!r} did not hold within {timeout_s}s; last seen: {last!r}")
        await asyncio.sleep(interval_s)


async def wait_ready(
    ops_url: str,
    *,
    exit_code: Callable[[], int | None],
    output: Callable[[], str] = str,
    what: str = "",
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
) -> None:
    """Wait until `ops_url`/readyz answers 200; fail at once when `exit_code()` says the process ended.

    `output()` is the process's output so far, shown when it fails; `what` names the process.
    """
    what = what or ops_url
    async with httpx.AsyncClient(timeout=1.0) as client:

        async def ready_or_exited() -> str:
            code = exit_code()
            if code is not None:
                return f"exited with {code}"
            try:
                return "ready" if (await client.get(f"{ops_url}/readyz")).status_code == 200 else ""
            except httpx.TransportError:
                return ""

        try:
            state = await eventually(ready_or_exited, timeout_s=timeout_s, interval_s=interval_s)
        except AssertionError:
            raise AssertionError(f"{what} not ready within {timeout_s}s:\n{output()}") from None
    if state != "ready":
        raise AssertionError(f"{what} {state}:\n{output()}")

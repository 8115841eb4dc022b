"""Retrying, written once: every loop of every room waits out a dependency through these.

    value = await retrying(lambda: redis.get(key), what="read the mapping", stopping=room.stopping)
    await repeat(monitor.cycle, what="monitor cycle", stopping=room.stopping)   # cycle returns its next pause

`retrying` runs one step until it succeeds. A temporary error (`faults.temporary`: Redis, RabbitMQ or core
away) is recorded in `faults.HEALTH` and waited out with the kernel's `aio.Backoff`; anything
else propagates at once. It gives up only when the room is stopping (or at an optional deadline, for
commands that must answer), raising the last temporary error, so a step's work in hand stays where it
was (unacked, in flight, pending) for whoever runs it next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from workers.common.contract.errors import InvalidSettings, ServiceUnavailable
from workers.common.runtime.aio import Backoff, pause, raise_if_cancelled
from workers.common.runtime.faults import HEALTH, classify, temporary

T = TypeVar("T")


async def retrying(
    step: Callable[[], Awaitable[T]],
    *,
    what: str,
    stopping: asyncio.Event | None = None,
    dependency: str = "",
    backoff: Backoff | None = None,
    deadline_s: float | None = None,
) -> T:
    """Run `step` until it returns, waiting out temporary errors; see the module docstring.

    `dependency` names the service for exceptions that do not tell, and is marked up when the step
    succeeds. Raises the last ServiceUnavailable when `stopping` is set or `deadline_s` passed."""
    backoff = backoff or Backoff()
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    failed: set[str] = set()
    while True:
        try:
            result = await step()
        except Exception as exc:
            raise_if_cancelled()
            error = temporary(exc, dependency=dependency)
            if error is None:
                raise _permanent(exc, dependency=dependency) from exc
            _give_up_or_record(error, failed=failed, what=what, stopping=stopping, deadline=deadline, cause=exc)
            delay = backoff.next()
            if deadline is not None:
                delay = min(delay, max(deadline - time.monotonic(), 0.0))
            await pause(stopping, delay)
            continue
        for name in failed | {dependency} - {""}:
            HEALTH.ok(name)
        return result


def _permanent(exc: Exception, *, dependency: str) -> Exception:
    """What to raise for an error that is not temporary: the kernel's name for it when it has one (an
    unknown host is InvalidSettings), else the exception itself."""
    error = classify(exc, dependency=dependency)
    return error if isinstance(error, InvalidSettings) else exc


def _give_up_or_record(
    error: ServiceUnavailable,
    *,
    failed: set[str],
    what: str,
    stopping: asyncio.Event | None,
    deadline: float | None,
    cause: BaseException,
) -> None:
    HEALTH.failed(error, what=what)
    failed.add(error.dependency)
    if (stopping is not None and stopping.is_set()) or (deadline is not None and time.monotonic() >= deadline):
        raise error from cause


async def repeat(
    step: Callable[[], Awaitable[float]],
    *,
    what: str,
    stopping: asyncio.Event,
    dependency: str = "",
) -> None:
    """Run `step` again and again until `stopping`; it returns the seconds to pause before its next run (0:
    at once). Temporary errors are waited out as in `retrying`; at shutdown an unfinished step is left."""
    while not stopping.is_set():
        try:
            delay = await retrying(step, what=what, stopping=stopping, dependency=dependency)
        except ServiceUnavailable:
            if stopping.is_set():
                return
            raise
        await pause(stopping, delay)

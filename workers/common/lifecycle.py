"""How every room runs: start, serve until SIGTERM, stop intake, drain, close, one summary line.

    room = MyRoom(settings)
    raise SystemExit(run_room(room, settings=settings))

`Room.start` connects and spawns the room's tasks, registering every connection's close on the exit
stack, so connections close in reverse order of opening. On SIGTERM or SIGINT the room stops taking new
work (`stop_intake`), finishes what it holds (`drain`) up to `NOTIFIER_SHUTDOWN_TIMEOUT_S`, the rest is
cancelled, the stack unwinds, and one summary line is logged. A task that dies of an unexpected error
stops the room the same way with exit code 1, so the orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from workers.common.asgi import start_server, stop_server
from workers.common.errors import NotifierError
from workers.common.gcpauses import observe_gc_pauses
from workers.common.logs import configure_logging
from workers.common.ops import ops_app
from workers.common.settings import CommonSettings

log = logging.getLogger(__name__)


class Room:
    """Base of every long-running room. Subclasses implement `start` and usually `summary`."""

    name = "room"

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.crashed = asyncio.Event()
        self.is_ready = False
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, stack: AsyncExitStack) -> None:
        raise NotImplementedError

    async def stop_intake(self) -> None:
        """Stop taking new work. The default tells every task through `self.stopping`."""
        self.stopping.set()

    async def drain(self) -> None:
        """Finish the work in hand. The default waits for every spawned task to return."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def summary(self) -> str:
        return ""

    def ready(self) -> bool:
        return self.is_ready and not self.stopping.is_set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s task %s died: %r", self.name, task.get_name(), exc, exc_info=exc)
            self.crashed.set()

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def serve_room(room: Room, *, settings: CommonSettings, with_ops: bool = True) -> int:
    """Run `room` until a signal or a crash; returns the process exit code."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    started_at = time.monotonic()
    exit_code = 0
    async with AsyncExitStack() as stack:
        if with_ops:
            server, task = await start_server(
                ops_app(ready=room.ready), host=settings.ops_host, port=settings.ops_port, name=f"{room.name} ops"
            )
            stack.push_async_callback(stop_server, server, task)
        try:
            await room.start(stack)
        except NotifierError as exc:
            log.error("%s could not start: %s", room.name, exc)
            return 1
        room.is_ready = True
        log.info("%s started", room.name)
        waiters = [asyncio.ensure_future(signalled.wait()), asyncio.ensure_future(room.crashed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if room.crashed.is_set():
            exit_code = 1
        room.is_ready = False
        log.info("%s stopping", room.name)
        await room.stop_intake()
        try:
            await asyncio.wait_for(room.drain(), settings.shutdown_timeout_s)
        except TimeoutError:
            log.warning("%s did not drain within %.1fs, cancelling the rest", room.name, settings.shutdown_timeout_s)
            room.cancel_tasks()
            with contextlib.suppress(asyncio.CancelledError):
                await room.drain()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    detail = room.summary()
    log.info(
        "%s stopped after %.1fs%s%s",
        room.name,
        time.monotonic() - started_at,
        ": " if detail else "",
        detail,
    )
    return exit_code


def run_room(room_factory: Callable[[Any], Room], *, settings: CommonSettings) -> int:
    """Configure logging, build the room inside the loop, serve it; returns the exit code."""
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    observe_gc_pauses()

    async def main() -> int:
        return await serve_room(room_factory(settings), settings=settings)

    return asyncio.run(main())

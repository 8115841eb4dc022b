"""How every room runs: start, serve until SIGTERM, stop intake, drain, close, one summary line.

    raise SystemExit(run_room(MyRoom, settings=MySettings))

`run_room` reads the settings (exit 2 and one line naming the setting when they do not validate).
`Room.start` connects and spawns the room's tasks, registering every connection's close on the exit
stack, so connections close in reverse order of opening. A start-up that meets a dependency away (Redis,
RabbitMQ) is undone and tried again with the kernel's backoff until it succeeds; SIGTERM or SIGINT end
the process at any moment, start-up included. A room that cannot run as configured (`InvalidSettings`: a
port in use, an unknown host, refused credentials) exits 2 with one line.

On SIGTERM or SIGINT the room stops taking new work (`stop_intake`), finishes what it holds (`drain`) up to
`NOTIFIER_SHUTDOWN_TIMEOUT_S`, the rest is cancelled, the stack unwinds, and one summary line is logged.
Temporary errors never reach here: every loop waits them out (`workers.common.runtime.retry`). A task that dies
of anything else stops the room the same way with exit code 1, so the orchestrator restarts it.

Every room runs on uvloop (it comes with uvicorn[standard]): the rooms spend most of their CPU in the event
loop and its socket calls, which uvloop does in C.

`/readyz` answers 503 until the room started and while a dependency it `needs` is away
(`workers.common.runtime.faults.HEALTH`); `/healthz` answers 200 as long as the process serves.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import uvloop
from pydantic import ValidationError

from workers.common.contract.errors import InvalidSettings, TemporaryError
from workers.common.runtime.aio import Backoff, first_of, pause
from workers.common.runtime.asgi import start_server, stop_server
from workers.common.runtime.faults import HEALTH, classify, temporary
from workers.common.runtime.gcpauses import observe_gc_pauses
from workers.common.runtime.logs import configure_logging
from workers.common.runtime.ops import ops_app
from workers.common.runtime.settings import CommonSettings

log = logging.getLogger(__name__)

ABANDON_TIMEOUT_S = 5.0


class Room:
    """Base of every long-running room. Subclasses implement `start` and usually `summary`."""

    name = "room"
    needs: frozenset[str] | None = None
    """Dependencies whose outage makes the room unready; None: every dependency it uses."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.crashed = asyncio.Event()
        self.is_ready = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signalled: asyncio.Event | None = None

    def take_signals(self) -> None:
        """Point SIGTERM and SIGINT at this room's shutdown again: for a room that embeds a library which
        installs handlers of its own (kopf). Does nothing outside `serve_room`."""
        if self._signalled is not None:
            _handle_signals(self._signalled)

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
        if isinstance(exc, TemporaryError) and self.stopping.is_set():
            log.warning("%s task %s left unfinished at shutdown: %s", self.name, task.get_name(), exc)
        elif exc is not None:
            log.error("%s task %s died: %r", self.name, task.get_name(), exc, exc_info=exc)
            self.crashed.set()

    async def abandon(self, *, timeout_s: float = ABANDON_TIMEOUT_S) -> None:
        """Cancel every spawned task and wait until they ended, cancelling again those that go on: a client
        library can lose a cancellation that meets its own timeout (seen with a blocking XREADGROUP), and one
        lost cancellation must not hold the process. What still runs after `timeout_s` is left behind."""
        pending = {task for task in self._tasks if not task.done()}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
        if pending:
            log.warning("%s: tasks %s did not end when cancelled", self.name, ", ".join(t.get_name() for t in pending))


async def serve_room(room: Room, *, settings: CommonSettings, with_ops: bool = True) -> int:
    """Run `room` until a signal or a crash; returns the process exit code (0, 1 crash, 2 cannot run)."""
    HEALTH.room = room.name
    loop = asyncio.get_running_loop()
    signalled = room._signalled = asyncio.Event()
    _handle_signals(signalled)
    started_at = time.monotonic()
    stack = AsyncExitStack()
    try:
        if with_ops:
            server, task = await start_server(
                ops_app(ready=lambda: room.ready() and HEALTH.all_up(room.needs)),
                host=settings.ops_host,
                port=settings.ops_port,
                name=f"{room.name} ops",
                setting="NOTIFIER_OPS_PORT",
            )
            stack.push_async_callback(stop_server, server, task)
        exit_code = await _serve(room, stack=stack, signalled=signalled, settings=settings)
    except InvalidSettings as exc:
        log.error("%s cannot run: %s", room.name, exc)
        exit_code = 2
    finally:
        await _unwind(room, stack, timeout_s=settings.shutdown_timeout_s)
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


async def _serve(room: Room, *, stack: AsyncExitStack, signalled: asyncio.Event, settings: CommonSettings) -> int:
    if not await _start(room, stack=stack, signalled=signalled):
        log.info("%s stopped while starting", room.name)
        return 0
    room.is_ready = True
    gc.freeze()  # what start-up allocated lives as long as the process: keep it out of every later collection
    log.info("%s started", room.name)
    await first_of(signalled.wait(), room.crashed.wait())
    room.is_ready = False
    log.info("%s stopping", room.name)
    await room.stop_intake()
    try:
        await asyncio.wait_for(room.drain(), settings.shutdown_timeout_s)
    except TimeoutError:
        log.warning("%s did not drain within %.1fs, cancelling the rest", room.name, settings.shutdown_timeout_s)
        await room.abandon()
    return 1 if room.crashed.is_set() else 0


async def _start(room: Room, *, stack: AsyncExitStack, signalled: asyncio.Event) -> bool:
    """`room.start` until it succeeds (True) or a signal comes (False). A temporary error during start-up
    (Redis or the broker away, a topology declare cut short) undoes the attempt and tries again."""
    backoff = Backoff()
    while True:
        attempt = AsyncExitStack()
        starting = asyncio.ensure_future(room.start(attempt))
        await first_of(asyncio.shield(starting), signalled.wait())
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        if starting.cancelled() or starting.exception() is not None:
            await room.abandon()
            await _close(attempt, what=f"{room.name} start-up")
        if starting.cancelled():
            return False
        exc = starting.exception()
        if exc is None:
            await stack.enter_async_context(attempt)
            return True
        error = temporary(exc)
        if error is None:
            known = classify(exc)
            if known is None:
                raise exc
            raise known if isinstance(known, InvalidSettings) else InvalidSettings(str(known)) from exc
        HEALTH.failed(error, what=f"start {room.name}")
        room.crashed.clear()
        if await pause(signalled, backoff.next()):
            return False


async def _close(stack: AsyncExitStack, *, what: str) -> None:
    """Close what `stack` holds; a dependency that went away meanwhile cannot stop the closing."""
    try:
        await stack.aclose()
    except Exception as exc:  # closing a connection to a service that is gone
        if classify(exc) is None:
            raise
        log.info("%s: closing while a dependency is away: %s", what, exc)


async def _unwind(room: Room, stack: AsyncExitStack, *, timeout_s: float) -> None:
    """Close connections in reverse order within the shutdown timeout; what hangs longer is left behind."""
    try:
        await asyncio.wait_for(_close(stack, what=room.name), max(timeout_s, 1.0))
    except TimeoutError:
        log.warning("%s: closing connections took over %.1fs, leaving the rest", room.name, timeout_s)


def run_room(room_factory: Callable[[Any], Room], *, settings: Callable[[], CommonSettings]) -> int:
    """Read the settings, configure logging, build the room inside the loop, serve it; returns the exit
    code. Settings that do not validate end the process here with exit 2 and one line naming them."""
    try:
        values = settings()
    except ValidationError as exc:
        print(f"error: {describe_settings_error(exc, settings)}", file=sys.stderr)
        return 2
    configure_logging(fmt=values.log_format, level=values.log_level)
    observe_gc_pauses()

    async def main() -> int:
        return await serve_room(room_factory(values), settings=values)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def _handle_signals(signalled: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)


def describe_settings_error(exc: ValidationError, settings: Any) -> str:
    """One line naming each setting that failed by its environment variable."""
    fields = getattr(settings, "model_fields", {})
    prefix = str(getattr(settings, "model_config", {}).get("env_prefix", ""))
    problems = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else ""
        field = fields.get(where)
        if field is not None:
            choices = getattr(field.validation_alias, "choices", None)
            where = str(choices[0]) if choices else f"{prefix}{where}".upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "invalid settings: " + "; ".join(problems)

"""Serving an ASGI app (FastAPI, Starlette) with uvicorn inside a room's own event loop.

The room's lifecycle owns the signals, so uvicorn must not install handlers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn

from workers.common.front import DEFAULT_LIMITS, FrontLimits, server_options

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the room."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("server is not listening")


async def start_server(
    app: Any, *, host: str, port: int, name: str, limits: FrontLimits = DEFAULT_LIMITS, **config: Any
) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Start serving `app`; returns once the socket listens (or raises if it cannot bind). Every server has
    the strict front of `workers.common.front` (header limits and timeouts, a connection cap)."""
    settings = {"log_level": "warning", "lifespan": "off", "access_log": False, **server_options(limits), **config}
    server = EmbeddedServer(uvicorn.Config(app, host=host, port=port, **settings))
    task = asyncio.create_task(server.serve(), name=f"{name}-server")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} server stopped before listening on {host}:{port}")
        await asyncio.sleep(0.01)
    log.info("%s listening on %s:%d", name, host, server.port)
    return server, task


async def stop_server(server: EmbeddedServer, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task

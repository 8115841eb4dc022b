"""Serving an ASGI app (FastAPI, Starlette) with uvicorn inside a room's own event loop.

The room's lifecycle owns the signals, so uvicorn must not install handlers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from workers.common.contract.errors import InvalidSettings
from workers.common.runtime.front import DEFAULT_LIMITS, FrontLimits, server_options

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
    app: Any,
    *,
    host: str,
    port: int,
    name: str,
    setting: str = "",
    limits: FrontLimits = DEFAULT_LIMITS,
    **config: Any,
) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Start serving `app`; returns once the socket listens. A port that cannot be bound is InvalidSettings
    naming `setting` (uvicorn would exit the process from inside its task instead). Every server has the
    strict front of `workers.common.runtime.front` (header limits and timeouts, a connection cap)."""
    settings = {"log_level": "warning", "lifespan": "off", "access_log": False, **server_options(limits), **config}
    server = EmbeddedServer(uvicorn.Config(app, host=host, port=port, **settings))
    sock = listening_socket(host=host, port=port, setting=setting or name)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{name}-server")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} server stopped before listening on {host}:{port}")
        await asyncio.sleep(0.01)
    log.info("%s listening on %s:%d", name, host, server.port)
    return server, task


def listening_socket(*, host: str, port: int, setting: str) -> socket.socket:
    """A TCP socket bound to `host:port`, or InvalidSettings naming the setting that chose them."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise InvalidSettings(f"{setting}: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


async def stop_server(server: EmbeddedServer, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task

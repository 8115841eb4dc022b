"""A small asyncio TCP proxy that tests control, to cut a service away and bring it back.

    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()            # listens on 127.0.0.1:<proxy.port>
    await proxy.cut()              # drops every open connection and refuses new ones
    proxy.restore()                # accepts connections again
    proxy.hold_replies()           # keeps what the service sends back until `release_replies`
    proxy.release_replies()
    await proxy.stop()             # stops listening: connections are refused; `start` listens again

`port` picks the port to listen on (a free one by default); it stays the same across a stop and a start.
Also an async context manager (`async with TcpProxy(...) as proxy:`).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = port
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._replies = asyncio.Event()
        self._replies.set()

    @property
    def is_cut(self) -> bool:
        return not self._open

    async def start(self) -> TcpProxy:
        self._open = True
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def cut(self) -> None:
        """Close every proxied connection (both sides) and refuse new ones until `restore`."""
        self._open = False
        for writer in list(self._writers):
            writer.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._writers.clear()

    def restore(self) -> None:
        self._open = True

    def hold_replies(self) -> None:
        """Keep the bytes the service sends back (connections stay open) until `release_replies`."""
        self._replies.clear()

    def release_replies(self) -> None:
        self._replies.set()

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self._open:
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.close()
            return
        self.accepted += 1
        self._writers.update((client_writer, upstream_writer))
        pumps = (
            asyncio.ensure_future(self._pump(client_reader, upstream_writer)),
            asyncio.ensure_future(self._pump(upstream_reader, client_writer, gate=self._replies)),
        )
        self._pumps.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
            self._pumps.discard(pump)
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gate: asyncio.Event | None = None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()

"""A minimal keep-alive HTTP/1.1 load client on raw asyncio streams: it costs far less CPU per request than
httpx, so on a two-core machine the generator does not starve the server it measures."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        self.writer.close()


def http_request(method: str, path: str, *, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: core\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def closed_loop(
    port: int, requests: Sequence[bytes], *, connections: int, expect: int = 200
) -> tuple[float, list[float]]:
    """Send every request as fast as `connections` keep-alive connections allow; (rate/s, latencies in s)."""
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    cursor = iter(requests)

    async def worker(conn: Connection) -> None:
        for request in cursor:
            started = time.perf_counter()
            status, _ = await conn.send(request)
            latencies.append(time.perf_counter() - started)
            if status != expect:
                raise RuntimeError(f"core answered {status}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return len(requests) / elapsed, latencies


class _Pipe(asyncio.Protocol):
    """One keep-alive connection of `open_loop`: sends a request when idle, parses its response in
    `data_received` and hands itself back to the pool; no task or future per request."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.buffer = bytearray()
        self.planned = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.fail(f"connection to core lost: {exc!r}")

    def send(self, planned: float, request: bytes) -> None:
        self.planned = planned
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        self.pool.done(self, int(head[9:12]), time.perf_counter() - self.planned)


class _Pool:
    def __init__(self, total: int) -> None:
        self.idle: deque[_Pipe] = deque()
        self.backlog: deque[tuple[float, bytes]] = deque()
        self.latencies: list[float] = []
        self.total = total
        self.finished = asyncio.get_running_loop().create_future()

    def submit(self, planned: float, request: bytes) -> None:
        if self.idle:
            self.idle.popleft().send(planned, request)
        else:
            self.backlog.append((planned, request))

    def done(self, pipe: _Pipe, status: int, latency: float) -> None:
        self.latencies.append(latency)
        if status != 200:
            self.fail(f"core answered {status}")
        elif len(self.latencies) == self.total and not self.finished.done():
            self.finished.set_result(None)
        if self.backlog:
            pipe.send(*self.backlog.popleft())
        else:
            self.idle.append(pipe)

    def fail(self, reason: str) -> None:
        if not self.finished.done():
            self.finished.set_exception(RuntimeError(reason))


async def open_loop(
    port: int, count: int, request: Callable[[int, float], bytes], *, rate: float, connections: int
) -> list[float]:
    """Send `request(i, planned)` at start + i/rate (free connections permitting), `planned` being that moment
    in unix seconds; latency counts from the planned time, so a late send is not hidden."""
    loop = asyncio.get_running_loop()
    pool = _Pool(count)
    pipes = []
    for _ in range(connections):
        _, pipe = await loop.create_connection(lambda: _Pipe(pool), "127.0.0.1", port)
        pipes.append(pipe)
        pool.idle.append(pipe)
    start, wall = time.perf_counter(), time.time()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:  # the loop's timers are coarse: a request may leave a little early, never a turn late
            await asyncio.sleep(delay)
        pool.submit(start + i / rate, request(i, wall + i / rate))
    try:
        await pool.finished
    finally:
        for pipe in pipes:
            if pipe.transport is not None:
                pipe.transport.close()
    return pool.latencies

"""A minimal keep-alive HTTP/1.1 load client on raw asyncio streams: it costs far less CPU per request than
httpx, so on a two-core machine the generator does not starve the server it measures."""

from __future__ import annotations

import asyncio
import time
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


async def open_loop(
    port: int, count: int, request: Callable[[int, float], bytes], *, rate: float, connections: int
) -> list[float]:
    """Send `request(i, planned)` at start + i/rate (free connections permitting), `planned` being that moment
    in unix seconds; latency counts from the planned time, so a late send is not hidden."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []

    async def one(planned: float, request: bytes) -> None:
        conn = await pool.get()
        status, _ = await conn.send(request)
        latencies.append(time.perf_counter() - planned)
        pool.put_nowait(conn)
        if status != 200:
            raise RuntimeError(f"core answered {status}")

    start, wall = time.perf_counter(), time.time()
    sent: list[asyncio.Task[None]] = []
    for i in range(count):
        planned = start + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(asyncio.create_task(one(planned, request(i, wall + i / rate))))
    await asyncio.gather(*sent)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies

"""Load clients for the ws_delivery benchmark: many raw WebSocket devices in one process.

Used by tests/bench/ws_delivery.py. A device is a bare asyncio protocol: it gets its ticket over
plain HTTP, upgrades, acknowledges every frame (all acks of one read in one write, masked with a zero
key), answers pings, and, for latency, reads `t=<unix time>` from notification content. The parent
drives a process through a pipe: ("connect", users) -> count, ("stats",) -> (acked, timings), ("quit",).
A timing is (published, stamped, received) in unix seconds: `t=` from the content, the room's
`message_timestamp` (taken when it handled the broker event), and the device's clock on decoding.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from multiprocessing.connection import Connection
from typing import cast

from tests.support.tokens import token
from workers.common.contract.wire import WebSocketMessage

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PARALLEL_CONNECTS = 100


class Stats:
    def __init__(self) -> None:
        self.acked = 0
        self.timings: list[tuple[float, float, float]] = []


class Device(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.open = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(self.buffer[:40]).decode(errors="replace")))
                return
            del self.buffer[: end + 4]
            self.open = True
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer, out = self.buffer, []
        while len(buffer) >= 2:
            length, offset = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                break
            opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 2:
                out.append(self._ack(payload))
            elif opcode == 9:
                out.append(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _ack(self, payload: bytes) -> bytes:
        size = payload[1]  # field 1 (message_id) comes first in every server frame
        ack = b"\x0a" + bytes([size]) + payload[2 : 2 + size]
        self.stats.acked += 1
        if b"t=" in payload:
            message = WebSocketMessage.FromString(payload)
            content = message.notification.content
            if content.startswith(b"t="):
                stamp = message.message_timestamp
                stamped = stamp.seconds + stamp.nanos / 1e9
                self.stats.timings.append((float(content[2:]), stamped, time.time()))
        return bytes([0x82, 0x80 | len(ack)]) + b"\0\0\0\0" + ack


async def ticket(port: int, token: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/v1/ticket HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head[:40].decode(errors="replace"))
    return str(json.loads(body)["ticket"])


async def connect(port: int, user: str, *, secret: str, stats: Stats, devices: list[Device]) -> None:
    loop = asyncio.get_running_loop()
    t = await ticket(port, token(user, secret=secret))
    _, device = await loop.create_connection(lambda: Device(stats), "127.0.0.1", port)
    request = (
        f"GET /ws/v1?ticket={t} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert device.transport is not None
    device.transport.write(request.encode())
    await device.opened
    devices.append(device)


async def serve(pipe: Connection, port: int, secret: str) -> None:
    loop = asyncio.get_running_loop()
    stats, devices = Stats(), []
    gate = asyncio.Semaphore(PARALLEL_CONNECTS)

    async def one(user: str) -> None:
        async with gate:
            await connect(port, user, secret=secret, stats=stats, devices=devices)

    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command[0] == "connect":
            await asyncio.gather(*(one(user) for user in command[1]))
            pipe.send(len(devices))
        elif command[0] == "stats":
            pipe.send((stats.acked, stats.timings))
            stats.timings = []
        else:
            for device in devices:
                if device.transport is not None:
                    device.transport.abort()
            pipe.send("bye")
            return


def main(pipe: Connection, port: int, secret: str) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(pipe, port, secret))

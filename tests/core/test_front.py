"""core's HTTP front under attack, over real sockets against a real core process.

Header bombs are 431 and cost no memory, slowloris connections are dropped once the head timeout
passes, idle keep-alive connections are closed, and connections past the cap are 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import free_port
from tests.core.conftest import running_core, settings_for
from tests.support.processes import RoomProcess, core_process
from tests.support.tokens import SECRET, bearer
from workers.common.contract import paths

HEADER_TIMEOUT_S = 1.0
KEEPALIVE_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 40
BOMB_CONNECTIONS = 20
BOMB_BYTES = 16 * 1024 * 1024


FRONT = {
    "http_header_timeout_s": HEADER_TIMEOUT_S,
    "http_keepalive_timeout_s": KEEPALIVE_TIMEOUT_S,
    "http_max_connections": MAX_CONNECTIONS,
}


@pytest.fixture
async def core_proc(env: dict[str, str], redis: object, amqp: AbstractRobustConnection) -> AsyncIterator[RoomProcess]:
    """core as its own process, so that its memory can be measured."""
    settings = {f"NOTIFIER_CORE_{name.upper()}": str(value) for name, value in FRONT.items()}
    async with core_process(
        {**env, **settings, "NOTIFIER_JWT_SECRET": SECRET}, http_port=free_port(), ops_port=free_port()
    ) as process:
        yield process


@pytest.fixture
async def core(stream: str, amqp_namespace: str, redis: object, amqp: AbstractRobustConnection) -> AsyncIterator[int]:
    """The HTTP port of a core room running in the test's loop."""
    async with running_core(settings_for(stream, amqp_namespace, **FRONT)) as room:
        yield room.http_port


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    """Status and JSON body of one response (the server closes the connection after it)."""
    raw = await asyncio.wait_for(reader.read(), 10)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closed (EOF or reset) the connection, False if it still holds it after 10 s."""
    try:
        await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def bomb(port: int) -> int:
    """Send a GET whose one header grows towards 16 MB; how many bytes went out before core cut it off."""
    reader, writer = await connect(port)
    writer.write(b"GET /api/v1/notifications/undelivered HTTP/1.1\r\nHost: core\r\nX-Bomb: ")
    chunk = b"a" * 65_536
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < BOMB_BYTES and not reader.at_eof():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.001)
    writer.close()
    return sent


async def test_header_bombs_are_cut_off_and_do_not_grow_memory(core_proc: RoomProcess) -> None:
    before = rss_bytes(core_proc.process.pid)
    sent = await asyncio.gather(*(bomb(core_proc.http_port) for _ in range(BOMB_CONNECTIONS)))
    grown = rss_bytes(core_proc.process.pid) - before
    assert max(sent) < BOMB_BYTES, "a 16 MB request head was read to its end"
    assert grown < 32 * 1024 * 1024, f"core grew by {grown} bytes under {BOMB_CONNECTIONS} header bombs"


async def test_a_head_over_the_limit_is_431_with_a_json_detail(core: int) -> None:
    reader, writer = await connect(core)
    writer.write(b"GET " + paths.UNDELIVERED.encode() + b" HTTP/1.1\r\nHost: core\r\nX-Big: " + b"a" * 20_000 + b"\r\n")
    status, body = await answer(reader)
    writer.close()
    assert status == 431
    assert body == {"detail": "request head too large"}


async def test_too_many_header_fields_are_431_with_a_json_detail(core: int) -> None:
    reader, writer = await connect(core)
    headers = b"".join(b"X-%d: 1\r\n" % n for n in range(150))
    writer.write(b"GET " + paths.UNDELIVERED.encode() + b" HTTP/1.1\r\nHost: core\r\n" + headers + b"\r\n")
    status, body = await answer(reader)
    writer.close()
    assert status == 431
    assert body == {"detail": "too many header fields"}


async def test_a_garbage_request_line_is_400_with_a_json_detail(core: int) -> None:
    reader, writer = await connect(core)
    writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
    status, body = await answer(reader)
    writer.close()
    assert status == 400
    assert body == {"detail": "invalid HTTP request"}


async def test_a_slowloris_head_is_dropped_once_the_header_timeout_passes(core: int) -> None:
    reader, writer = await connect(core)
    writer.write(b"GET " + paths.UNDELIVERED.encode() + b" HTTP/1.1\r\nHost: core\r\nX-Slow: ")
    trickled = 0
    with contextlib.suppress(ConnectionError):
        while not reader.at_eof() and trickled < 100:  # 100 bytes at 0.1 s is ten times the timeout
            writer.write(b"a")
            await writer.drain()
            trickled += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.1)
    assert await closed_by_server(reader)
    assert trickled < 100, "the slow head was still being read after ten header timeouts"
    writer.close()


async def test_a_connection_that_sends_nothing_is_dropped(core: int) -> None:
    reader, writer = await connect(core)
    assert await closed_by_server(reader)
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_its_response(core: int) -> None:
    reader, writer = await connect(core)
    token = bearer("alice")["Authorization"].encode()
    writer.write(
        b"GET " + paths.UNDELIVERED.encode() + b" HTTP/1.1\r\nHost: core\r\nAuthorization: " + token + b"\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    assert await closed_by_server(reader)
    writer.close()


async def test_connections_past_the_cap_are_503_and_the_cap_frees_up(core: int) -> None:
    held = [await connect(core) for _ in range(MAX_CONNECTIONS)]
    reader, writer = await connect(core)
    status, body = await answer(reader)
    writer.close()
    assert status == 503
    assert body == {"detail": "too many connections, retry later"}
    assert all(await asyncio.gather(*(closed_by_server(held_reader) for held_reader, _ in held)))  # head timeout
    for _, held_writer in held:
        held_writer.close()
    reader, writer = await connect(core)
    token = bearer("alice")["Authorization"].encode()
    request = b"GET " + paths.UNDELIVERED.encode() + b" HTTP/1.1\r\nHost: core\r\nConnection: close\r\n"
    writer.write(request + b"Authorization: " + token + b"\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]

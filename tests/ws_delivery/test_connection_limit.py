"""ws_delivery at its open-file limit: devices beyond NOTIFIER_WS_MAX_CONNECTIONS get 503 with Retry-After, the ops
port keeps answering, a refused device's ticket stays good, and devices connect again once others leave.

The room runs as a real process with `ulimit -n 256`, so its default cap is 127 device-port connections
(the limit less 64 for Redis's pool, 1 for the admin-close subscription and 64 for the rest); without the
cap the process would run out of descriptors and its ops port would stop answering. Up to 32 connections
past the cap wait for their request to be refused; more are dropped unanswered, so connections that never
send a request cannot take the descriptors kept either.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.conftest import free_port
from tests.support.metrics import sample
from tests.support.processes import RoomProcess, start_room
from tests.support.tokens import SECRET, bearer, token
from workers.client.http import get_ticket, websocket_url
from workers.common.contract import paths

FILE_LIMIT = 256
CAP = 127
REFUSING = 32


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def start(env: dict[str, str], tmp_path: Path, *, http_port: int, **settings: str) -> RoomProcess:
    return start_room(
        "ws_delivery",
        env={
            **env,
            "NOTIFIER_JWT_SECRET": SECRET,
            "NOTIFIER_WS_TICKET_TTL_S": "300",
            "NOTIFIER_WS_HANDSHAKE_TIMEOUT_S": "60",
            **settings,
        },
        ops_port=free_port(),
        http_port=http_port,
        log_dir=tmp_path,
        preexec_fn=lambda: limited(FILE_LIMIT),
    )


@pytest.fixture
async def room(env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[RoomProcess, str]]:
    port = free_port()
    process = start(env, tmp_path, http_port=port)
    try:
        await process.wait_ready()
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.kill()


async def connections(room: RoomProcess) -> float:
    return await room.metric("notifier_ws_connections")


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server ended the connection without a byte of answer."""
    try:
        return await reader.read() == b""
    except ConnectionResetError:
        return True


async def refused_upgrade(url: str, ticket: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(websocket_url(url, ticket), compression=None)
    return refused.value


async def test_devices_past_the_cap_get_503_while_the_ops_port_answers(room: tuple[RoomProcess, str]) -> None:
    process, url = room
    async with httpx.AsyncClient(timeout=10) as http:
        tickets = [await get_ticket(http, ws_url=url, token=token(f"u{i}")) for i in range(CAP + 2)]
        late, later = tickets[CAP:]
        devices: list[ClientConnection] = await asyncio.gather(
            *(websockets.connect(websocket_url(url, ticket), compression=None) for ticket in tickets[:CAP])
        )
        try:
            assert await connections(process) == CAP

            refusal = await refused_upgrade(url, late)
            assert refusal.response.status_code == 503
            assert 5 <= int(refusal.response.headers["Retry-After"]) <= 15
            assert b"at capacity" in refusal.response.body
            ticket_request = await http.get(url + paths.TICKET, headers=bearer("x"))
            assert ticket_request.status_code == 503

            storm = await asyncio.gather(*(refused_upgrade(url, later) for _ in range(REFUSING)))
            assert {r.response.status_code for r in storm} == {503}
            ready = await http.get(f"http://127.0.0.1:{process.ops_port}/readyz")
            assert ready.status_code == 200
            text = await process.metrics()
            assert sample("notifier_ws_refused_total", text=text) == REFUSING + 2
            assert sample("notifier_ws_connections", text=text) == CAP

            # Connections that send nothing: REFUSING of them wait for a request, the rest are dropped at once.
            silent = [await asyncio.open_connection("127.0.0.1", port(url)) for _ in range(REFUSING + 8)]
            try:
                dropped = [asyncio.ensure_future(closed_by_server(reader)) for reader, _ in silent]
                for closed, finished in enumerate(asyncio.as_completed(dropped, timeout=10), start=1):
                    assert await finished
                    if closed == 8:
                        break
                assert sum(not task.done() for task in dropped) <= REFUSING
                assert (await http.get(f"http://127.0.0.1:{process.ops_port}/readyz")).status_code == 200
                assert len(os.listdir(f"/proc/{process.process.pid}/fd")) < FILE_LIMIT
            finally:
                for task in dropped:
                    task.cancel()
                for _, writer in silent:
                    writer.close()

            await devices.pop().close()
            await devices.pop().close()
            while await connections(process) > CAP - 2:
                await asyncio.sleep(0.05)  # the gauge drops when the room has seen both closes
            devices.append(await websockets.connect(websocket_url(url, late), compression=None))
            devices.append(await websockets.connect(websocket_url(url, later), compression=None))
            assert await connections(process) == CAP
        finally:
            await asyncio.gather(*(device.close() for device in devices))


async def test_a_cap_that_leaves_too_few_descriptors_is_refused_at_start(env: dict[str, str], tmp_path: Path) -> None:
    process = start(env, tmp_path, http_port=free_port(), NOTIFIER_WS_MAX_CONNECTIONS=str(CAP + 1))
    try:
        assert await asyncio.to_thread(process.process.wait, 30) == 2
    finally:
        process.kill()
    assert "NOTIFIER_WS_MAX_CONNECTIONS" in process.log
    assert f"at most {CAP}: the open-file limit ({FILE_LIMIT})" in process.log

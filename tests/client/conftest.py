"""The client against real rooms in this process: ws_delivery (the fixtures of its tests) and core."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.core.conftest import running_core, settings_for
from tests.support.processes import ROOT
from tests.support.tokens import SECRET, bearer
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Bus, bus, http, start_instance, ws_settings
from workers.core.main import CoreRoom

__all__ = ["bus", "http", "start_instance", "ws_settings"]


class Core:
    def __init__(self, room: CoreRoom, http: httpx.AsyncClient) -> None:
        self.room = room
        self._http = http

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.room.http_port}"

    async def create(self, *users: str, content: bytes = b"hi", key: str = "") -> str:
        body = {
            "user_ids": list(users),
            "producer_notification_id": key or f"p-{'-'.join(users)}-{content.hex()}",
            "content_type": "text/plain",
            "content": base64.b64encode(content).decode(),
        }
        response = await self._http.post(
            f"{self.url}/api/v1/notifications/undelivered", json=body, headers=bearer("producer", "notifier_produce")
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    async def delivered_ids(self, user: str) -> list[str]:
        response = await self._http.get(f"{self.url}/api/v1/notifications/delivered", headers=bearer(user))
        response.raise_for_status()
        return [item["id"] for item in response.json()]

    async def take_undelivered(self, user: str) -> list[str]:
        response = await self._http.get(f"{self.url}/api/v1/notifications/undelivered", headers=bearer(user))
        response.raise_for_status()
        return [item["id"] for item in response.json()]

    async def wait_delivered(self, user: str, notification_id: str, timeout_s: float = 5.0) -> None:
        async def delivered() -> bool:
            return notification_id in await self.delivered_ids(user)

        await eventually(delivered, timeout_s=timeout_s, what=f"{notification_id} delivered to {user}")


@contextlib.asynccontextmanager
async def listen_process(*args: str, env: Mapping[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    """`notifier listen ARGS` as a process (output piped), killed on the way out if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli",
        "listen",
        *args,
        cwd=ROOT,
        env={**os.environ, "NOTIFIER_JWT_SECRET": SECRET, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
async def core(
    stream: str, amqp_namespace: str, amqp: AbstractRobustConnection, http: httpx.AsyncClient
) -> AsyncIterator[Core]:
    async with running_core(settings_for(stream, amqp_namespace, relay_block_s=0.1)) as room:
        yield Core(room, http)


__all__ += ["Bus"]

"""schemathesis against ws_delivery's OpenAPI document, every role: no 5xx, no status it does not list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.common.schema_fuzz import fuzz
from tests.conftest import free_port
from tests.processes import start_room
from tests.ws_delivery.conftest import SECRET, token

CASES = 25
"""Generated cases per operation and role (valid and invalid mixed): about 225 requests in all."""


@pytest.fixture
async def ws_url(
    env: dict[str, str], redis: object, amqp: AbstractRobustConnection, tmp_path: Path
) -> AsyncIterator[str]:
    """A ws_delivery process as operators run it; its HTTP base URL."""
    port = free_port()
    room = start_room(
        "ws_delivery",
        env={**env, "NOTIFIER_HTTP_PORT": str(port), "NOTIFIER_JWT_SECRET": SECRET},
        log_dir=tmp_path,
        ops_port=free_port(),
    )
    try:
        await room.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        room.kill()


async def test_generated_requests_as_every_role_get_no_5xx_and_only_documented_statuses(ws_url: str) -> None:
    roles = {
        "none": {},
        "user": {"Authorization": f"Bearer {token('alice')}"},
        "admin": {"Authorization": f"Bearer {token('admin-1', 'notifier_admin')}"},
    }
    statuses = await asyncio.to_thread(fuzz, ws_url, roles=roles, cases=CASES)
    assert {200, 204, 400, 401, 403, 426} <= set(statuses), statuses

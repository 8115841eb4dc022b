"""Request helpers of the core tests."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.core.conftest import producer
from tests.support.tokens import bearer
from workers.common.contract import paths


def body(
    users: list[str], pnid: str | int, *, content: bytes = b"hello", invalidate_at: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "invalidate_at": invalidate_at,
        "user_ids": users,
        "producer_notification_id": pnid,
        "content_type": "text/plain",
        "content": base64.b64encode(content).decode(),
        **extra,
    }


def in_seconds(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


async def create(
    http: httpx.AsyncClient, users: list[str], pnid: str | int, *, by: str = "producer-1", **kwargs: Any
) -> str:
    response = await http.post(paths.UNDELIVERED, json=body(users, pnid, **kwargs), headers=producer(by))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def take(http: httpx.AsyncClient, user: str, *, wait: float = 0) -> list[dict[str, Any]]:
    params = {"wait": wait} if wait else {}
    response = await http.get(paths.UNDELIVERED, params=params, headers=bearer(user))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result

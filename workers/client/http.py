"""The client's HTTP calls: a ticket from ws_delivery, undelivered notifications from core (long polling)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import httpx

from workers.common import paths
from workers.common.wire import Notification, to_timestamp


def http_base(url: str) -> str:
    """`ws://h:p` or `http://h:p` (with or without a trailing slash) as an http(s) base URL."""
    url = url.rstrip("/")
    for ws, plain in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(ws):
            return plain + url[len(ws) :]
    return url


def websocket_url(url: str, ticket: str) -> str:
    base = http_base(url)
    scheme = "wss://" if base.startswith("https://") else "ws://"
    return f"{scheme}{base.split('://', 1)[1]}{paths.WEBSOCKET}?ticket={ticket}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get_ticket(http: httpx.AsyncClient, *, ws_url: str, token: str) -> str:
    response = await http.get(http_base(ws_url) + paths.TICKET, headers=bearer(token))
    response.raise_for_status()
    return str(response.json()["ticket"])


async def poll_undelivered(
    http: httpx.AsyncClient, *, core_url: str, token: str, wait_s: float = 0.0
) -> list[Notification]:
    """The caller's undelivered notifications (core marks them delivered); blocks up to `wait_s` for one."""
    params = {"wait": f"{wait_s:g}"} if wait_s > 0 else {}
    response = await http.get(
        http_base(core_url) + paths.UNDELIVERED, params=params, headers=bearer(token), timeout=wait_s + 10
    )
    response.raise_for_status()
    body = response.json()
    items = body if isinstance(body, list) else body.get("notifications", body.get("items", []))
    return [from_json(item) for item in items]


def from_json(item: dict[str, Any]) -> Notification:
    """Core's JSON notification as the Notification a WebSocket frame carries (status NEW)."""
    created = datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00"))
    notification = Notification(
        id=str(item["id"]), status=Notification.NEW, timestamp=to_timestamp(created.timestamp())
    )
    if item.get("created_by") is not None:
        notification.created_by = str(item["created_by"])
    if item.get("seen") is not None:
        notification.seen = bool(item["seen"])
    if item.get("content_type") is not None:
        notification.content_type = str(item["content_type"])
    if item.get("content") is not None:
        notification.content = base64.b64decode(item["content"])
    return notification

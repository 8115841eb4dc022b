"""The client's HTTP calls: a ticket from ws_delivery, the user's feed from core (paged, long polling)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from workers.common.contract import paths
from workers.common.contract.wire import Notification, to_timestamp


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


class CursorExpired(Exception):
    """Core answered 410 (the cursor is older than the feed's retention) or refused the cursor with 422 (it is
    from another store, e.g. one that was reset): read again from the oldest change kept."""


@dataclass(frozen=True, slots=True)
class FeedPage:
    notifications: list[Notification]
    """Each entry as the Notification a WebSocket frame would carry, `position` set."""
    next: str


async def read_feed(
    http: httpx.AsyncClient, *, core_url: str, token: str, after: str | None, limit: int, wait_s: float = 0.0
) -> FeedPage:
    """One page of the caller's feed after `after` (None: from the oldest change kept); blocks up to `wait_s`."""
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    if wait_s > 0:
        params["wait"] = f"{wait_s:g}"
    response = await http.get(
        http_base(core_url) + paths.FEED, params=params, headers=bearer(token), timeout=wait_s + 10
    )
    if response.status_code == 410 or (response.status_code == 422 and after is not None):
        raise CursorExpired(f"HTTP {response.status_code}: {response.json().get('detail', '')}")
    response.raise_for_status()
    body = response.json()
    return FeedPage(notifications=[from_feed_item(item) for item in body["items"]], next=str(body["next"]))


def from_feed_item(item: dict[str, Any]) -> Notification:
    """A feed entry as a Notification: its status and position, and the content unless it is DELETED."""
    notification = Notification(id=str(item["id"]), status=str(item["status"]), position=str(item["position"]))
    if item.get("created_at") is not None:
        notification.MergeFrom(from_json(item))  # its status is NEW, proto3's default, which a merge leaves alone
    return notification


async def poll_undelivered(
    http: httpx.AsyncClient, *, core_url: str, token: str, wait_s: float = 0.0
) -> list[Notification]:
    """The caller's undelivered notifications (core marks them delivered); blocks up to `wait_s` for one.

    The endpoint of earlier clients: it answers only what no device of the user has had yet; devices read
    the feed (`read_feed`) instead."""
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

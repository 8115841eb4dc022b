"""The HTTP side of the room's port: tickets, admin close, the WebSocket upgrade's ticket check, OpenAPI.

`route` answers a finished `Response`, or the user id when the request may become a WebSocket.
Each response closes its TCP connection (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import http
import json
import logging
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from workers.common.contract import paths
from workers.common.contract.errors import error_body
from workers.common.contract.keys import GatewayKeys, is_valid_id
from workers.common.runtime.auth import InvalidToken, Principal, TokenVerifier, bearer_principal
from workers.common.runtime.faults import HEALTH, REDIS, temporary
from workers.ws_delivery import metrics, tickets
from workers.ws_delivery.openapi import OPENAPI
from workers.ws_delivery.settings import WsSettings

log = logging.getLogger(__name__)

CONNECTION_PREFIX = paths.CONNECTION.split("{", 1)[0]
OPENAPI_PATH = "/openapi.json"


def respond(status: int, body: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None) -> Response:
    return _response(status, None if body is None else json.dumps(body).encode(), headers)


def detail(status: int, text: str, *, headers: dict[str, str] | None = None) -> Response:
    """An error answer: `{"detail": text}`, as every port of Notifier answers errors."""
    return _response(status, error_body(text), headers)


def _response(status: int, data: bytes | None, headers: dict[str, str] | None) -> Response:
    code = http.HTTPStatus(status)
    pairs = [("Date", email.utils.formatdate(usegmt=True)), ("Connection", "close")]
    if data is not None:
        pairs += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    elif status != 204:
        pairs.append(("Content-Length", "0"))
    pairs += list((headers or {}).items())
    return Response(code.value, code.phrase, Headers(pairs), data or b"")


def at_capacity(limit: int) -> Response:
    """The answer to any request while the device port holds more than `limit` connections
    (`NOTIFIER_WS_MAX_CONNECTIONS`): the descriptors left belong to Redis, the broker and the ops port. The
    Retry-After is spread over 5-15 s so that devices refused together do not come back together."""
    metrics.REFUSED.inc()
    retry_after = str(random.randint(5, 15))
    return detail(503, f"at capacity ({limit} connections), retry later", headers={"Retry-After": retry_after})


def one(headers: Headers, name: str) -> str:
    """The header's value, or "" when it is missing or repeated (`Headers.get` raises on a repeat)."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else ""


def is_upgrade(request: Request) -> bool:
    """Whether the request is a WebSocket handshake the protocol will accept (RFC 6455 section 4.2.1)."""
    headers = request.headers
    connection = {token.strip().lower() for value in headers.get_all("Connection") for token in value.split(",")}
    try:
        key = base64.b64decode(one(headers, "Sec-WebSocket-Key"), validate=True)
    except binascii.Error:
        return False
    return (
        "upgrade" in connection
        and one(headers, "Upgrade").lower() == "websocket"
        and one(headers, "Sec-WebSocket-Version") == "13"
        and len(key) == 16
    )


class Router:
    def __init__(self, *, redis: aioredis.Redis, settings: WsSettings, verifier: TokenVerifier) -> None:
        self._redis = redis
        self._settings = settings
        self._verifier = verifier
        self._keys = GatewayKeys(settings.stream)
        self._redis_gate = asyncio.Semaphore(settings.redis_concurrency)
        """Bursts (every device of a restarted instance reconnecting) queue here, within Redis's connection pool."""

    async def route(self, request: Request) -> Response | str:
        url = urlsplit(request.path)
        try:
            async with self._redis_gate:
                return await self._dispatch(request, url.path, url.query)
        except RedisError as exc:
            away = temporary(exc, dependency=REDIS)
            if away is None:
                raise
            HEALTH.failed(away, what=f"serve {request.method} {url.path}")
            return detail(503, "Redis unavailable", headers={"Retry-After": "1"})

    async def _dispatch(self, request: Request, path: str, query: str) -> Response | str:
        if path == paths.WEBSOCKET:
            return await self._websocket(request, query)
        if path == paths.TICKET:
            return await self._ticket(request)
        if path.startswith(CONNECTION_PREFIX):
            return await self._close_user(request, path[len(CONNECTION_PREFIX) :])
        if path == OPENAPI_PATH and request.method == "GET":
            return respond(200, OPENAPI)
        return detail(404, "not found")

    async def _websocket(self, request: Request, query: str) -> Response | str:
        if request.method != "GET":
            return detail(405, "method not allowed")
        ticket = parse_qs(query).get("ticket", [""])[0]
        if not ticket:
            return detail(400, "ticket is required")
        if not is_upgrade(request):  # checked before the ticket is spent: a plain GET must not burn it
            upgrade = {"Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
            return detail(426, "a WebSocket upgrade is required", headers=upgrade)
        user = await tickets.redeem(self._redis, self._keys, ticket)
        if user is None:
            return detail(401, "unknown, used or expired ticket")
        return user

    async def _ticket(self, request: Request) -> Response:
        if request.method != "GET":
            return detail(405, "method not allowed")
        principal = self._principal(request)
        if isinstance(principal, Response):
            return principal
        ticket = await tickets.issue(self._redis, self._keys, user=principal.sub, ttl_s=self._settings.ticket_ttl_s)
        return respond(200, {"ticket": ticket})

    async def _close_user(self, request: Request, user: str) -> Response:
        if request.method != "DELETE":
            return detail(405, "method not allowed")
        principal = self._principal(request)
        if isinstance(principal, Response):
            return principal
        if not principal.has(self._settings.role_admin):
            return detail(403, f"role {self._settings.role_admin} required")
        if not is_valid_id(user):
            return detail(422, "user id must match " + r"[A-Za-z0-9._:@-]{1,128}")
        receivers = await self._redis.publish(self._keys.close_channel, user)
        log.info("admin %s closed the connections of user %s (%s instances told)", principal.sub, user, receivers)
        return respond(204)

    def _principal(self, request: Request) -> Principal | Response:
        try:
            return bearer_principal(self._verifier, one(request.headers, "Authorization"))
        except InvalidToken as exc:
            return detail(401, str(exc), headers={"WWW-Authenticate": "Bearer"})

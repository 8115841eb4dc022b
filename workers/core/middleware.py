"""ASGI middleware of the core API: the HTTP body limit and UTF-8 check (before any parsing), request metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.common.contract.errors import error_body
from workers.core import metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def send_json(send: Send, status: int, detail: str | list[dict[str, object]]) -> None:
    body = error_body(detail)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Reads the whole body first, up to `limit` bytes (Content-Length or chunked): 413 above it.

    The app then reads the buffered body; later `receive` calls (disconnects) go to the server.
    """

    def __init__(self, app: ASGIApp, *, limit: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.limits = limits or {}
        """Paths with a limit of their own (a batch of creates)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        too_large = f"request body is over {limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_json(send, 413, too_large)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        whole = b"".join(chunks)
        if not _utf8(whole):  # FastAPI would answer 400; JSON is UTF-8, and any body problem is 422
            await send_json(send, 422, [{"loc": ["body"], "msg": "request body is not UTF-8", "type": "json_invalid"}])
            return
        body = {"type": "http.request", "body": whole, "more_body": False}
        await self.app(scope, replay([body], receive), send)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that returns `messages` first, then what the server sends."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class RequestMetrics:
    """Counts requests by route template, method and status, and times them."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        routed = scope.get("route")
        if routed is not None:
            return str(getattr(routed, "path", "other"))
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "other"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = self._template(scope)
            metrics.REQUESTS.labels(route, method, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)

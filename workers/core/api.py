"""The core HTTP API (DESIGN section 6): a FastAPI app over the store; OpenAPI at /openapi.json, docs at /docs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.common.contract import paths
from workers.common.runtime.aio import first_of
from workers.common.runtime.auth import InvalidToken, Principal, bearer_principal
from workers.common.runtime.faults import HEALTH, REDIS, temporary
from workers.core import metrics
from workers.core.middleware import BodyLimit, RequestMetrics, replay
from workers.core.model import (
    BadContent,
    BadCursor,
    BatchCreated,
    ContentTooLarge,
    CreateBatchBody,
    CreateBody,
    Created,
    FeedView,
    InvalidateBody,
    NotificationView,
    SeenBody,
    Stored,
    decode_content,
    deleted_event,
    format_cursor,
    new_event,
    new_id,
    parse_cursor,
    seen_event,
)
from workers.core.responses import document, error_response, http_error
from workers.core.settings import CoreSettings
from workers.core.store import (
    DEFAULT_FEED_LIMIT,
    Duplicate,
    ExpiredCursor,
    FeedEntry,
    FeedPage,
    FutureCursor,
    Store,
)
from workers.core.tokens import CachingVerifier
from workers.core.wakeups import Wakeups

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
MAX_WAIT_S = 60.0
MAX_FEED_LIMIT = 500
RESYNC_DETAIL = (
    "cursor is older than the feed's retention: changes after it may be gone; resync by reading the feed "
    "without a cursor (from the oldest change kept)"
)
T = TypeVar("T")
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


@dataclass
class Services:
    store: Store
    wakeups: Wakeups
    verifier: CachingVerifier
    settings: CoreSettings
    stopping: asyncio.Event


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _not_found() -> HTTPException:
    return HTTPException(404, "notification not found")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _verified(services: Services, authorization: str) -> Principal:
    try:
        return bearer_principal(services.verifier, authorization)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None


def _producing(services: Services, authorization: str) -> Principal:
    """A caller with the produce role (401 without a valid token, 403 without the role)."""
    principal = _verified(services, authorization)
    role = services.settings.role_produce
    if not principal.has(role):
        raise HTTPException(403, f"role {role} required")
    return principal


async def _caller(request: Request) -> Principal:
    """Any caller with a valid token (401 otherwise)."""
    return _verified(_services(request), request.headers.get("authorization", ""))


async def _producer(request: Request) -> Principal:
    return _producing(_services(request), request.headers.get("authorization", ""))


Caller = Annotated[Principal, Depends(_caller)]
Producer = Annotated[Principal, Depends(_producer)]


def _future(value: float | None, now: float) -> float | None:
    if value is not None and value <= now:
        raise HTTPException(422, "invalidate_at must be in the future")
    return value


async def create_notification(services: Services, principal: Principal, body: CreateBody) -> str:
    """Store a validated create request of an authorized producer; its id (HTTPException on refusal)."""
    now = time.time()
    invalidate_at = _future(None if body.invalidate_at is None else body.invalidate_at.timestamp(), now)
    try:
        content = decode_content(body.content, limit=services.settings.content_limit_bytes)
    except BadContent as exc:
        raise HTTPException(422, str(exc)) from None
    except ContentTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    users = body.recipients()
    stored = Stored(
        id=new_id(now),
        created_ms=int(now * 1000),
        created_by=principal.sub,
        content_type=body.content_type,
        content=content,
    )
    try:
        await services.store.create(
            stored,
            producer_notification_id=body.producer_notification_id,
            users=users,
            invalidate_at=invalidate_at,
            event=new_event(stored, now_s=now),
        )
    except Duplicate as exc:
        metrics.DUPLICATES.inc()
        log.info(
            "producer %s repeated producer_notification_id %s (notification %s)",
            principal.sub,
            body.producer_notification_id,
            exc.existing_id,
        )
        raise HTTPException(409, "producer_notification_id was already used") from None
    audience = "broadcast" if not users else ("unicast" if len(users) == 1 else "multicast")
    metrics.CREATED.labels(audience).inc()
    log.info("created notification %s by %s for %d users (%s)", stored.id, principal.sub, len(users), audience)
    return stored.id


async def _long_poll(
    services: Services,
    request: Request,
    *,
    user: str,
    wait: float,
    read: Callable[[float], Awaitable[T]],
    empty: Callable[[T], bool],
) -> T | None:
    """`read(wait_until)` until it finds something, `wait` seconds pass or core stops; None when the caller left.

    `read` marks the user waiting in the store when it finds nothing (until `wait_until`), so a change for
    the user on any replica publishes a wake-up, which sets the watch registered before the first read.
    """
    deadline = time.monotonic() + wait
    wait_until = time.time() + wait if wait > 0 else 0.0
    with services.wakeups.watch(user) as woken:
        while True:
            woken.clear()
            found = await read(wait_until)
            remaining = deadline - time.monotonic()
            if not empty(found) or remaining <= 0 or services.stopping.is_set():
                return found
            with metrics.WAITING_POLLS.track_inprogress():
                await first_of(woken.wait(), services.stopping.wait(), timeout_s=remaining)
            if await request.is_disconnected():
                return None


def _feed_item(entry: FeedEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "position": format_cursor(entry.position),
        "id": entry.id,
        "status": entry.status,
        "created_at": None,
        "created_by": None,
        "seen": entry.seen,
        "content_type": None,
        "content": None,
    }
    if entry.stored is not None:
        item.update(entry.stored.view(seen=entry.seen))
    return item


def create_app(services: Services) -> FastAPI:
    settings, store = services.settings, services.store
    app = FastAPI(
        title="Notifier core",
        version="1",
        summary="The notification store and its delivery state.",
        telemetry=NO_TELEMETRY,  # metrics are Prometheus, served on the ops port
    )
    app.state.services = services

    @app.post(paths.UNDELIVERED, response_model=Created, summary="Create a notification (empty user_ids: broadcast)")
    async def create(body: CreateBody, principal: Producer) -> Response:
        # The endpoint's one declaration; `DirectCreate` serves it and comes here only with bodies that do not
        # validate as they arrive, for FastAPI's own answer to them (mostly 422).
        return JSONResponse({"id": await create_notification(services, principal, body)})

    @app.post(paths.UNDELIVERED_BATCH, response_model=BatchCreated, summary="Create up to 500 notifications")
    async def create_batch(body: CreateBatchBody, principal: Producer) -> Response:
        """Each create of the batch is stored, refused or found a duplicate on its own, as if sent alone, and
        answered in `results` in the order sent; the request is 503 only when the store took none of them."""
        results = await asyncio.gather(*(_batch_item(services, principal, item) for item in body.notifications))
        if all(result["status"] == 503 for result in results):
            return error_response(HTTPException(503, "store unavailable, retry later", headers={"Retry-After": "1"}))
        return JSONResponse({"results": results})

    @app.get(paths.UNDELIVERED, response_model=list[NotificationView], summary="Take undelivered (long poll)")
    async def undelivered(
        request: Request, principal: Caller, wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0
    ) -> Response:
        user = principal.sub

        async def take(wait_until: float) -> list[Stored]:
            return await store.take_undelivered(user, wait_until=wait_until)

        rows = await _long_poll(services, request, user=user, wait=wait, read=take, empty=lambda rows: not rows)
        if rows is None:
            return Response(status_code=499)
        if rows:
            metrics.DELIVERED.labels("poll").inc(len(rows))
            log.info("delivered %d notifications to %s by poll", len(rows), user)
        return JSONResponse([row.view(seen=False) for row in rows])

    @app.get(paths.FEED, response_model=FeedView, summary="The caller's feed after a cursor (long poll)")
    async def feed(
        request: Request,
        principal: Caller,
        after: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_FEED_LIMIT)] = DEFAULT_FEED_LIMIT,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
    ) -> Response:
        """Every change of the caller's notifications after `after`, oldest first (DESIGN section 6)."""
        try:
            position = None if after is None else parse_cursor(after)
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None
        user = principal.sub

        async def read(wait_until: float) -> FeedPage:
            nonlocal position
            page = await store.feed(user, after=position, limit=limit, wait_until=wait_until)
            position = page.next
            return page

        try:
            page = await _long_poll(services, request, user=user, wait=wait, read=read, empty=lambda p: not p.entries)
        except FutureCursor:
            raise HTTPException(422, "cursor is ahead of this feed: not one this service handed out") from None
        except ExpiredCursor:
            return JSONResponse({"detail": RESYNC_DETAIL, "resync": True}, status_code=410)
        if page is None:
            return Response(status_code=499)
        for entry in page.entries:
            metrics.FEED_ENTRIES.labels(entry.status).inc()
        if page.delivered:
            metrics.DELIVERED.labels("feed").inc(page.delivered)
        return JSONResponse({"items": [_feed_item(entry) for entry in page.entries], "next": format_cursor(page.next)})

    @app.put(paths.UNDELIVERED_INVALIDATE_AT, status_code=204, summary="Change when a notification expires")
    async def invalidate_at(id: str, body: InvalidateBody, principal: Producer) -> Response:
        new = _future(None if body.invalidate_at is None else body.invalidate_at.timestamp(), time.time())
        if not await store.set_invalidate_at(principal.sub, id, invalidate_at=new):
            raise _not_found()
        log.info("notification %s now expires at %s", id, new)
        return Response(status_code=204)

    @app.get(paths.DELIVERED, response_model=list[NotificationView], summary="Delivered, newest first")
    async def delivered(
        principal: Caller,
        page_idx: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
        seen: bool | None = None,
    ) -> Response:
        page = await store.delivered(principal.sub, offset=page_idx * page_size, count=page_size, seen=seen)
        return JSONResponse([item.stored.view(seen=item.seen) for item in page])

    @app.get(paths.DELIVERED_ONE, response_model=NotificationView, summary="One delivered notification")
    async def delivered_one(id: str, principal: Caller) -> Response:
        item = await store.delivered_one(principal.sub, id)
        if item is None:
            raise _not_found()
        return JSONResponse(item.stored.view(seen=item.seen))

    @app.delete(paths.DELIVERED_ONE, status_code=204, summary="Delete for the caller (publishes DELETED)")
    async def delete(id: str, principal: Caller) -> Response:
        event = deleted_event(id, user=principal.sub, now_s=time.time())
        if not await store.delete(principal.sub, id, event=event):
            raise _not_found()
        log.info("user %s deleted notification %s", principal.sub, id)
        return Response(status_code=204)

    @app.put(paths.DELIVERED_SEEN, status_code=204, summary="Mark seen or unseen (publishes UPDATED)")
    async def mark_seen(id: str, body: SeenBody, principal: Caller) -> Response:
        event = seen_event(id, user=principal.sub, seen=body.seen, now_s=time.time())
        if not await store.set_seen(principal.sub, id, seen=body.seen, event=event):
            raise _not_found()
        log.info("user %s marked notification %s seen=%s", principal.sub, id, body.seen)
        return Response(status_code=204)

    @app.exception_handler(RedisError)
    async def store_down(_: Request, exc: Exception) -> Response:
        return _store_down(exc)

    app.add_exception_handler(HTTPException, http_error)
    document(app)
    _serve_creates_directly(app, services)
    app.add_middleware(
        BodyLimit,
        limit=settings.http_body_limit_bytes,
        limits={paths.UNDELIVERED_BATCH: settings.http_batch_body_limit_bytes},
    )
    app.add_middleware(RequestMetrics, routes=app.router.routes)
    return app


async def _batch_item(services: Services, principal: Principal, body: CreateBody) -> paths.BatchResult:
    """One create of a batch: `{"status": 200, "id"}`, or the status and detail it would have answered alone."""
    try:
        return {"status": 200, "id": await create_notification(services, principal, body)}
    except HTTPException as exc:
        return {"status": exc.status_code, "detail": json.loads(bytes(error_response(exc).body))["detail"]}
    except RedisError as exc:
        away = temporary(exc, dependency=REDIS)
        if away is None:
            raise
        HEALTH.failed(away, what="serve the API")
        return {"status": 503, "detail": "store unavailable, retry later"}


def _store_down(exc: Exception) -> Response:
    """503 while Redis is away (counted in the dependency metrics); any other Redis error is a bug."""
    away = temporary(exc, dependency=REDIS)
    if away is None:
        raise exc
    HEALTH.failed(away, what="serve the API")
    return error_response(HTTPException(503, "store unavailable, retry later", headers={"Retry-After": "1"}))


def _serve_creates_directly(app: FastAPI, services: Services) -> None:
    """Make `DirectCreate` the handler of the create route, in front of the handler FastAPI built for it: one
    route, declared once (its OpenAPI comes from the declaration), served by the fast path."""
    route = next(
        r for r in app.routes if isinstance(r, APIRoute) and r.path == paths.UNDELIVERED and "POST" in (r.methods or ())
    )
    route.app = DirectCreate(route.app, services=services, route=route)
    app.router.routes.remove(route)
    app.router.routes.insert(0, route)  # matched first: the busiest route pays for no other route's pattern


class DirectCreate:
    """Serves the create endpoint below FastAPI's request machinery, as the create route's handler.

    Dependency solving and body parsing cost most of a create's CPU in core (in-process, with the store
    call left out: 141 µs a create through FastAPI, 19 of them the create's own work; 46 µs with this
    path in front of the whole app), and producers create thousands a second. As the route's handler it
    also passes FastAPI's exception and exit-stack layers and the router, about a quarter more CPU than
    in front of the app (measured in-process on the same machine), and the route is matched first.

    A POST to the create path with a JSON body that validates as `CreateBody` goes straight to
    `create_notification`; refusals (401, 403, 409, 413, 422, 503) are rendered as FastAPI renders them.
    Every other request, and every body that does not validate, goes on to `app`, FastAPI's handler of
    the same route, which answers validation errors in its usual form. Runs inside `BodyLimit`, so the
    body it reads is already bounded.
    """

    def __init__(self, app: ASGIApp, *, services: Services, route: BaseRoute) -> None:
        self.app = app
        self.services = services
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != paths.UNDELIVERED:
            await self.app(scope, receive, send)
            return
        authorization, json_body = "", False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
        messages, raw = await _body(receive)
        body = _parsed(raw) if json_body and raw is not None else None
        if body is None:
            await self.app(scope, replay(messages, receive), send)
            return
        scope["route"] = self.route  # request metrics count it under the route's template
        try:
            principal = _producing(self.services, authorization)
            response: Response = JSONResponse({"id": await create_notification(self.services, principal, body)})
        except HTTPException as exc:
            response = error_response(exc)
        except RedisError as exc:
            response = _store_down(exc)
        await response(scope, receive, send)


async def _body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages and its whole body (None when the client left before sending it)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _parsed(raw: bytes) -> CreateBody | None:
    try:
        return CreateBody.model_validate_json(raw)
    except ValidationError:
        return None

"""The error answers of the core API as its OpenAPI document states them (DESIGN section 6).

Every 4xx and 5xx body is `{"detail": ...}`: a string, except 422, whose detail is FastAPI's list of
validation errors (`[{"loc", "msg", "type"}]`) whether the refusal comes from the request's schema or
from a rule of the endpoint (a past `invalidate_at`, bad base64, a bad cursor). `document` adds to each
route every status its endpoint can answer, so a client (or a schema-driven test) meets no status the
document does not list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from workers.common.contract import paths
from workers.common.contract.errors import error_body


class ErrorBody(BaseModel):
    detail: str


class ResyncBody(BaseModel):
    detail: str
    resync: bool


def _error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {"model": model, "description": description}


EVERY_ENDPOINT: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or invalid bearer token"),
    413: _error("Request body over the HTTP body limit"),
    503: _error("Store unavailable, retry later (Retry-After)"),
}
"""Statuses every endpoint can answer: no token, a body over the limit (checked on every method), Redis away."""

ENDPOINTS: dict[tuple[str, str], dict[int | str, dict[str, Any]]] = {
    ("POST", paths.UNDELIVERED): {
        403: _error("The produce role is missing"),
        409: _error("producer_notification_id was already used"),
        413: _error("Body over the HTTP limit, or decoded content over the content limit"),
    },
    ("POST", paths.UNDELIVERED_BATCH): {
        403: _error("The produce role is missing"),
        413: _error("Body over the batch's HTTP limit"),
    },
    ("GET", paths.FEED): {410: _error("Cursor older than the feed's retention: resync", ResyncBody)},
    ("PUT", paths.UNDELIVERED_INVALIDATE_AT): {
        403: _error("The produce role is missing"),
        404: _error("Not a notification the caller created"),
    },
    ("GET", paths.DELIVERED_ONE): {404: _error("Not delivered to the caller, or deleted")},
    ("DELETE", paths.DELIVERED_ONE): {404: _error("Not delivered to the caller, or deleted")},
    ("PUT", paths.DELIVERED_SEEN): {404: _error("Not delivered to the caller, or deleted")},
}


def document(app: FastAPI) -> None:
    """Add the error statuses of each endpoint to its route (read when the OpenAPI document is built)."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            extra = ENDPOINTS.get((method, route.path), {})
            route.responses = {**EVERY_ENDPOINT, **extra, **route.responses}


def validation_detail(message: str) -> list[dict[str, Any]]:
    """A refusal by an endpoint's own rule, in the shape of FastAPI's validation errors."""
    return [{"loc": [], "msg": message, "type": "value_error"}]


def error_response(exc: HTTPException) -> Response:
    """The answer to an HTTPException: a 422 with a text detail gets the list shape of every other 422."""
    detail: Any = exc.detail
    if exc.status_code == 422 and isinstance(detail, str):
        detail = validation_detail(detail)
    return Response(error_body(detail), exc.status_code, exc.headers, media_type="application/json")


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc)

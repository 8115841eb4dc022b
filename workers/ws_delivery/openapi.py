"""The OpenAPI document of ws_delivery's HTTP endpoints (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from workers.common.contract import paths

_ERROR: dict[str, Any] = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_ALWAYS: dict[str, Any] = {
    "400": {"description": "Not an HTTP request", **_ERROR},
    "405": {"description": "Method not allowed", **_ERROR},
    "414": {"description": "Request line too long"},
    "431": {"description": "Request header fields too large"},
    "503": {"description": "Redis unavailable or the instance at capacity, retry later (Retry-After)", **_ERROR},
}
"""Answers every path can give: the request itself was refused, or Redis is away or the instance full."""

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Notifier ws_delivery", "version": "1"},
    "paths": {
        paths.TICKET: {
            "get": {
                "summary": "A single-use ticket for opening the WebSocket",
                "security": _BEARER,
                "responses": {
                    "200": {
                        "description": "The ticket; it expires after NOTIFIER_WS_TICKET_TTL_S (default 30 s)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}},
                    },
                    "401": {"description": "Missing or invalid token", **_ERROR},
                    **_ALWAYS,
                },
            }
        },
        paths.CONNECTION: {
            "delete": {
                "summary": "Close every connection of the user on every ws_delivery instance (role notifier_admin)",
                "security": _BEARER,
                "parameters": [{"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "204": {"description": "Every instance was told to close the user's connections (code 4003)"},
                    "401": {"description": "Missing or invalid token", **_ERROR},
                    "403": {"description": "Admin role missing", **_ERROR},
                    "422": {"description": "Invalid user id", **_ERROR},
                    **_ALWAYS,
                },
            }
        },
        paths.WEBSOCKET: {
            "get": {
                "summary": "WebSocket: binary WebSocketMessage frames out, WebSocketConfirmation frames in",
                "parameters": [{"name": "ticket", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "101": {"description": "Switching protocols"},
                    **_ALWAYS,
                    "400": {"description": "No ticket, or not an HTTP request", **_ERROR},
                    "401": {"description": "Unknown, used or expired ticket", **_ERROR},
                    "426": {"description": "Not a WebSocket upgrade; the ticket is not spent", **_ERROR},
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Ticket": {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}},
            "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
        },
    },
}

"""Every HTTP path between rooms and clients, declared once (DESIGN section 6)."""

from __future__ import annotations

FEED = "/api/v1/notifications"
UNDELIVERED = "/api/v1/notifications/undelivered"
UNDELIVERED_INVALIDATE_AT = "/api/v1/notifications/undelivered/{id}/invalidate_at"
DELIVERED = "/api/v1/notifications/delivered"
DELIVERED_ONE = "/api/v1/notifications/delivered/{id}"
DELIVERED_SEEN = "/api/v1/notifications/delivered/{id}/seen"

TICKET = "/api/v1/ticket"
CONNECTION = "/api/v1/connection/{user_id}"
WEBSOCKET = "/ws/v1"

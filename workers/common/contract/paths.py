"""Every HTTP path between rooms and clients, declared once (DESIGN section 6)."""

from __future__ import annotations

from typing import TypedDict

FEED = "/api/v1/notifications"
UNDELIVERED = "/api/v1/notifications/undelivered"
UNDELIVERED_BATCH = "/api/v1/notifications/undelivered/batch"
UNDELIVERED_INVALIDATE_AT = "/api/v1/notifications/undelivered/{id}/invalidate_at"
DELIVERED = "/api/v1/notifications/delivered"
DELIVERED_ONE = "/api/v1/notifications/delivered/{id}"
DELIVERED_SEEN = "/api/v1/notifications/delivered/{id}/seen"

TICKET = "/api/v1/ticket"
CONNECTION = "/api/v1/connection/{user_id}"
WEBSOCKET = "/ws/v1"


class CreateRequest(TypedDict):
    """The JSON body of a create (`POST UNDELIVERED`), as producers and the puller send it; core validates it
    with its own model (workers/core/model.py `CreateBody`, checked against this by tests/core/test_contract.py)."""

    invalidate_at: str | None
    """RFC 3339 time with an offset, or null: never expires."""
    user_ids: list[str]
    """The recipients; empty for a broadcast."""
    producer_notification_id: str
    """The producer's idempotency key (1 to `MAX_PRODUCER_ID` characters): a repeat answers 409 with the id of
    the first. A hash tag in it (`{u1}d-42`) registers it in the shard of the tag's text: a producer that tags a
    create with its one recipient has it stored by one script (docs/design.md section 5)."""
    content_type: str
    content: str
    """The content, base64."""


MAX_PRODUCER_ID = 128
"""Most characters of a `producer_notification_id`."""

MAX_BATCH = 500
"""Most creates in one batch (`POST UNDELIVERED_BATCH`)."""


class CreateBatchRequest(TypedDict):
    """The JSON body of a batch of creates: each item is stored, refused or found a duplicate on its own."""

    notifications: list[CreateRequest]


class BatchResult(TypedDict, total=False):
    """The answer to one create of a batch, in the order sent: the status the create alone would have
    answered, with the notification's `id` (200) or the error's `detail` (any other status)."""

    status: int
    id: str
    detail: object

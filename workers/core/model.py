"""The notification model: ids, request bodies, the JSON view and the broker events. Pure, no I/O."""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from workers.common.contract.keys import ID_PATTERN
from workers.common.contract.names import ROUTING_BY_STATUS
from workers.common.contract.paths import MAX_BATCH, MAX_PRODUCER_ID
from workers.common.contract.wire import BrokerNotification, Notification, to_timestamp

UserId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time needs a zone offset (RFC 3339)")
    return value


AwareTime = Annotated[datetime, AfterValidator(_require_offset)]

_counter = itertools.count(int.from_bytes(os.urandom(2), "big"))


def new_id(now_s: float) -> str:
    """A time-sortable id: 12 hex digits of unix milliseconds, a 4-digit process counter, 8 random hex digits."""
    return f"{int(now_s * 1000):012x}{next(_counter) & 0xFFFF:04x}{secrets.token_hex(4)}"


def rfc3339(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BadContent(ValueError):
    """The content is not valid base64."""


class ContentTooLarge(ValueError):
    """The decoded content is over the content limit."""


def decode_content(text: str, *, limit: int) -> bytes:
    if len(text) > (limit + 2) // 3 * 4 + 4:
        raise ContentTooLarge(f"content is over {limit} bytes")
    if len(text) % 4:
        raise BadContent("content is not valid base64")
    try:
        content = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadContent("content is not valid base64") from None
    if len(content) > limit:
        raise ContentTooLarge(f"content is over {limit} bytes")
    return content


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateBody(_Body):
    invalidate_at: AwareTime | None = None
    user_ids: list[UserId] = Field(max_length=10_000)
    producer_notification_id: str = Field(min_length=1, max_length=MAX_PRODUCER_ID)
    content_type: str = Field(min_length=1, max_length=255)
    content: str

    @field_validator("producer_notification_id", mode="before")
    @classmethod
    def _integer_as_decimal(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def recipients(self) -> list[str]:
        """The user ids without repeats, in the order given; empty for a broadcast."""
        return list(dict.fromkeys(self.user_ids))


class CreateBatchBody(_Body):
    notifications: list[CreateBody] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItem(BaseModel):
    status: int
    id: str | None = None
    detail: Any = None


class BatchCreated(BaseModel):
    results: list[BatchItem]


class InvalidateBody(_Body):
    invalidate_at: AwareTime | None


class SeenBody(_Body):
    seen: StrictBool
    """true or false only: 0, 1, "yes" or "true" are 422."""


class Created(BaseModel):
    id: str


class NotificationView(BaseModel):
    """A notification as a user sees it (DESIGN section 13)."""

    id: str
    created_at: str
    created_by: str
    seen: bool
    content_type: str
    content: str


class FeedItem(BaseModel):
    """One entry of a user's feed: the latest change of one notification (DESIGN section 6, the feed).

    DELETED entries carry only `position`, `id` and `status`; the content fields are null.
    """

    position: str
    id: str
    status: str
    created_at: str | None
    created_by: str | None
    seen: bool
    content_type: str | None
    content: str | None


class FeedView(BaseModel):
    items: list[FeedItem]
    next: str


CURSOR_PATTERN = re.compile(r"[0-9]{1,18}")
"""The cursor's form today: the decimal commit sequence. Clients keep it opaque; a later form (e.g. one
position per store shard) will contain a character outside the digits, so both forms can be told apart."""


class BadCursor(ValueError):
    """The cursor is not one this store hands out."""


def parse_cursor(cursor: str) -> int:
    if not CURSOR_PATTERN.fullmatch(cursor):
        raise BadCursor("cursor is not one this service handed out")
    return int(cursor)


def format_cursor(position: int) -> str:
    return str(position)


@dataclass(frozen=True, slots=True)
class Stored:
    """A notification as the store keeps it."""

    id: str
    created_ms: int
    created_by: str
    content_type: str
    content: bytes

    def view(self, *, seen: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": rfc3339(self.created_ms / 1000),
            "created_by": self.created_by,
            "seen": seen,
            "content_type": self.content_type,
            "content": base64.b64encode(self.content).decode("ascii"),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """An outgoing broker event: routing key and the serialized BrokerNotification."""

    routing_key: str
    body: bytes


def _event(users: list[str], notification: Notification) -> Event:
    message = BrokerNotification(user_ids=users, notification=notification)
    return Event(routing_key=ROUTING_BY_STATUS[notification.status], body=message.SerializeToString())


def new_event(stored: Stored, *, now_s: float) -> Event:
    """The NEW event of a create without its recipients: the store adds each shard's (`addressed`)."""
    return _event(
        [],
        Notification(
            id=stored.id,
            status=Notification.NEW,
            timestamp=to_timestamp(now_s),
            created_by=stored.created_by,
            seen=False,
            content_type=stored.content_type,
            content=stored.content,
        ),
    )


def addressed(body: bytes, users: list[str], *, shard: int, shards: int) -> bytes:
    """An event body of `new_event` for the recipients of one store shard, or, for a broadcast (no users), for
    the shard's audience. Serialised messages concatenate into their merge, so the body is not parsed again."""
    if users:
        return BrokerNotification(user_ids=users).SerializeToString() + body
    return body + BrokerNotification(audience_shard=shard, audience_shards=shards).SerializeToString()


def seen_event(notification_id: str, *, user: str, seen: bool, now_s: float) -> Event:
    return _event(
        [user],
        Notification(id=notification_id, status=Notification.UPDATED, timestamp=to_timestamp(now_s), seen=seen),
    )


def deleted_event(notification_id: str, *, user: str, now_s: float) -> Event:
    return _event([user], Notification(id=notification_id, status=Notification.DELETED, timestamp=to_timestamp(now_s)))

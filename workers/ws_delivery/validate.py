"""What a notification event must be before it reaches a device. Pure, no I/O.

Anybody who can publish on `notifier.notifications` reaches every device, so an event is judged as core
would have made it, and anything else is dead-lettered with the reason (DESIGN section 7):

- the body decodes as a `BrokerNotification` and is not larger than the largest event core makes;
- the notification is present, its id and every user id match the id pattern, its status is known;
- UPDATED and DELETED name their users (only NEW may be a broadcast, with no user ids);
- `created_by` (when set) is an id, `content_type` at most 255 characters, the content at most the
  content limit (`NOTIFIER_CONTENT_LIMIT_BYTES`, the one setting core and the puller read too).

A 0-byte body decodes as a NEW broadcast with an empty id: that is the case the checks exist for.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import MAX_SHARDS, is_valid_id
from workers.common.contract.wire import BrokerNotification, Notification

MAX_USERS = 10_000
"""core creates a notification for at most this many users."""
MAX_CONTENT_TYPE = 255
EVENT_OVERHEAD_BYTES = 4096
"""Room for the id, times, content type and framing beyond the content and the user ids."""
STATUSES = frozenset({Notification.NEW, Notification.UPDATED, Notification.DELETED})


class InvalidEvent(InvalidInput):
    """A notification event that must not reach a device; the message is the dead letter's reason."""


def max_event_bytes(content_limit: int) -> int:
    return content_limit + MAX_USERS * 131 + EVENT_OVERHEAD_BYTES


def notification_event(body: bytes, *, content_limit: int) -> BrokerNotification:
    """The decoded event, or InvalidEvent saying why it is refused."""
    if len(body) > max_event_bytes(content_limit):
        raise InvalidEvent(f"event of {len(body)} bytes is larger than any core makes")
    try:
        event = BrokerNotification.FromString(body)
    except DecodeError:
        raise InvalidEvent("undecodable BrokerNotification") from None
    if not event.HasField("notification"):
        raise InvalidEvent("no notification")
    notification = event.notification
    if not is_valid_id(notification.id):
        raise InvalidEvent("notification id does not match the id pattern")
    if notification.status not in STATUSES:
        raise InvalidEvent(f"unknown status {notification.status}")
    _check_users(event)
    if notification.HasField("created_by") and not is_valid_id(notification.created_by):
        raise InvalidEvent("created_by does not match the id pattern")
    if len(notification.content_type) > MAX_CONTENT_TYPE:
        raise InvalidEvent(f"content type over {MAX_CONTENT_TYPE} characters")
    if len(notification.content) > content_limit:
        raise InvalidEvent(f"content over {content_limit} bytes")
    return event


def _check_users(event: BrokerNotification) -> None:
    users = event.user_ids
    if len(users) > MAX_USERS:
        raise InvalidEvent(f"more than {MAX_USERS} user ids")
    if not users and event.notification.status != Notification.NEW:
        raise InvalidEvent("an UPDATED or DELETED event without user ids")
    if event.HasField("audience_shard") and not event.audience_shard < event.audience_shards <= MAX_SHARDS:
        raise InvalidEvent(f"audience shard {event.audience_shard} of {event.audience_shards} is out of range")
    for user in users:
        if not is_valid_id(user):
            raise InvalidEvent("a user id does not match the id pattern")

"""Building the WebSocketMessage frames sent to devices.

A frame is the per-connection head (message id, timestamp, network status) followed by the notification
serialised once per event: protobuf concatenation merges fields, so a broadcast encodes its notification
once, not once per device.
"""

from __future__ import annotations

from workers.common.wire import Notification, WebSocketMessage, to_timestamp

Status = WebSocketMessage.NetworkStatus
OK = WebSocketMessage.OK
ERROR = WebSocketMessage.ERROR


def notification_part(notification: Notification) -> bytes:
    return WebSocketMessage(notification=notification).SerializeToString()


def frame(message_id: str, *, now_s: float, status: Status = OK, part: bytes = b"") -> bytes:
    head = WebSocketMessage(message_id=message_id, message_timestamp=to_timestamp(now_s), network_status=status)
    return head.SerializeToString() + part


def timestamp_ns(notification: Notification) -> int:
    return notification.timestamp.seconds * 1_000_000_000 + notification.timestamp.nanos

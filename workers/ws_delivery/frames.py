"""Building the WebSocketMessage frames sent to devices, cheaply enough for a broadcast to 10k devices.

A message is the per-connection message id, then the parts shared by every device of one event (the
timestamp, the network status, the notification), each serialised once: protobuf concatenation merges
fields. The WebSocket frame header of a server frame (never masked) is written here too.
"""

from __future__ import annotations

from workers.common.contract.wire import Notification, WebSocketMessage, to_timestamp

Status = WebSocketMessage.NetworkStatus
OK = WebSocketMessage.OK
ERROR = WebSocketMessage.ERROR

_MESSAGE_ID_TAG = b"\x0a"  # field 1, length-delimited
_BINARY_FIN = 0x82
PING = bytes((0x89, 0))
"""An empty ping frame, as the server sends it (unmasked); the device's pong is read by the protocol."""


def notification_part(notification: Notification) -> bytes:
    return WebSocketMessage(notification=notification).SerializeToString()


def shared_part(*, now_s: float, status: Status = OK, notification: bytes = b"") -> bytes:
    """Everything of a message but its id: the timestamp, a non-default status, the notification part."""
    return (
        WebSocketMessage(message_timestamp=to_timestamp(now_s), network_status=status).SerializeToString()
        + notification
    )


def message(message_id: str, shared: bytes) -> bytes:
    encoded = message_id.encode()
    return _MESSAGE_ID_TAG + _varint(len(encoded)) + encoded + shared


def binary_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((_BINARY_FIN, size)) + payload
    if size < 1 << 16:
        return bytes((_BINARY_FIN, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_BINARY_FIN, 127)) + size.to_bytes(8, "big") + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def timestamp_ns(notification: Notification) -> int:
    return notification.timestamp.seconds * 1_000_000_000 + notification.timestamp.nanos

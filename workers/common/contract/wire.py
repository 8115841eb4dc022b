"""The protobuf messages of DESIGN section 8 (generated from proto/ by `make proto`) and time helpers."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from workers.common.contract.pb.notifier.v1.notifier_pb2 import (
    BrokerConfirmation,
    BrokerNotification,
    Notification,
    ReviewEvent,
    WebSocketConfirmation,
    WebSocketMessage,
)

__all__ = [
    "BrokerConfirmation",
    "BrokerNotification",
    "Notification",
    "ReviewEvent",
    "Timestamp",
    "WebSocketConfirmation",
    "WebSocketMessage",
    "from_timestamp",
    "to_timestamp",
]


def to_timestamp(unix_s: float) -> Timestamp:
    seconds = int(unix_s // 1)
    return Timestamp(seconds=seconds, nanos=round((unix_s - seconds) * 1e9) % 1_000_000_000)


def from_timestamp(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


DIGEST_CONTENT_TYPE = "application/vnd.notifier.review-digest+json"
"""Content type of the digest notifications the puller creates in core (DESIGN section 13, "Digests")."""

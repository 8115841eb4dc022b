"""WebSocket close codes of the device protocol (DESIGN section 13), each declared once with its reason and
its metric label; ws_delivery closes with them and the reference client reads them.

Reconnect rules for a device: ADMIN (4003) means do not reconnect; every other close means reconnect with
backoff and read the feed after the last cursor.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str
    label: str
    """The `reason` label of `notifier_ws_closes_total`."""


UNRESPONSIVE = Close(4000, "unresponsive: messages not acknowledged", "unresponsive")
HEARTBEAT = Close(4001, "heartbeat timeout: 2 pings unanswered", "heartbeat")
LAGGED = Close(4002, "lagged: send buffer full", "lagged")
ADMIN = Close(4003, "closed by an admin", "admin")
SHUTDOWN = Close(1001, "server shutting down", "shutdown")
TEXT_FRAME = Close(1003, "text frames are not accepted", "text_frame")
BAD_PROTOBUF = Close(1007, "undecodable WebSocketConfirmation", "bad_protobuf")

BY_DEVICE = "client"
"""The label of a close the device started."""
LOST = "lost"
"""The label of a connection that ended without a closing handshake."""
LABELS = (
    BY_DEVICE,
    LOST,
    *(c.label for c in (UNRESPONSIVE, HEARTBEAT, LAGGED, TEXT_FRAME, BAD_PROTOBUF, ADMIN, SHUTDOWN)),
)

"""Resend bookkeeping of one device connection: what is unacknowledged, and what is due again.

Every message is sent once and then resent every `interval_s` up to `retry_limit` times; when the
last resend stays unanswered for one more interval the device is unresponsive. Entries are kept in
order of their due time (a resend moves an entry to the end), so finding what is due reads only the
front.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

EARLY_S = 0.001
"""Timers may fire this much before their time; an entry due that soon counts as due."""


@dataclass(slots=True)
class Pending:
    message_id: str
    frame: bytes
    confirm_id: str
    """Notification id to confirm to core when acknowledged (a NEW notification), else empty."""
    first_sent: float
    due: float
    sends: int = 1


@dataclass(slots=True)
class Due:
    resend: list[Pending] = field(default_factory=list)
    unresponsive: bool = False


class Outbox:
    def __init__(self, *, interval_s: float, retry_limit: int) -> None:
        self._interval_s = interval_s
        self._retry_limit = retry_limit
        self._pending: OrderedDict[str, Pending] = OrderedDict()

    def track(self, *, message_id: str, frame: bytes, confirm_id: str, now: float) -> None:
        self._pending[message_id] = Pending(message_id, frame, confirm_id, now, now + self._interval_s)

    def ack(self, message_id: str) -> Pending | None:
        """The acknowledged entry, or None when unknown or already acknowledged."""
        return self._pending.pop(message_id, None)

    def next_due(self) -> float | None:
        for entry in self._pending.values():
            return entry.due
        return None

    def collect_due(self, now: float) -> Due:
        """Entries to resend now (already rescheduled), or `unresponsive` when one ran out of resends."""
        due = Due()
        while self._pending:
            entry = next(iter(self._pending.values()))
            if entry.due > now + EARLY_S:
                break
            if entry.sends > self._retry_limit:
                due.unresponsive = True
                return due
            entry.sends += 1
            entry.due = now + self._interval_s
            self._pending.move_to_end(entry.message_id)
            due.resend.append(entry)
        return due

    def __len__(self) -> int:
        return len(self._pending)

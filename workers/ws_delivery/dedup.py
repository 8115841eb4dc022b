"""Deduplication of notification events per (user, notification id, status), in bounded memory.

An event goes out only when its timestamp is newer than the newest one already delivered for its
triple: broker redeliveries and stale reorderings are dropped, while an UPDATED and a DELETED of the
same notification are different triples and both go out. The least recently used triples are
forgotten beyond `capacity`.
"""

from __future__ import annotations

from collections import OrderedDict

BROADCAST = "*"
"""The user part of a broadcast event's triple: a broadcast carries one timestamp for everyone."""

Triple = tuple[str, str, int]


class Deduplicator:
    def __init__(self, *, capacity: int) -> None:
        self._capacity = capacity
        self._newest: OrderedDict[Triple, int] = OrderedDict()

    def admit(self, user: str, notification_id: str, status: int, *, timestamp_ns: int) -> bool:
        """True (and remembered) when the event is newer than anything delivered for its triple."""
        key = (user, notification_id, status)
        newest = self._newest.get(key)
        if newest is not None and timestamp_ns <= newest:
            self._newest.move_to_end(key)
            return False
        self._newest[key] = timestamp_ns
        self._newest.move_to_end(key)
        while len(self._newest) > self._capacity:
            self._newest.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._newest)

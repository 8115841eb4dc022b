"""Fan-out without I/O: review events -> the entries each user of the brand receives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.common.contract.entries import KINDS, Entry, make_entry
from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import DEFAULT_SHARDS, shard_of
from workers.common.contract.stream import Mapping

if TYPE_CHECKING:  # the commands that write entries without events need not load protobuf
    from workers.common.contract.wire import ReviewEvent


@dataclass
class FanOut:
    """Entries per user for one batch, plus what could not be placed."""

    by_user: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    entries: int = 0
    shards: int = DEFAULT_SHARDS
    """The stream's shard count (`pushed` is per shard)."""
    events: int = 0
    unknown_brands: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pushed: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Per bus shard, the keys of the events added with one that have users there (marked in Redis after
    their entries)."""

    def add(self, entry: Entry, users: Sequence[str], *, key: str | None = None) -> None:
        encoded = entry.encode()
        by_user = self.by_user
        for user in users:
            by_user[user].append(encoded)
        self.entries += len(users)
        self.events += 1
        if key is not None:
            for shard in {shard_of(user, self.shards) for user in users}:
                self.pushed[shard].append(key)


def event_key(event: ReviewEvent) -> str:
    """What identifies a review event across redeliveries: brand, review, kind and occurrence (as sent)."""
    occurred_ms = event.occurred_at.seconds * 1000 + event.occurred_at.nanos // 1_000_000
    return f"{event.brand_id}|{event.review_id}|{event.kind}|{occurred_ms}"


OCCURRED_MAX_AGE_S = 365 * 86_400
"""A review event may report a change up to a year old (a replayed backlog), not older."""
OCCURRED_MAX_AHEAD_S = 3600
"""... and up to an hour in the future (clocks of other systems), not more."""


def entry_of(event: ReviewEvent, *, now_ms: int) -> Entry:
    """The entry for a decoded event; InvalidInput when its ids, kind or `occurred_at` are unusable.

    `occurred_at` is required and must lie within [now - 1 year, now + 1 hour]: without it an event was
    stored as of 1970, and year 1 or 9999 would sort it out of every digest window.
    """
    review = event.review_id[:80]
    if event.kind not in range(len(KINDS)):
        raise InvalidInput(f"review {review!r} has unknown kind {event.kind}")
    if not event.HasField("occurred_at"):
        raise InvalidInput(f"review {review!r} has no occurred_at")
    occurred_ms = event.occurred_at.seconds * 1000 + event.occurred_at.nanos // 1_000_000
    if not now_ms - OCCURRED_MAX_AGE_S * 1000 <= occurred_ms <= now_ms + OCCURRED_MAX_AHEAD_S * 1000:
        raise InvalidInput(f"review {review!r} occurred_at {event.occurred_at.seconds} s is out of range")
    return make_entry(
        brand=event.brand_id,
        review=event.review_id,
        kind=KINDS[event.kind],
        pushed_ms=now_ms,
        occurred_ms=occurred_ms,
    )


def fan_out(entries: Iterable[Entry], *, mapping: Mapping, into: FanOut | None = None) -> FanOut:
    result = into if into is not None else FanOut()
    for entry in entries:
        users = mapping.brand_users.get(entry.brand)
        if users is None:
            result.unknown_brands[entry.brand] += 1
            continue
        result.add(entry, users)
    return result

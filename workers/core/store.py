"""The notification store in Redis: every operation is one Lua script (see `scripts`), so a state change
and its outbox event commit together.

The client is opened without response decoding (content is binary); replies are converted here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from workers.common.contract.keys import StoreKeys
from workers.core import scripts
from workers.core.batching import ScriptBatcher
from workers.core.model import Event, Stored

FeedStatus = Literal["NEW", "UPDATED", "DELETED"]
_FEED_STATUS: dict[bytes, FeedStatus] = {b"N": "NEW", b"U": "UPDATED", b"D": "DELETED"}
DEFAULT_FEED_LIMIT = 100
Outcome = Literal["delivered", "already_delivered", "not_recipient", "expired", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("delivered", "already_delivered", "not_recipient", "expired", "unknown")

DEFAULT_FETCH_LIMIT = 1000


class Duplicate(Exception):
    """The producer already created a notification with this producer_notification_id."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(existing_id)
        self.existing_id = existing_id


class FutureCursor(Exception):
    """The cursor is ahead of every position the store has handed out (forged or from another store)."""


class ExpiredCursor(Exception):
    """The cursor is older than the feed's retention: changes after it may be gone, the device must resync."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A notification's latest change for one user: its position, status and, unless deleted, its content."""

    position: int
    status: FeedStatus
    seen: bool
    id: str
    stored: Stored | None


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[FeedEntry]
    next: int
    """The position to read after next time: the last entry's, or the store's sequence when the page ran out."""
    delivered: int = 0
    """NEW entries this read delivered to the user (no device had confirmed or taken them yet)."""


@dataclass(frozen=True, slots=True)
class Listed:
    stored: Stored
    seen: bool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stored(notification_id: Any, at: Any, by: Any, ct: Any, content: Any) -> Stored:
    return Stored(
        id=_text(notification_id),
        created_ms=int(at),
        created_by=_text(by),
        content_type=_text(ct),
        content=bytes(content),
    )


def _feed_entry(row: Sequence[Any]) -> FeedEntry:
    position, notification_id, letter, seen, at, by, ct, content = row
    status = _FEED_STATUS[bytes(letter)]
    stored = None if status == "DELETED" else _stored(notification_id, at, by, ct, content)
    return FeedEntry(
        position=int(position), status=status, seen=bool(int(seen)), id=_text(notification_id), stored=stored
    )


class Store:
    def __init__(
        self, redis: aioredis.Redis, *, stream: str, retention_s: float, feed_retention_s: float = 30 * 86_400.0
    ) -> None:
        self.redis = redis
        self.keys = StoreKeys(stream)
        self.retention_s = retention_s
        self.feed_retention_s = feed_retention_s
        self._notification_prefix = self.keys.notification("")
        self._user_prefix = self.keys.user_prefix
        self._create = redis.register_script(scripts.CREATE)
        self._fetch = redis.register_script(scripts.FETCH)
        self._feed = redis.register_script(scripts.FEED)
        self._confirm = redis.register_script(scripts.CONFIRM)
        self._seen = redis.register_script(scripts.SEEN)
        self._delete = redis.register_script(scripts.DELETE)
        self._read = redis.register_script(scripts.READ)
        self._read_one = redis.register_script(scripts.READ_ONE)
        self._invalidate_at = redis.register_script(scripts.INVALIDATE_AT)
        self._purge = redis.register_script(scripts.PURGE)
        self._batcher = ScriptBatcher(redis)

    def _delivery_keys(self, user: str) -> list[str]:
        """The keys a delivery to `user` changes (the order the fetch and confirm scripts expect)."""
        k = self.keys
        return [k.undelivered(user), k.delivered(user), k.unseen(user), k.broadcast_mark(user), k.broadcast_done(user)]

    def _feed_change_keys(self, user: str) -> list[str]:
        """The keys a seen or delete change adds to the user's feed with (the order both scripts expect)."""
        k = self.keys
        return [k.feed(user), k.seq, k.feed_floor, k.waiting]

    async def create(
        self,
        stored: Stored,
        *,
        producer_notification_id: str,
        users: Sequence[str],
        invalidate_at: float | None,
        event: Event,
    ) -> None:
        """Store a notification for `users` (a broadcast when empty); Duplicate when the pair is known."""
        k = self.keys
        keys = [
            k.producer_ids(stored.created_by),
            k.notification(stored.id),
            k.seq,
            k.outbox,
            k.broadcasts,
            k.expiry,
            k.feed_floor,
            k.waiting,
            *(key for user in users for key in (k.undelivered(user), k.feed(user))),
        ]
        meta = {
            "pnid": producer_notification_id,
            "id": stored.id,
            "by": stored.created_by,
            "at": str(stored.created_ms),
            "ct": stored.content_type,
            "exp": "" if invalidate_at is None else repr(invalidate_at),
            "to": " ".join(users),
            "rk": event.routing_key,
            "wake": k.wake,
            "now": time.time(),
        }
        args = [json.dumps(meta), stored.content, event.body]
        created, notification_id = await self._batcher.call(self._create, keys=keys, args=args)
        if not int(created):
            raise Duplicate(_text(notification_id))

    async def take_undelivered(
        self, user: str, *, wait_until: float = 0.0, limit: int = DEFAULT_FETCH_LIMIT
    ) -> list[Stored]:
        """The user's undelivered, unexpired notifications, oldest first, now marked delivered for the user.

        With none and `wait_until` (unix time) ahead, the user is marked waiting until then: creates for
        the user from then on publish a wake-up.
        """
        keys = [*self._delivery_keys(user), self.keys.broadcasts, self.keys.garbage, self.keys.waiting]
        now = time.time()
        args = [now, self._notification_prefix, limit, now + self.retention_s, user, wait_until]
        reply = await self._batcher.call(self._fetch, keys=keys, args=args)
        rows = [(int(reply[i]), _stored(*reply[i + 1 : i + 6])) for i in range(0, len(reply), 6)]
        rows.sort(key=lambda row: row[0])
        return [stored for _, stored in rows]

    async def feed(
        self, user: str, *, after: int | None, limit: int = DEFAULT_FEED_LIMIT, wait_until: float = 0.0
    ) -> FeedPage:
        """The user's changes after position `after` (None: from the oldest kept), oldest first.

        NEW entries handed out are delivered to the user, as a device's confirmation would. With none and
        `wait_until` (unix time) ahead, the user is marked waiting until then. FutureCursor or
        ExpiredCursor when `after` is out of the kept range.
        """
        k = self.keys
        keys = [
            k.feed(user),
            k.broadcasts,
            k.seq,
            k.feed_floor,
            k.waiting,
            *self._delivery_keys(user),
            k.seen(user),
        ]
        args = ["" if after is None else after, limit, time.time(), self._notification_prefix, user, wait_until]
        reply = await self._batcher.call(self._feed, keys=keys, args=args)
        verdict, position = _text(reply[0]), int(reply[1])
        if verdict == "future":
            raise FutureCursor(position)
        if verdict == "expired":
            raise ExpiredCursor(position)
        entries = [_feed_entry(reply[i : i + 8]) for i in range(3, len(reply), 8)]
        return FeedPage(entries=entries, next=position, delivered=int(reply[2]))

    async def confirm(self, user: str, notification_id: str) -> Outcome:
        """Mark a notification delivered for `user` when the user is a recipient still waiting for it."""
        keys = [*self._delivery_keys(user), self.keys.notification(notification_id)]
        outcome = _text(await self._batcher.call(self._confirm, keys=keys, args=[notification_id, user, time.time()]))
        if outcome not in OUTCOMES:
            raise RuntimeError(f"unexpected confirmation outcome {outcome!r}")
        return outcome

    async def set_seen(self, user: str, notification_id: str, *, seen: bool, event: Event) -> bool:
        k = self.keys
        keys = [k.delivered(user), k.seen(user), k.unseen(user), k.outbox, *self._feed_change_keys(user)]
        args = [notification_id, "1" if seen else "", event.routing_key, event.body, k.wake, user, time.time()]
        return bool(int(await self._batcher.call(self._seen, keys=keys, args=args)))

    async def delete(self, user: str, notification_id: str, *, event: Event) -> bool:
        k = self.keys
        keys = [
            k.delivered(user),
            k.seen(user),
            k.unseen(user),
            k.outbox,
            k.notification(notification_id),
            k.garbage,
            *self._feed_change_keys(user),
        ]
        now = time.time()
        args = [notification_id, event.routing_key, event.body, now + self.retention_s, k.wake, user, now]
        return bool(int(await self._batcher.call(self._delete, keys=keys, args=args)))

    async def delivered(self, user: str, *, offset: int, count: int, seen: bool | None) -> list[Listed]:
        """One page of the user's delivered, not deleted notifications, newest first."""
        k = self.keys
        index = k.delivered(user) if seen is None else (k.seen(user) if seen else k.unseen(user))
        args = [self._notification_prefix, offset, offset + count - 1, "1"]
        reply = await self._batcher.call(self._read, keys=[index, k.seen(user)], args=args)
        return [
            Listed(stored=_stored(reply[i], *reply[i + 2 : i + 6]), seen=bool(int(reply[i + 1])))
            for i in range(0, len(reply), 6)
        ]

    async def delivered_one(self, user: str, notification_id: str) -> Listed | None:
        k = self.keys
        keys = [k.delivered(user), k.seen(user), k.notification(notification_id)]
        reply = await self._batcher.call(self._read_one, keys=keys, args=[notification_id])
        if not reply:
            return None
        return Listed(stored=_stored(notification_id, *reply[1:5]), seen=bool(int(reply[0])))

    async def set_invalidate_at(self, producer: str, notification_id: str, *, invalidate_at: float | None) -> bool:
        """Change the expiry of a producer's own unexpired notification; False when there is none."""
        k = self.keys
        args = [notification_id, producer, "" if invalidate_at is None else repr(invalidate_at), time.time()]
        return bool(
            int(
                await self._batcher.call(
                    self._invalidate_at, keys=[k.notification(notification_id), k.expiry], args=args
                )
            )
        )

    async def purge(self, *, limit: int) -> int:
        """Drop expired notifications from undelivered indexes, delete unreferenced ones and move the feed floor
        past the feed retention; returns deletions."""
        k = self.keys
        args = [
            time.time(),
            self.retention_s,
            limit,
            self._notification_prefix,
            self._user_prefix,
            self.feed_retention_s,
        ]
        keys = [k.expiry, k.garbage, k.broadcasts, k.waiting, k.seq, k.feed_marks, k.feed_floor]
        return int(await self._purge(keys=keys, args=args))

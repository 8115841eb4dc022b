"""The notification store in Redis: every operation is one Lua script (see `scripts`), so a state change
and its outbox event commit together.

The client is opened without response decoding (content is binary); replies are converted here.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from workers.common.contract.keys import DEFAULT_SHARDS, StoreKeys
from workers.common.runtime.scripts import run_scripts_or_raise
from workers.core import scripts
from workers.core.batching import ScriptBatcher
from workers.core.model import Event, Stored, addressed

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
class Purged:
    deleted: int
    """Notifications deleted."""
    recovered: int
    """Unfinished creates finished."""
    shards: int
    """Shards this replica held the lease of."""


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


RECOVER_AFTER_S = 10.0
"""A create spanning shards still unfinished after this long is taken for abandoned (its request's process
died) and finished by the purger of its home shard. Finishing one twice is harmless: each shard applies a
create once."""

_LEASE_INTERVALS = 3
"""A purger's lease on a shard lasts this many purge intervals: renewed by every run, it runs out soon after
its replica stops."""


class Store:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        retention_s: float,
        feed_retention_s: float = 30 * 86_400.0,
        shards: int = DEFAULT_SHARDS,
        replica: str = "",
    ) -> None:
        self.redis = redis
        self.keys = StoreKeys(stream, shards)
        self.retention_s = retention_s
        self.feed_retention_s = feed_retention_s
        self.replica = replica or secrets.token_hex(6)
        """This process's name on the purger leases."""
        self._create = redis.register_script(scripts.CREATE)
        self._register = redis.register_script(scripts.REGISTER)
        self._apply = redis.register_script(scripts.APPLY)
        self._done = redis.register_script(scripts.DONE)
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
        self.written = asyncio.Event()
        """Set whenever this store wrote an outbox event: the relay of the process reads at once."""

    def _notification_prefix(self, user: str) -> str:
        return self.keys.notification(self.keys.shard_of(user), "")

    def _delivery_keys(self, user: str) -> list[str]:
        """The keys a delivery to `user` changes (the order the fetch and confirm scripts expect)."""
        k = self.keys
        return [k.undelivered(user), k.delivered(user), k.unseen(user), k.broadcast_mark(user), k.broadcast_done(user)]

    def _feed_change_keys(self, user: str) -> list[str]:
        """The keys a seen or delete change adds to the user's feed with (the order both scripts expect)."""
        k, shard = self.keys, self.keys.shard_of(user)
        return [k.feed(user), k.seq(shard), k.feed_floor(shard), k.waiting(shard)]

    def _parts(self, users: Sequence[str]) -> dict[int, list[str]]:
        """The recipients of a create by shard; every shard, with none, for a broadcast."""
        if not users:
            return {shard: [] for shard in self.keys.shards}
        return self.keys.by_shard(users)

    def _apply_call(
        self, notification_id: str, meta: dict[str, Any], content: bytes, body: bytes, shard: int, users: list[str]
    ) -> tuple[list[str], list[Any]]:
        """Keys and arguments of one shard's part of a create (the `apply` of scripts.CREATE and APPLY)."""
        k = self.keys
        keys = [
            k.notification(shard, notification_id),
            k.seq(shard),
            k.outbox(shard),
            k.broadcasts(shard),
            k.expiry(shard),
            k.feed_floor(shard),
            k.waiting(shard),
            *(key for user in users for key in (k.undelivered(user), k.feed(user))),
        ]
        shard_meta = {**meta, "to": " ".join(users), "now": time.time()}
        event = addressed(body, users, shard=shard, shards=k.shard_count)
        return keys, [json.dumps(shard_meta), content, event]

    async def create(
        self,
        stored: Stored,
        *,
        producer_notification_id: str,
        users: Sequence[str],
        invalidate_at: float | None,
        event: Event,
    ) -> None:
        """Store a notification for `users` (a broadcast when empty); Duplicate when the pair is known.

        The producer's id is registered in its home shard. Recipients all in that shard: one script does the
        whole create. Else (docs/design.md section 5) the home shard registers it with a create record, every
        shard with recipients applies its part, and the record goes; a create that stopped between the steps
        is finished by the next request with the same id or by the home shard's purger.
        """
        k = self.keys
        home = k.home_of(stored.created_by, producer_notification_id)
        meta = {
            "id": stored.id,
            "by": stored.created_by,
            "at": str(stored.created_ms),
            "ct": stored.content_type,
            "exp": "" if invalidate_at is None else repr(invalidate_at),
            "bc": "" if users else "1",
            "rk": event.routing_key,
            "wake": k.wake,
        }
        parts = self._parts(users)
        if parts.keys() == {home}:
            keys, args = self._apply_call(stored.id, meta, stored.content, event.body, home, parts[home])
            reply = await self._batcher.call(
                self._create,
                keys=[k.producer_ids(home, stored.created_by), *keys],
                args=[producer_notification_id, *args],
            )
            if not int(reply[0]):
                raise Duplicate(_text(reply[1]))
            self.written.set()
            return
        record = {**meta, "to": " ".join(users)}
        reply = await self._batcher.call(
            self._register,
            keys=[
                k.producer_ids(home, stored.created_by),
                k.create_record(home, stored.id),
                k.creating(home),
            ],
            args=[producer_notification_id, stored.id, json.dumps(record), stored.content, event.body, time.time()],
        )
        if not int(reply[0]):
            existing = _text(reply[1])
            if int(reply[2]):
                await self._finish(home, existing)
            raise Duplicate(existing)
        await self._apply_parts(stored.id, meta, stored.content, event.body, parts)
        await self._batcher.call(
            self._done, keys=[k.creating(home), k.create_record(home, stored.id)], args=[stored.id]
        )

    async def _apply_parts(
        self, notification_id: str, meta: dict[str, Any], content: bytes, body: bytes, parts: dict[int, list[str]]
    ) -> None:
        calls = [self._apply_call(notification_id, meta, content, body, shard, users) for shard, users in parts.items()]
        await asyncio.gather(*(self._batcher.call(self._apply, keys=keys, args=args) for keys, args in calls))
        self.written.set()

    async def _finish(self, home: int, notification_id: str) -> bool:
        """Apply an unfinished create of `home` in every shard that may miss it, then drop its record; False
        when it was finished meanwhile."""
        k = self.keys
        record = await self.redis.hgetall(k.create_record(home, notification_id))
        if record:
            meta = json.loads(record[b"m"])
            users = _text(meta.pop("to")).split()
            await self._apply_parts(notification_id, meta, bytes(record[b"c"]), bytes(record[b"b"]), self._parts(users))
        finished = await self._batcher.call(
            self._done, keys=[k.creating(home), k.create_record(home, notification_id)], args=[notification_id]
        )
        return bool(record) and bool(int(finished))

    async def take_undelivered(
        self, user: str, *, wait_until: float = 0.0, limit: int = DEFAULT_FETCH_LIMIT
    ) -> list[Stored]:
        """The user's undelivered, unexpired notifications, oldest first, now marked delivered for the user.

        With none and `wait_until` (unix time) ahead, the user is marked waiting until then: creates for
        the user from then on publish a wake-up.
        """
        k, shard = self.keys, self.keys.shard_of(user)
        keys = [*self._delivery_keys(user), k.broadcasts(shard), k.garbage(shard), k.waiting(shard)]
        now = time.time()
        args = [now, self._notification_prefix(user), limit, now + self.retention_s, user, wait_until]
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
        k, shard = self.keys, self.keys.shard_of(user)
        keys = [
            k.feed(user),
            k.broadcasts(shard),
            k.seq(shard),
            k.feed_floor(shard),
            k.waiting(shard),
            *self._delivery_keys(user),
            k.seen(user),
        ]
        args = ["" if after is None else after, limit, time.time(), self._notification_prefix(user), user, wait_until]
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
        keys = [*self._delivery_keys(user), self.keys.notification(self.keys.shard_of(user), notification_id)]
        outcome = _text(await self._batcher.call(self._confirm, keys=keys, args=[notification_id, user, time.time()]))
        if outcome not in OUTCOMES:
            raise RuntimeError(f"unexpected confirmation outcome {outcome!r}")
        return outcome

    async def set_seen(self, user: str, notification_id: str, *, seen: bool, event: Event) -> bool:
        k = self.keys
        keys = [
            k.delivered(user),
            k.seen(user),
            k.unseen(user),
            k.outbox(k.shard_of(user)),
            *self._feed_change_keys(user),
        ]
        args = [notification_id, "1" if seen else "", event.routing_key, event.body, k.wake, user, time.time()]
        changed = bool(int(await self._batcher.call(self._seen, keys=keys, args=args)))
        self.written.set()
        return changed

    async def delete(self, user: str, notification_id: str, *, event: Event) -> bool:
        k, shard = self.keys, self.keys.shard_of(user)
        keys = [
            k.delivered(user),
            k.seen(user),
            k.unseen(user),
            k.outbox(shard),
            k.notification(shard, notification_id),
            k.garbage(shard),
            *self._feed_change_keys(user),
        ]
        now = time.time()
        args = [notification_id, event.routing_key, event.body, now + self.retention_s, k.wake, user, now]
        deleted = bool(int(await self._batcher.call(self._delete, keys=keys, args=args)))
        self.written.set()
        return deleted

    async def delivered(self, user: str, *, offset: int, count: int, seen: bool | None) -> list[Listed]:
        """One page of the user's delivered, not deleted notifications, newest first."""
        k = self.keys
        index = k.delivered(user) if seen is None else (k.seen(user) if seen else k.unseen(user))
        args = [self._notification_prefix(user), offset, offset + count - 1, "1"]
        reply = await self._batcher.call(self._read, keys=[index, k.seen(user)], args=args)
        return [
            Listed(stored=_stored(reply[i], *reply[i + 2 : i + 6]), seen=bool(int(reply[i + 1])))
            for i in range(0, len(reply), 6)
        ]

    async def delivered_one(self, user: str, notification_id: str) -> Listed | None:
        k = self.keys
        keys = [k.delivered(user), k.seen(user), k.notification(k.shard_of(user), notification_id)]
        reply = await self._batcher.call(self._read_one, keys=keys, args=[notification_id])
        if not reply:
            return None
        return Listed(stored=_stored(notification_id, *reply[1:5]), seen=bool(int(reply[0])))

    async def set_invalidate_at(self, producer: str, notification_id: str, *, invalidate_at: float | None) -> bool:
        """Change the expiry of a producer's own unexpired notification in every shard that keeps it; False when
        there is none. The id does not tell the shards, so every shard is asked (one round trip per node)."""
        k = self.keys
        args = [notification_id, producer, "" if invalidate_at is None else repr(invalidate_at), time.time()]
        changed = await asyncio.gather(
            *(
                self._batcher.call(
                    self._invalidate_at, keys=[k.notification(shard, notification_id), k.expiry(shard)], args=args
                )
                for shard in k.shards
            )
        )
        return any(int(one) for one in changed)

    async def purge(
        self,
        *,
        limit: int,
        interval_s: float,
        shards: Iterable[int] | None = None,
        recover_after_s: float = RECOVER_AFTER_S,
    ) -> Purged:
        """In each of `shards` (every shard by default) whose lease this replica holds or takes: drop expired
        notifications from undelivered indexes, delete unreferenced ones, move the feed floor past the feed
        retention, and finish the creates of the shard left unfinished for `recover_after_s`."""
        k = self.keys
        now = time.time()
        lease_ms = int(interval_s * _LEASE_INTERVALS * 1000)
        chosen = list(k.shards if shards is None else shards)
        calls = [
            (
                self._purge,
                [
                    k.expiry(shard),
                    k.garbage(shard),
                    k.broadcasts(shard),
                    k.waiting(shard),
                    k.seq(shard),
                    k.feed_marks(shard),
                    k.feed_floor(shard),
                    k.purger(shard),
                ],
                [
                    now,
                    self.retention_s,
                    limit,
                    k.notification(shard, ""),
                    k.user_prefix(shard),
                    self.feed_retention_s,
                    self.replica,
                    lease_ms,
                ],
            )
            for shard in chosen
        ]
        results = await run_scripts_or_raise(self.redis, calls)
        held = [shard for shard, deleted in zip(chosen, results, strict=True) if int(deleted) >= 0]
        deleted = sum(int(one) for one in results if int(one) > 0)
        recovered = 0
        for shard in held:
            stale = await self.redis.zrangebyscore(k.creating(shard), "-inf", now - recover_after_s, start=0, num=limit)
            for notification_id in stale:
                recovered += await self._finish(shard, _text(notification_id))
        return Purged(deleted=deleted, recovered=recovered, shards=len(held))

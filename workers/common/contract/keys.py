"""Every Redis key of Notifier, declared once.

All keys start with `nf:<stream>:`. The review bus groups users into `BUS_SHARDS` shards (`shard_of`): a
user's keys and the indexes of its shard (`due`, `pending_since`, `pushed`) carry the shard's hash tag
`{<stream>.<shard>}`, so one Lua script serves a whole batch of users of one shard, on a single Redis and on
Redis Cluster alike, and no index is one hot key. The store's keys carry the stream's store tag
`{<stream>.core}`. Sorted-set scores are unix seconds.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
"""User, brand and review ids: 1-128 characters of `[A-Za-z0-9._:@-]` (DESIGN section 6)."""

_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


STREAM_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A stream name: a DNS label (it is a NotificationStream's metadata.name and part of every key)."""


def is_valid_stream(name: str) -> bool:
    return re.fullmatch(STREAM_PATTERN, name) is not None


BUS_SHARDS = 16
"""Shards of one stream's review bus. Every room derives a user's shard from this number, so it is part of
the key layout: changing it is a data migration (drain the bus first), not a setting."""


def shard_of(user: str) -> int:
    """The bus shard of `user`: CRC-32 of the id, the same in every process and every release."""
    return zlib.crc32(user.encode()) % BUS_SHARDS


@dataclass(frozen=True, slots=True)
class BusKeys:
    """The review bus of one stream: per-user pending lists, their indexes, the mapping and settings."""

    stream: str

    @property
    def prefix(self) -> str:
        return f"nf:{self.stream}:"

    @property
    def shards(self) -> range:
        return range(BUS_SHARDS)

    def tag(self, shard: int) -> str:
        """The hash tag of one shard: its users' keys and its indexes live in one Redis Cluster slot."""
        return f"{{{self.stream}.{shard}}}"

    def user_prefix(self, shard: int) -> str:
        """The start of every per-user key of `shard`; scripts append `<user>:pending` and the like."""
        return f"nf:{self.stream}:u:{self.tag(shard)}:"

    def pending(self, user: str) -> str:
        """List of review entries waiting for the user's next digest (RPUSH by pushers, LPOP by pullers)."""
        return f"{self.user_prefix(shard_of(user))}{user}:pending"

    def inflight(self, user: str) -> str:
        """Hash: the batch a puller claimed but has not handed on yet (digest id, lease, entries)."""
        return f"{self.user_prefix(shard_of(user))}{user}:inflight"

    def last_pulled_at(self, user: str) -> str:
        """String: unix time of the user's last pull."""
        return f"{self.user_prefix(shard_of(user))}{user}:last_pulled_at"

    def user_keys(self, user: str) -> tuple[str, str, str]:
        return (self.pending(user), self.inflight(user), self.last_pulled_at(user))

    def due(self, shard: int) -> str:
        """Zset user -> time the user's digest window closes (or a claimed user's lease runs out)."""
        return f"nf:{self.stream}:b:{self.tag(shard)}:due"

    def pending_since(self, shard: int) -> str:
        """Zset user -> time of the user's oldest unpulled entry; the monitor reads these, never SCAN."""
        return f"nf:{self.stream}:b:{self.tag(shard)}:pending_since"

    def pushed(self, shard: int) -> str:
        """Zset event key -> push time (ms) of each review event whose entries for this shard's users were
        written lately; redeliveries check it."""
        return f"nf:{self.stream}:b:{self.tag(shard)}:pushed"

    @property
    def wake(self) -> str:
        """Pub/sub channel: a pusher made users due; idle pullers look at once instead of at their next poll."""
        return f"nf:{self.stream}:bus:wake"

    @property
    def map_current(self) -> str:
        """String: the version id of the mapping in force (flipped last, so readers see whole versions)."""
        return f"nf:{self.stream}:map:current"

    def map_version(self, version: str) -> str:
        """Hash of one mapping version: `brand:<id>` -> users, `user:<id>` -> brands, `meta` (JSON values)."""
        return f"nf:{self.stream}:map:v:{version}"

    @property
    def map_versions(self) -> str:
        """Zset version id -> time it was superseded, so old versions are deleted after a grace period."""
        return f"nf:{self.stream}:map:versions"

    @property
    def settings(self) -> str:
        """Hash of stream settings from the NotificationStream spec."""
        return f"nf:{self.stream}:settings"

    @property
    def findings(self) -> str:
        """Hash written by the monitor each cycle: its latest counts, read by the controller for status."""
        return f"nf:{self.stream}:monitor:findings"

    @property
    def streams(self) -> str:
        """Set (outside any stream) of stream names that have a mapping loaded."""
        return "nf:streams"


@dataclass(frozen=True, slots=True)
class StoreKeys:
    """The notification store of one stream (core): notifications, per-user delivery state, the outbox.

    Ids of notifications are time-sortable strings; zset scores of the per-user indexes and of the
    broadcast index are commit sequence numbers (`seq`), so "newer" means "committed later".

    Unlike the bus, the store's scripts touch per-user and global keys together: a state change and its
    outbox entry commit in one script. Every key of a stream's store therefore carries the stream's store
    tag `{<stream>.core}`: on Redis Cluster the store of one stream lives in one slot (one master and its
    replicas), different streams on different masters.
    """

    stream: str

    @property
    def prefix(self) -> str:
        """The start of every key of the store, its hash tag included."""
        return f"nf:{self.stream}:core:{{{self.stream}.core}}:"

    @property
    def user_prefix(self) -> str:
        """The start of every per-user key; scripts append `<user>:undelivered` and the like."""
        return f"{self.prefix}u:"

    def notification(self, notification_id: str) -> str:
        """Hash: one notification (creator, content, recipients, expiry, reference counts)."""
        return f"{self.prefix}n:{notification_id}"

    def producer_ids(self, producer: str) -> str:
        """Hash producer_notification_id -> notification id of one producer; unique forever."""
        return f"{self.prefix}p:{producer}:ids"

    def undelivered(self, user: str) -> str:
        """Zset notification id -> seq: unicast and multicast notifications not yet delivered to the user."""
        return f"{self.user_prefix}{user}:undelivered"

    def delivered(self, user: str) -> str:
        """Zset notification id -> seq: delivered to the user and not deleted (seen and unseen)."""
        return f"{self.user_prefix}{user}:delivered"

    def seen(self, user: str) -> str:
        """Zset notification id -> seq: the delivered notifications the user has marked seen."""
        return f"{self.user_prefix}{user}:seen"

    def unseen(self, user: str) -> str:
        """Zset notification id -> seq: the delivered notifications the user has not marked seen."""
        return f"{self.user_prefix}{user}:unseen"

    def broadcast_mark(self, user: str) -> str:
        """String: the highest broadcast seq the user has been offered (broadcasts up to it are settled)."""
        return f"{self.user_prefix}{user}:bmark"

    def broadcast_done(self, user: str) -> str:
        """Set: broadcasts above the user's mark already delivered to the user (by a confirmation)."""
        return f"{self.user_prefix}{user}:bdone"

    def feed(self, user: str) -> str:
        """Zset `<N|U|D>:<notification id>` -> seq of the notification's latest change for the user.

        One member per notification (a change replaces the member of the previous one): `N` created,
        `U` seen state changed, `D` deleted by the user. Broadcasts appear here only once the user changed
        them; until then the feed read merges them from `broadcasts`. Trimmed below `feed_floor`.
        """
        return f"{self.user_prefix}{user}:feed"

    def user_keys(self, user: str) -> tuple[str, str, str, str, str, str, str]:
        return (
            self.undelivered(user),
            self.delivered(user),
            self.seen(user),
            self.unseen(user),
            self.broadcast_mark(user),
            self.broadcast_done(user),
            self.feed(user),
        )

    @property
    def broadcasts(self) -> str:
        """Zset notification id -> seq of every live broadcast, delivered lazily per user."""
        return f"{self.prefix}broadcasts"

    @property
    def seq(self) -> str:
        """String: the commit sequence counter."""
        return f"{self.prefix}seq"

    @property
    def feed_marks(self) -> str:
        """Zset seq -> unix time the purger first saw the commit sequence there (changes up to seq are older)."""
        return f"{self.prefix}feed:marks"

    @property
    def feed_floor(self) -> str:
        """String: the oldest position the feeds still keep; every change at or below it is past the retention."""
        return f"{self.prefix}feed:floor"

    @property
    def expiry(self) -> str:
        """Zset notification id -> unix time it expires (`invalidate_at`), for the purger."""
        return f"{self.prefix}expiry"

    @property
    def garbage(self) -> str:
        """Zset notification id -> unix time after which a notification nobody holds any more is purged."""
        return f"{self.prefix}garbage"

    @property
    def outbox(self) -> str:
        """Stream of events (routing key + protobuf BrokerNotification) written with each state change."""
        return f"{self.prefix}outbox"

    @property
    def wake(self) -> str:
        """Pub/sub channel: user ids (or `*` for everyone) with a new notification and a waiting long poll."""
        return f"{self.prefix}wake"

    @property
    def waiting(self) -> str:
        """Zset user -> unix time until which a long poll of the user may be waiting (creates wake only those)."""
        return f"{self.prefix}waiting"


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    """ws_delivery's keys of one stream: single-use WebSocket tickets and the cross-instance close channel."""

    stream: str

    def ticket(self, ticket: str) -> str:
        """String holding the user id a ticket was issued to; SET EX at issue, GETDEL at use."""
        return f"nf:{self.stream}:ws:ticket:{ticket}"

    @property
    def close_channel(self) -> str:
        """Pub/sub channel: user ids whose connections every ws_delivery instance closes (admin close)."""
        return f"nf:{self.stream}:ws:close"


@dataclass(frozen=True, slots=True)
class ControllerKeys:
    """Keys of the controller room, outside any stream."""

    @property
    def streams(self) -> str:
        """Hash stream -> `<namespace>/<name>` of the NotificationStream whose mapping the controller wrote.

        Streams loaded with `notifier mapping load` are never in it, so the controller's sweep of streams whose
        object is gone never touches them.
        """
        return "nf:controller:streams"

"""Every Redis key of Notifier, declared once.

All keys start with `nf:<stream>:`. A stream's users are grouped into shards (`NOTIFIER_SHARDS`, 16 by
default; `shard_of`): a user's keys, in the review bus and in the store alike, and the indexes of its shard
(the bus's `due`, `pending_since`, `pushed`; the store's outbox, sequence, expiry and garbage) carry the
shard's hash tag `{<stream>.<shard>}`, so one Lua script serves a whole batch of users of one shard, on a
single Redis and on Redis Cluster alike, and no index is one hot key. Sorted-set scores are unix seconds.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterable
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


DEFAULT_SHARDS = 16
"""Shards of one stream (`NOTIFIER_SHARDS`). Every room derives a user's shard from this number, so it is
part of the key layout: every room of a stream must use the same one (`layout` records it), and changing it
is a data migration (drain the stream first)."""
MAX_SHARDS = 1024


def shard_of(member: str, shards: int) -> int:
    """The shard of a user (or any member id): CRC-32 of the id modulo `shards`, the same in every process and
    every release."""
    return zlib.crc32(member.encode()) % shards


def hash_tag(text: str) -> str | None:
    """Redis Cluster's rule: the text between the first `{` and the next `}`, when there is some; else None."""
    start = text.find("{")
    end = text.find("}", start + 1) if start >= 0 else -1
    return text[start + 1 : end] if end > start + 1 else None


def tagged(tag: str, text: str, *, limit: int) -> str:
    """`{tag}text`, which `hash_tag` places with `tag` (an id: no braces), or `text` alone when that would be
    over `limit` characters."""
    joined = f"{{{tag}}}{text}"
    return joined if len(joined) <= limit else text


def shard_tag(stream: str, shard: int) -> str:
    """The hash tag of one shard: its keys in the bus and the store live in one Redis Cluster slot."""
    return f"{{{stream}.{shard}}}"


def layout_key(stream: str) -> str:
    """String: the shard count the stream's keys were laid out with, set by the first room to use them."""
    return f"nf:{stream}:layout"


def members_key(stream: str, room: str) -> str:
    """Zset replica id -> unix time its membership expires: the live replicas of `room` that share the stream's
    shards among them (workers/common/runtime/assignment.py)."""
    return f"nf:{stream}:members:{room}"


@dataclass(frozen=True, slots=True)
class _ShardedKeys:
    """What the bus and the store share: a stream's shards, and each user's keys under its shard's prefix."""

    stream: str
    shard_count: int = DEFAULT_SHARDS

    @property
    def shards(self) -> range:
        return range(self.shard_count)

    def shard_of(self, user: str) -> int:
        return shard_of(user, self.shard_count)

    def by_shard(self, users: Iterable[str]) -> dict[int, list[str]]:
        """`users` grouped by shard, each group in the order given: what a script per shard takes."""
        grouped: dict[int, list[str]] = defaultdict(list)
        count = self.shard_count
        for user in users:
            grouped[shard_of(user, count)].append(user)
        return grouped

    def tag(self, shard: int) -> str:
        return shard_tag(self.stream, shard)

    def user_prefix(self, shard: int) -> str:
        """The start of every per-user key of `shard`; scripts append `<user>:<name>`."""
        raise NotImplementedError

    def _user(self, user: str, name: str) -> str:
        return f"{self.user_prefix(self.shard_of(user))}{user}:{name}"


@dataclass(frozen=True, slots=True)
class BusKeys(_ShardedKeys):
    """The review bus of one stream: per-user pending lists, their indexes, the mapping and settings."""

    @property
    def prefix(self) -> str:
        return f"nf:{self.stream}:"

    def user_prefix(self, shard: int) -> str:
        return f"nf:{self.stream}:u:{self.tag(shard)}:"

    def pending(self, user: str) -> str:
        """List of review entries waiting for the user's next digest (RPUSH by pushers, LPOP by pullers)."""
        return self._user(user, "pending")

    def inflight(self, shard: int) -> str:
        """Hash user -> the batch a puller claimed but has not handed on yet: the line `<digest id> <claimed ms>
        <lease until ms> <owner>`, a newline, and the entries one per line."""
        return f"nf:{self.stream}:b:{self.tag(shard)}:inflight"

    def last_pulled_at(self, shard: int) -> str:
        """Hash user -> unix time of the user's last pull."""
        return f"nf:{self.stream}:b:{self.tag(shard)}:last_pulled_at"

    def user_inflight(self, user: str) -> str:
        """Hash of the earlier per-user layout: one user's in-flight batch (`claim` or the six fields before it,
        and `entries`). Pullers of this release resume such a record into the shard's `inflight` hash and
        write none."""
        return self._user(user, "inflight")

    def user_last_pulled_at(self, user: str) -> str:
        """String of the earlier per-user layout: unix time of the user's last pull (now a field of the shard's
        `last_pulled_at` hash; the cleaner removes both)."""
        return self._user(user, "last_pulled_at")

    def user_keys(self, user: str) -> tuple[str, str, str, str, str]:
        """Every key that holds the user's bus data, all in the user's shard's slot: the pending list, the two
        per-user keys of the earlier layout, the shard's in-flight and last_pulled_at hashes (the user's field)."""
        shard = self.shard_of(user)
        return (
            self.pending(user),
            self.user_inflight(user),
            self.user_last_pulled_at(user),
            self.inflight(shard),
            self.last_pulled_at(shard),
        )

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
class StoreKeys(_ShardedKeys):
    """The notification store of one stream (core): notifications, per-user delivery state, the outboxes.

    Ids of notifications are time-sortable strings; zset scores of the per-user indexes and of the
    broadcast index are commit sequence numbers (`seq`) of the user's shard, so "newer" means "committed
    later".

    A state change and its outbox entry commit in one script, so every key a change touches lives in the
    shard of the user it is about: the shard's tag `{<stream>.<shard>}` (the bus's tag too) is in each of
    them. A notification is kept once per shard that has recipients of it (every shard for a broadcast),
    with that shard's recipients, reference counts, sequence and outbox event. A producer's
    `producer_notification_id` is registered in its own home shard (`home_of`), and a create whose
    recipients live in other shards goes through the create record there (docs/design.md section 5).
    """

    def home_of(self, producer: str, producer_notification_id: str) -> int:
        """The shard that registers a producer's `producer_notification_id` and keeps its create record: the
        shard of the id's hash tag when it has one (`{u1}d-42` lives with user `u1`), else of
        `<producer>/<producer_notification_id>`."""
        tag = hash_tag(producer_notification_id)
        return shard_of(tag if tag is not None else f"{producer}/{producer_notification_id}", self.shard_count)

    def prefix(self, shard: int) -> str:
        """The start of every key of one shard of the store, its hash tag included."""
        return f"nf:{self.stream}:core:{self.tag(shard)}:"

    def user_prefix(self, shard: int) -> str:
        return f"{self.prefix(shard)}u:"

    def notification(self, shard: int, notification_id: str) -> str:
        """Hash: one notification as a shard keeps it (creator, content, this shard's recipients, expiry,
        reference counts)."""
        return f"{self.prefix(shard)}n:{notification_id}"

    def producer_ids(self, shard: int, producer: str) -> str:
        """Hash producer_notification_id -> notification id of one producer, in the pair's home shard;
        unique forever."""
        return f"{self.prefix(shard)}p:{producer}:ids"

    def create_record(self, shard: int, notification_id: str) -> str:
        """Hash in the home shard: a create spanning shards until every shard has applied it (meta, content,
        event)."""
        return f"{self.prefix(shard)}c:{notification_id}"

    def creating(self, shard: int) -> str:
        """Zset notification id -> unix time of the registration: creates of this home shard that other
        shards may not have applied yet; finished by the creating request, or recovered by the purger."""
        return f"{self.prefix(shard)}creating"

    def undelivered(self, user: str) -> str:
        """Zset notification id -> seq: unicast and multicast notifications not yet delivered to the user."""
        return self._user(user, "undelivered")

    def delivered(self, user: str) -> str:
        """Zset notification id -> seq: delivered to the user and not deleted (seen and unseen)."""
        return self._user(user, "delivered")

    def seen(self, user: str) -> str:
        """Zset notification id -> seq: the delivered notifications the user has marked seen."""
        return self._user(user, "seen")

    def unseen(self, user: str) -> str:
        """Zset notification id -> seq: the delivered notifications the user has not marked seen."""
        return self._user(user, "unseen")

    def broadcast_mark(self, user: str) -> str:
        """String: the highest broadcast seq the user has been offered (broadcasts up to it are settled)."""
        return self._user(user, "bmark")

    def broadcast_done(self, user: str) -> str:
        """Set: broadcasts above the user's mark already delivered to the user (by a confirmation)."""
        return self._user(user, "bdone")

    def feed(self, user: str) -> str:
        """Zset `<N|U|D>:<notification id>` -> seq of the notification's latest change for the user.

        One member per notification (a change replaces the member of the previous one): `N` created,
        `U` seen state changed, `D` deleted by the user. Broadcasts appear here only once the user changed
        them; until then the feed read merges them from `broadcasts`. Trimmed below `feed_floor`.
        """
        return self._user(user, "feed")

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

    def broadcasts(self, shard: int) -> str:
        """Zset notification id -> seq of every live broadcast in the shard, delivered lazily per user."""
        return f"{self.prefix(shard)}broadcasts"

    def seq(self, shard: int) -> str:
        """String: the shard's commit sequence counter (the positions of its users' feeds)."""
        return f"{self.prefix(shard)}seq"

    def feed_marks(self, shard: int) -> str:
        """Zset seq -> unix time the purger first saw the commit sequence there (changes up to seq are older)."""
        return f"{self.prefix(shard)}feed:marks"

    def feed_floor(self, shard: int) -> str:
        """String: the oldest position the shard's feeds still keep; every change at or below it is past the
        retention."""
        return f"{self.prefix(shard)}feed:floor"

    def expiry(self, shard: int) -> str:
        """Zset notification id -> unix time it expires (`invalidate_at`), for the purger."""
        return f"{self.prefix(shard)}expiry"

    def garbage(self, shard: int) -> str:
        """Zset notification id -> unix time after which a notification nobody holds any more is purged."""
        return f"{self.prefix(shard)}garbage"

    def outbox(self, shard: int) -> str:
        """Stream of events (routing key + protobuf BrokerNotification) written with each state change."""
        return f"{self.prefix(shard)}outbox"

    def waiting(self, shard: int) -> str:
        """Zset user -> unix time until which a long poll of the user may be waiting (creates wake only those)."""
        return f"{self.prefix(shard)}waiting"

    def purger(self, shard: int) -> str:
        """String: the core replica that purges and recovers this shard, with a lease (PX)."""
        return f"{self.prefix(shard)}purger"

    @property
    def wake(self) -> str:
        """Pub/sub channel: user ids (or `*` for everyone) with a new notification and a waiting long poll."""
        return f"nf:{self.stream}:core:wake"


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

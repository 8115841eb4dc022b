"""The brand -> users mapping and stream settings in Redis: written atomically, read as whole versions.

A load writes a complete new version hash `nf:<s>:map:v:<id>` and only then flips the pointer
`nf:<s>:map:current`, so a reader (GET pointer, HGETALL version) always sees one whole mapping, also on
Redis Cluster where the keys live in different slots. Superseded versions are deleted after a grace
period. Loading the same content again writes nothing new (idempotent for the controller).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from workers.common.keys import BusKeys
from workers.common.streamspec import StreamSpec

VERSION_GRACE_S = 60.0
"""How long a superseded mapping version stays readable."""


@dataclass(frozen=True, slots=True)
class StreamSettings:
    window_s: float = 30.0
    max_items: int = 100
    stale_after_s: float = 20.0
    monitor_interval_s: float = 10.0

    @classmethod
    def from_spec(cls, spec: StreamSpec) -> StreamSettings:
        return cls(
            window_s=spec.digest.window_seconds,
            max_items=spec.digest.max_items,
            stale_after_s=spec.monitor.stale_after_seconds,
            monitor_interval_s=spec.monitor.interval_seconds,
        )

    def as_hash(self) -> dict[str, str]:
        return {
            "window_s": repr(self.window_s),
            "max_items": str(self.max_items),
            "stale_after_s": repr(self.stale_after_s),
            "monitor_interval_s": repr(self.monitor_interval_s),
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> StreamSettings:
        default = cls()
        return cls(
            window_s=float(raw.get("window_s", default.window_s)),
            max_items=int(raw.get("max_items", default.max_items)),
            stale_after_s=float(raw.get("stale_after_s", default.stale_after_s)),
            monitor_interval_s=float(raw.get("monitor_interval_s", default.monitor_interval_s)),
        )


@dataclass(frozen=True, slots=True)
class Mapping:
    """One whole version of the mapping."""

    version: str
    brand_users: dict[str, tuple[str, ...]]
    user_brands: dict[str, tuple[str, ...]]
    digest: str = ""
    meta: dict[str, object] = field(default_factory=dict)

    def is_valid_user(self, user: str) -> bool:
        return user in self.user_brands


EMPTY = Mapping(version="", brand_users={}, user_brands={})


@dataclass(frozen=True, slots=True)
class LoadResult:
    stream: str
    version: str
    brands: int
    users: int
    changed: bool


def content_digest(spec: StreamSpec) -> str:
    canonical = json.dumps({b: sorted(u) for b, u in spec.brands.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def write_mapping(redis: aioredis.Redis, *, keys: BusKeys, spec: StreamSpec) -> LoadResult:
    """Write `spec`'s mapping and settings; readers see the old or the new mapping, never a mix."""
    digest = content_digest(spec)
    user_brands = spec.user_brands
    await redis.hset(keys.settings, mapping=StreamSettings.from_spec(spec).as_hash())
    await redis.sadd(keys.streams, keys.stream)
    current = await read_mapping(redis, keys=keys)
    if current.version and current.digest == digest:
        return LoadResult(keys.stream, current.version, len(spec.brands), len(user_brands), changed=False)
    version = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
    meta = {"digest": digest, "brands": len(spec.brands), "users": len(user_brands), "loaded_at": time.time()}
    fields = {f"brand:{b}": json.dumps(u) for b, u in spec.brands.items()}
    fields.update({f"user:{u}": json.dumps(b) for u, b in user_brands.items()})
    fields["meta"] = json.dumps(meta)
    await redis.hset(keys.map_version(version), mapping=fields)
    previous = await redis.set(keys.map_current, version, get=True)
    now = time.time()
    if previous:
        await redis.zadd(keys.map_versions, {previous: now})
    await _drop_superseded(redis, keys=keys, before=now - VERSION_GRACE_S)
    return LoadResult(keys.stream, version, len(spec.brands), len(user_brands), changed=True)


async def _drop_superseded(redis: aioredis.Redis, *, keys: BusKeys, before: float) -> None:
    old = await redis.zrangebyscore(keys.map_versions, "-inf", before)
    if old:
        await redis.delete(*(keys.map_version(v) for v in old))
        await redis.zrem(keys.map_versions, *old)


async def read_mapping(redis: aioredis.Redis, *, keys: BusKeys) -> Mapping:
    """The mapping in force, or EMPTY when none was loaded."""
    for _ in range(5):
        version = await redis.get(keys.map_current)
        if not version:
            return EMPTY
        raw: dict[str, str] = await redis.hgetall(keys.map_version(version))
        if raw:
            return _decode(version, raw)
    return EMPTY


def _decode(version: str, raw: dict[str, str]) -> Mapping:
    brands: dict[str, tuple[str, ...]] = {}
    users: dict[str, tuple[str, ...]] = {}
    meta: dict[str, object] = {}
    for name, value in raw.items():
        kind, _, ident = name.partition(":")
        if kind == "brand":
            brands[ident] = tuple(json.loads(value))
        elif kind == "user":
            users[ident] = tuple(json.loads(value))
        elif name == "meta":
            meta = json.loads(value)
    return Mapping(
        version=version, brand_users=brands, user_brands=users, digest=str(meta.get("digest", "")), meta=meta
    )


async def read_settings(redis: aioredis.Redis, *, keys: BusKeys) -> StreamSettings:
    raw: dict[str, str] = await redis.hgetall(keys.settings)
    return StreamSettings.from_hash(raw)


async def delete_mapping(redis: aioredis.Redis, *, keys: BusKeys) -> int:
    """Remove the stream's mapping, its versions and settings; returns the number of keys deleted."""
    versions = await redis.zrange(keys.map_versions, 0, -1)
    current = await redis.get(keys.map_current)
    names = [keys.map_version(v) for v in versions]
    if current:
        names.append(keys.map_version(current))
    names += [keys.map_current, keys.map_versions, keys.settings]
    deleted = 0
    for name in names:
        deleted += await redis.delete(name)
    await redis.srem(keys.streams, keys.stream)
    return int(deleted)


class MappingCache:
    """A reader's copy of the mapping, refreshed when the pointer moves (checked at most every `refresh_s`)."""

    def __init__(self, redis: aioredis.Redis, *, keys: BusKeys, refresh_s: float = 1.0) -> None:
        self._redis = redis
        self._keys = keys
        self._refresh_s = refresh_s
        self._checked_at = float("-inf")
        self.mapping = EMPTY

    async def get(self) -> Mapping:
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_s:
            self._checked_at = now
            version = await self._redis.get(self._keys.map_current)
            if (version or "") != self.mapping.version:
                self.mapping = await read_mapping(self._redis, keys=self._keys)
        return self.mapping

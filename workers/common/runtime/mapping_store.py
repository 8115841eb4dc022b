"""The brand -> users mapping and stream settings in Redis: written atomically, read as whole versions.

A load writes a complete new version hash `nf:<s>:map:v:<id>` and only then flips the pointer
`nf:<s>:map:current`, so a reader (GET pointer, HGETALL version) always sees one whole mapping, also on
Redis Cluster where the keys live in different slots. Superseded versions are deleted after a grace
period. Loading the same content again writes nothing new (idempotent for the controller).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import EMPTY, VERSION_GRACE_S, LoadResult, Mapping, StreamSettings, content_digest

if TYPE_CHECKING:  # writers parse a spec first; readers (every room, `push-valid-data`, `pull`) need no schema
    from workers.common.contract.streamspec import StreamSpec


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
    """Remove the stream's mapping, its versions and settings; returns the number of keys deleted.

    The bus's per-user keys and indexes stay (`notifier clean` removes those), and so does the stream's layout
    key (workers/common/runtime/layout.py): it describes the keys that stay, and a mapping loaded again must
    find them in the same shards."""
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
    """A reader's copy of the stream's mapping and settings, both checked at most every `refresh_s` in one round
    trip (the mapping read again only when its pointer moved): a pusher's batch and a puller's cycle read
    neither from Redis, and a change reaches them within `refresh_s`."""

    def __init__(self, redis: aioredis.Redis, *, keys: BusKeys, refresh_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._refresh_s = refresh_s
        self._checked_at = float("-inf")
        self.mapping = EMPTY
        self.settings = StreamSettings()

    async def refresh(self) -> None:
        """Read the pointer and the settings if `refresh_s` passed since the last read that succeeded."""
        now = time.monotonic()
        if now - self._checked_at < self._refresh_s:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self._keys.map_current)
        pipe.hgetall(self._keys.settings)
        version, raw = await pipe.execute()
        if (version or "") != self.mapping.version:
            self.mapping = await read_mapping(self._redis, keys=self._keys)
        self.settings = StreamSettings.from_hash(raw)
        self._checked_at = now

    async def get(self) -> Mapping:
        await self.refresh()
        return self.mapping

    async def stream_settings(self) -> StreamSettings:
        await self.refresh()
        return self.settings

"""A NotificationStream into Redis and back out: the same code as `notifier mapping load`, plus ownership.

The stream is the object's name (`BusKeys(<name>)`). Before writing, the controller records itself as the
stream's owner in `ControllerKeys.streams` (`<stream> -> <namespace>/<name>`); a second object of the same
name in another namespace is refused instead of overwriting the first one's mapping. Deleting the object
removes the mapping only when that object owns it, and the startup sweep removes mappings whose owner no
longer exists. Streams loaded by `notifier mapping load` have no owner and are never touched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from workers.common.contract.errors import InvalidInput, InvalidMapping, ServiceUnavailable
from workers.common.contract.keys import BusKeys, ControllerKeys, is_valid_stream
from workers.common.contract.stream import LoadResult
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.faults import REDIS, temporary
from workers.common.runtime.mapping_store import delete_mapping, write_mapping
from workers.common.runtime.settings import CommonSettings

log = logging.getLogger(__name__)


class StreamConflict(InvalidInput):
    """Another NotificationStream (same name, other namespace) already owns the stream."""


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """The NotificationStream object behind a stream."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, value: str) -> Owner:
        namespace, _, name = value.partition("/")
        return cls(namespace, name)


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Turn "Redis cannot be reached" into ServiceUnavailable (retried), whatever the call was."""
    try:
        yield
    except Exception as exc:
        away = temporary(exc, dependency=REDIS)
        if away is None:
            raise
        raise ServiceUnavailable(f"Redis unavailable while trying to {what}: {exc}", dependency=REDIS) from exc


class Reconciler:
    """Writes and removes the mappings of NotificationStream objects; knows nothing of kopf."""

    def __init__(self, redis: aioredis.Redis, *, settings: CommonSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._keys = ControllerKeys()

    def _bus(self, stream: str) -> BusKeys:
        """The stream's bus keys in the shard count of the settings. The controller writes only the stream's
        mapping, settings and ownership, none of them per shard, so it needs no layout guard."""
        return BusKeys(stream, shard_count=self._settings.shards)

    def stream_of(self, owner: Owner) -> str:
        if is_valid_stream(owner.name):
            return owner.name
        raise InvalidMapping(
            f"metadata.name {owner.name!r} is not a valid stream name (lowercase letters, digits and '-', "
            "at most 63 characters)"
        )

    async def apply(self, owner: Owner, spec: Mapping[str, Any]) -> LoadResult:
        """Validate `spec` and swap it in as the stream's mapping and settings (idempotent)."""
        parsed = parse_spec(dict(spec))
        stream = self.stream_of(owner)
        with redis_errors("write the mapping"):
            await self._claim(stream, owner)
            return await write_mapping(self._redis, keys=self._bus(stream), spec=parsed)

    async def _claim(self, stream: str, owner: Owner) -> None:
        await self._redis.hsetnx(self._keys.streams, stream, str(owner))
        recorded = await self._redis.hget(self._keys.streams, stream)
        if recorded != str(owner):
            raise StreamConflict(f"stream {stream!r} is already managed by NotificationStream {recorded}")

    async def release(self, owner: Owner) -> int:
        """Remove the stream's mapping if `owner` owns it; returns the number of keys deleted."""
        try:
            stream = self.stream_of(owner)
        except InvalidMapping:
            return 0
        with redis_errors("remove the mapping"):
            if await self._redis.hget(self._keys.streams, stream) != str(owner):
                return 0
            removed = await delete_mapping(self._redis, keys=self._bus(stream))
            await self._redis.hdel(self._keys.streams, stream)
        return removed

    async def findings(self, owner: Owner) -> dict[str, str] | None:
        """The monitor's latest findings for the object's stream (empty when it reported none).

        None when another object owns the stream: an object refused with StreamConflict must not show the
        figures of a stream another object manages.
        """
        stream = self.stream_of(owner)
        with redis_errors("read the monitor's findings"):
            recorded = await self._redis.hget(self._keys.streams, stream)
            if recorded is not None and recorded != str(owner):
                return None
            raw: dict[str, str] = await self._redis.hgetall(self._bus(stream).findings)
        return raw

    async def sweep(
        self, existing: Callable[[], Awaitable[set[Owner]]], *, in_scope: Callable[[Owner], bool]
    ) -> list[str]:
        """Remove the mappings of owned streams whose object is gone; returns the streams removed.

        The owners are read before the objects are listed, so a stream created meanwhile is never swept.
        """
        with redis_errors("read the controller's streams"):
            recorded: dict[str, str] = await self._redis.hgetall(self._keys.streams)
        alive = await existing()
        removed = []
        for stream, value in sorted(recorded.items()):
            owner = Owner.parse(value)
            if owner in alive or not in_scope(owner):
                continue
            keys = await self.release(owner)
            log.info("stream %s: NotificationStream %s is gone, removed %d mapping keys", stream, owner, keys)
            removed.append(stream)
        return removed

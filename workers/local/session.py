"""One local stack on one stream: its Redis and RabbitMQ connections, its room processes, its devices.

The stream (`nf:<stream>:` keys) and the AMQP namespace keep a local stack apart from any other data on the
same Redis and RabbitMQ; `reset()` removes what an earlier run of the same stream left behind.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from workers.common.contract import paths
from workers.common.contract.keys import BusKeys
from workers.common.contract.names import Topology
from workers.common.contract.stream import LoadResult
from workers.common.contract.streamspec import StreamSpec
from workers.common.runtime.amqp import Declared, declare_topology
from workers.common.runtime.auth import mint_token
from workers.common.runtime.connections import connect_amqp, connect_redis_for
from workers.common.runtime.mapping_store import write_mapping
from workers.common.runtime.settings import BrokerSettings
from workers.local.devices import Device, Devices
from workers.local.reviews import ReviewSource
from workers.local.rooms import Rooms, metrics_of, start_rooms
from workers.local.stack import LocalStack

PAGE_SIZE = 100


SECRET_FILE = "jwt-secret"


def with_secret(settings: BrokerSettings, *, log_dir: Path) -> BrokerSettings:
    """The settings with a token secret: `NOTIFIER_JWT_SECRET` when set, else a random one made for this run.

    The rooms get no default secret (a default is a key everybody knows); a local stack makes one up, hands it
    to its processes and writes it to `<log_dir>/jwt-secret` (mode 0600) for `notifier token` in another shell.
    """
    secret = settings.jwt_secret or secrets.token_urlsafe(32)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / SECRET_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret + "\n")
    return settings.model_copy(update={"jwt_secret": secret})


@dataclass
class Session:
    stream: str
    namespace: str
    log_dir: Path
    settings: BrokerSettings
    redis: aioredis.Redis
    amqp: AbstractRobustConnection
    channel: AbstractChannel
    declared: Declared
    stack: LocalStack
    devices: Devices = field(default_factory=Devices)
    rooms: Rooms | None = None

    @classmethod
    async def open(
        cls,
        *,
        stream: str,
        namespace: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        settings: BrokerSettings | None = None,
    ) -> Session:
        settings = with_secret(settings or BrokerSettings(), log_dir=log_dir)
        redis = await connect_redis_for(settings)
        amqp = await connect_amqp(settings.amqp_url, timeout_s=settings.connect_timeout_s)
        channel = await amqp.channel(publisher_confirms=True)
        declared = await declare_topology(channel, Topology(namespace))
        stack_env = {
            "NOTIFIER_STREAM": stream,
            "NOTIFIER_AMQP_NAMESPACE": namespace,
            "NOTIFIER_REDIS_URL": settings.redis_url,
            "NOTIFIER_REDIS_WAIT_REPLICAS": str(settings.redis_wait_replicas),
            "NOTIFIER_SHARDS": str(settings.shards),
            "NOTIFIER_AMQP_URL": settings.amqp_url,
            "NOTIFIER_JWT_SECRET": settings.jwt_secret,
            **(env or {}),
        }
        stack = LocalStack(env=stack_env, log_dir=log_dir)
        return cls(stream, namespace, log_dir, settings, redis, amqp, channel, declared, stack)

    @property
    def secret_file(self) -> Path:
        """Where the token secret of this run is written (see `with_secret`)."""
        return self.log_dir / SECRET_FILE

    @property
    def keys(self) -> BusKeys:
        return BusKeys(self.stream, shard_count=self.settings.shards)

    @property
    def topology(self) -> Topology:
        return Topology(self.namespace)

    async def reset(self) -> int:
        """Delete the stream's keys and the namespace's queued messages; returns how many keys went."""
        found = [key async for key in self.redis.scan_iter(match=f"{self.keys.prefix}*", count=5000)]
        for start in range(0, len(found), 5000):
            await self.redis.delete(*found[start : start + 5000])
        await self.redis.srem(self.keys.streams, self.stream)
        for queue in (self.declared.reviews_queue, self.declared.confirmations_queue, self.declared.dead_queue):
            await queue.purge()
        return len(found)

    async def load(self, spec: StreamSpec) -> LoadResult:
        return await write_mapping(self.redis, keys=self.keys, spec=spec)

    async def start_rooms(
        self, *, replicas: int = 2, extra: Mapping[str, Mapping[str, str]] | None = None, timeout_s: float = 90.0
    ) -> Rooms:
        self.rooms = start_rooms(self.stack, replicas=replicas, extra=extra)
        await self.stack.wait_ready(timeout_s=timeout_s)
        return self.rooms

    def source(self, brands: Sequence[str], *, seed: int | None = None) -> ReviewSource:
        return ReviewSource(self.declared.reviews, self.topology, sorted(brands), rng=random.Random(seed))

    async def add_device(self, *, user: str, name: str, index: int) -> Device:
        """Start `notifier listen` for `user` on ws_delivery replica `index` (core replica `index` for polls)."""
        assert self.rooms is not None
        device = self.devices.add(
            name=name, user=user, ws_url=self.rooms.ws_url(index), core_url=self.rooms.core_url(index)
        )
        await device.start(env=self.stack.command_env(), log_dir=self.log_dir)
        return device

    async def wait_connected(self, count: int, *, timeout_s: float = 30.0) -> bool:
        """Wait until the ws_delivery replicas hold `count` device connections in all."""
        assert self.rooms is not None
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if sum((await metrics_of(self.rooms.ws, "notifier_ws_connections")).values()) >= count:
                return True
            await asyncio.sleep(0.1)
        return False

    async def wait_delivered_in_core(self, user: str, shown: set[str], *, timeout_s: float = 15.0) -> set[str]:
        """What core lists as delivered to `user` once it lists all of `shown`, or after `timeout_s`: a device
        acknowledges what it showed, and the acknowledgement reaches core's store a moment later."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            listed = await self.delivered_in_core(user)
            if shown <= listed or asyncio.get_running_loop().time() >= deadline:
                return listed
            await asyncio.sleep(0.1)

    async def delivered_in_core(self, user: str) -> set[str]:
        """The ids of every notification core lists as delivered to `user` (asked as that user)."""
        assert self.rooms is not None
        token = mint_token(secret=self.settings.jwt_secret, sub=user)
        found: set[str] = set()
        async with httpx.AsyncClient(base_url=self.rooms.core_url(0), timeout=10.0) as http:
            for page in range(10_000):
                response = await http.get(
                    paths.DELIVERED,
                    params={"page_idx": page, "page_size": PAGE_SIZE},
                    headers={"Authorization": f"Bearer {token}"},
                )
                response.raise_for_status()
                items = response.json()
                found.update(str(item["id"]) for item in items)
                if len(items) < PAGE_SIZE:
                    break
        return found

    async def close(self) -> dict[str, int]:
        """Stop the devices, then every room process; close the connections. Returns exit codes by name."""
        codes = {d.name: code for d, code in zip(self.devices.items, await self.devices.stop(), strict=True)}
        codes.update(await asyncio.to_thread(self.stack.stop))
        await self.channel.close()
        await self.amqp.close()
        await self.redis.aclose()
        return codes

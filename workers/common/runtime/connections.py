"""Redis and RabbitMQ connections, each opened with the kernel's retry (`workers.common.runtime.retry`) for up to
`NOTIFIER_CONNECT_TIMEOUT_S`; a room's start-up tries again after that, a command gives up.

RabbitMQ connections are robust: aio-pika reconnects on its own and restores the channels, exchanges,
queues, bindings and consumers declared through them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from workers.common.contract.addresses import cluster_nodes, is_cluster_url
from workers.common.runtime.faults import RABBITMQ, REDIS
from workers.common.runtime.replication import require_replicas
from workers.common.runtime.retry import retrying
from workers.common.runtime.settings import CommonSettings, amqp_addresses

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

log = logging.getLogger(__name__)


_NEXT_URL = re.compile(r",(?=[A-Za-z][A-Za-z0-9+.-]*://)")
"""A comma that starts another URL (`,amqp://`), not one inside a URL (`redis+cluster://h1:1,h2:2`)."""


def redacted(url: str) -> str:
    """The URL, or each of comma-separated URLs (`NOTIFIER_AMQP_URL` naming several brokers), without its
    password, for log lines."""
    return ",".join(_redacted(part) for part in _NEXT_URL.split(url))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def no_retries() -> Retry:
    """redis-py's `retry` that tries once: a lost reply may be of a write that ran, so only the caller's retry
    (`workers.common.runtime.retry`), which knows what a repeat means, sends a command again."""
    return Retry(NoBackoff(), 0)


def redis_client(url: str, **options: Any) -> aioredis.Redis:
    """A Redis client for `url` (workers/common/contract/addresses.py), not yet connected: redis-py's cluster
    client for a cluster URL, else its single-node client. Both serve the commands, scripts, pipelines and
    pub/sub Notifier uses; every script and transaction touches the keys of one hash slot
    (workers/common/contract/keys.py), which is what the cluster client needs. `options` go to both.

    Neither client sends a command twice on its own (workers/common/runtime/redis_once.py)."""
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, retry=no_retries(), **options)
    from redis.asyncio.cluster import ClusterNode

    from workers.common.runtime.redis_once import OnceRedisCluster

    single, nodes = cluster_nodes(url)
    options.pop("health_check_interval", None)
    client = OnceRedisCluster.from_url(
        single, startup_nodes=[ClusterNode(h, p) for h, p in nodes], retry=no_retries(), **options
    )
    # The rooms are typed against the single-node client; the cluster client answers the same commands.
    return cast(aioredis.Redis, client)


async def connect_redis(url: str, *, timeout_s: float = 30.0, decode: bool = True) -> aioredis.Redis:
    """A Redis client (a single node or a cluster, by the URL's scheme) whose server answered PING."""

    async def attempt() -> aioredis.Redis:
        client = redis_client(url, decode_responses=decode, health_check_interval=30)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return client

    client = await retrying(attempt, what=f"connect to {redacted(url)}", dependency=REDIS, deadline_s=timeout_s)
    log.info("connected to Redis at %s", redacted(url))
    return client


async def connect_amqp(url: str, *, timeout_s: float = 30.0) -> AbstractRobustConnection:
    """A robust RabbitMQ connection to one of the brokers `url` lists (one URL or several, comma-separated:
    `settings.amqp_addresses`). It starts at a random one, so a room's replicas spread over a cluster's nodes,
    takes the next that answers, and after a lost connection aio-pika reconnects it to the next in the list
    (workers/common/runtime/amqpnodes.py). The frames queued in one loop turn leave in one write (see
    workers/common/runtime/amqpwrites.py).

    aio-pika is imported here, not with the module: a command that only talks to Redis (`notifier clean`)
    starts without it."""
    from workers.common.runtime import amqpwrites
    from workers.common.runtime.amqpnodes import open_ring

    amqpwrites.install()
    urls = amqp_addresses(url)
    first = random.randrange(len(urls))

    async def attempt() -> AbstractRobustConnection:
        return await open_ring(urls, first=first, timeout_s=min(timeout_s, 10.0))

    connection = await retrying(attempt, what=f"connect to {redacted(url)}", dependency=RABBITMQ, deadline_s=timeout_s)
    log.info("connected to RabbitMQ at %s", connection)  # str() hides the password
    return connection


async def connect_redis_for(settings: CommonSettings, *, decode: bool = True) -> aioredis.Redis:
    """The Redis client of a room or a command: the settings' URL and retry budget, and the replicas its
    writes wait for (workers/common/runtime/replication.py)."""
    client = await connect_redis(settings.redis_url, timeout_s=settings.connect_timeout_s, decode=decode)
    require_replicas(client, settings.redis_wait_replicas, timeout_s=settings.redis_wait_timeout_s)
    return client


@contextlib.asynccontextmanager
async def redis_session(settings: CommonSettings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client for one command: connected with the settings' retry budget, closed on the way out."""
    client = await connect_redis_for(settings)
    try:
        yield client
    finally:
        await client.aclose()

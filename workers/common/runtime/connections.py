"""Redis and RabbitMQ connections, each opened with the kernel's retry (`workers.common.runtime.retry`) for up to
`NOTIFIER_CONNECT_TIMEOUT_S`; a room's start-up tries again after that, a command gives up.

RabbitMQ connections are robust: aio-pika reconnects on its own and restores the channels, exchanges,
queues, bindings and consumers declared through them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from workers.common.runtime.faults import RABBITMQ, REDIS
from workers.common.runtime.retry import retrying
from workers.common.runtime.settings import CommonSettings

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

log = logging.getLogger(__name__)


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


async def connect_redis(url: str, *, timeout_s: float = 30.0, decode: bool = True) -> aioredis.Redis:
    """A Redis client whose server answered PING."""

    async def attempt() -> aioredis.Redis:
        client = aioredis.Redis.from_url(url, decode_responses=decode, health_check_interval=30)
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
    """A robust RabbitMQ connection: reconnects by itself after the first connect succeeded. The frames
    queued in one loop turn leave in one write (see workers/common/runtime/amqpwrites.py).

    aio-pika is imported here, not with the module: a command that only talks to Redis (`notifier clean`)
    starts without it."""
    import aio_pika

    from workers.common.runtime import amqpwrites

    amqpwrites.install()

    async def attempt() -> AbstractRobustConnection:
        return await aio_pika.connect_robust(url, timeout=min(timeout_s, 10.0))

    connection = await retrying(attempt, what=f"connect to {redacted(url)}", dependency=RABBITMQ, deadline_s=timeout_s)
    log.info("connected to RabbitMQ at %s", redacted(url))
    return connection


@contextlib.asynccontextmanager
async def redis_session(settings: CommonSettings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client for one command: connected with the settings' retry budget, closed on the way out."""
    client = await connect_redis(settings.redis_url, timeout_s=settings.connect_timeout_s)
    try:
        yield client
    finally:
        await client.aclose()

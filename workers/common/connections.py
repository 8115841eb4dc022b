"""Redis and RabbitMQ connections, each opened with retry and backoff (the only place that retries a connect).

RabbitMQ connections are robust: aio-pika reconnects on its own and restores the channels, exchanges,
queues, bindings and consumers declared through them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import aio_pika
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers.common import amqpwrites
from workers.common.errors import ServiceUnavailable
from workers.common.settings import CommonSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a Redis call raises while the server cannot be reached."""


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


async def with_retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    retry_on: tuple[type[BaseException], ...],
    first_delay_s: float = 0.1,
    max_delay_s: float = 2.0,
) -> T:
    """Call `attempt` until it succeeds, backing off exponentially; ServiceUnavailable after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = first_delay_s
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceUnavailable(f"{what} unavailable after {timeout_s:.0f}s: {exc}") from exc
            log.warning("%s unavailable (%s), retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, max_delay_s)


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

    client = await with_retry(f"Redis at {redacted(url)}", attempt, timeout_s=timeout_s, retry_on=REDIS_DOWN)
    log.info("connected to Redis at %s", redacted(url))
    return client


async def connect_amqp(url: str, *, timeout_s: float = 30.0) -> AbstractRobustConnection:
    """A robust RabbitMQ connection: reconnects by itself after the first connect succeeded. The frames
    queued in one loop turn leave in one write (see workers/common/amqpwrites.py)."""
    amqpwrites.install()

    async def attempt() -> AbstractRobustConnection:
        return await aio_pika.connect_robust(url, timeout=min(timeout_s, 10.0))

    connection = await with_retry(
        f"RabbitMQ at {redacted(url)}",
        attempt,
        timeout_s=timeout_s,
        retry_on=(ConnectionError, OSError, asyncio.TimeoutError, aio_pika.exceptions.AMQPConnectionError),
    )
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

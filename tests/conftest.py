"""Fixtures shared by every test: real Redis and RabbitMQ, isolated per test.

Each test gets its own stream name (so its own `nf:<stream>:` keys) and its own AMQP namespace (so its
own exchanges and queues); both are removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractRobustConnection

from tests.support.rabbitmq_cluster import RabbitCluster
from tests.support.rabbitmq_cluster import available as rabbit_cluster_unavailable
from tests.support.redis_cluster import RedisCluster
from workers.common.contract.names import Topology
from workers.common.runtime.connections import connect_amqp, redis_client
from workers.local.stack import free_port

REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("NOTIFIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
def stream() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters and 3 replicas, started once per session by the first test that needs it."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A 3-node RabbitMQ cluster beside the machine's broker, started once per session by the first test that
    needs it (about 35 s and 400 MiB here). Its folder is outside pytest's temporary tree, which the rabbitmq
    user may not enter. Where it cannot start the test fails: `make test` runs as root, as `make services` does."""
    reason = rabbit_cluster_unavailable()
    if reason is not None:
        pytest.fail(f"the RabbitMQ cluster cannot start: {reason}")
    cluster = RabbitCluster(Path(tempfile.mkdtemp(prefix="notifier-rabbit-"))).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def amqp_url(request: pytest.FixtureRequest) -> str:
    """The broker a test runs against: the local node, or with `@ON_THE_RABBIT_CLUSTER` the session's cluster."""
    if getattr(request, "param", "single") == "cluster":
        cluster: RabbitCluster = request.getfixturevalue("rabbit_cluster")
        return cluster.url
    return AMQP_URL


ON_THE_RABBIT_CLUSTER = pytest.mark.parametrize("amqp_url", ["cluster"], indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis a test runs against: the local single node, or with `@BOTH_REDIS` also the session's cluster."""
    if getattr(request, "param", "single") == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        if cluster.nodes and not all(node.running for node in cluster.nodes):
            raise RuntimeError("a test left the session's Redis Cluster with a node down")
        return cluster.url
    return REDIS_URL


BOTH_REDIS = pytest.mark.parametrize("redis_url", ["single", "cluster"], indirect=True)
"""Runs a test (or, as `pytestmark`, a module) against a single Redis node and against a Redis Cluster."""


@pytest.fixture
async def redis(stream: str, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"nf:{stream}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.srem("nf:streams", stream)  # type: ignore[misc]
    await client.aclose()


@pytest.fixture
def amqp_namespace() -> Iterator[str]:
    """The test's own AMQP namespace; whatever a test or the processes it started declared in it (quorum
    queues included, which would otherwise pile up on the broker run after run) is deleted afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}."
    yield namespace
    asyncio.run(_delete_namespace(namespace))


async def _delete_namespace(namespace: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await delete_topology(connection, Topology(namespace))
    finally:
        await connection.close()


@pytest.fixture
def topology(amqp_namespace: str) -> Topology:
    return Topology(namespace=amqp_namespace)


@pytest.fixture
async def amqp(topology: Topology, amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_amqp(amqp_url)
    yield connection
    await delete_topology(connection, topology)
    await connection.close()


async def delete_topology(connection: AbstractConnection, topology: Topology) -> None:
    """Remove the test's queues and exchanges (quorum queues need if_unused=False, if_empty=False)."""
    channel = await connection.channel()
    for queue in (topology.reviews_queue, topology.confirmations_queue, topology.dead_letter_queue):
        await channel.queue_delete(queue, if_unused=False, if_empty=False)
    for exchange in (
        topology.reviews_exchange,
        topology.notifications_exchange,
        topology.confirmations_exchange,
        topology.dead_letter_exchange,
    ):
        await channel.exchange_delete(exchange)
    await channel.close()


async def take_bodies(
    connection: AbstractRobustConnection, queue_name: str, count: int, *, timeout_s: float = 10.0
) -> list[bytes]:
    """The next `count` message bodies of a queue, in order, taken off it (fails on fewer within the timeout)."""
    return [message.body for message in await take_messages(connection, queue_name, count, timeout_s=timeout_s)]


async def take_messages(
    connection: AbstractRobustConnection, queue_name: str, count: int, *, timeout_s: float = 10.0
) -> list[AbstractIncomingMessage]:
    """The next `count` messages of a queue (body and headers), in order, taken off it."""
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name)
    found: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout_s):
        while len(found) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            found.append(message)
    await channel.close()
    return found


def room_env(stream: str, namespace: str, *, redis_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """The NOTIFIER_* variables of a room process a test or benchmark starts: its stream and namespace."""
    return {
        "NOTIFIER_REDIS_URL": redis_url,
        "NOTIFIER_AMQP_URL": AMQP_URL,
        "NOTIFIER_STREAM": stream,
        "NOTIFIER_AMQP_NAMESPACE": namespace,
        **extra,
    }


@pytest.fixture
def env(stream: str, amqp_namespace: str, redis_url: str) -> dict[str, str]:
    """Environment for a room process started by a test: the test's stream, namespace and Redis, loopback only."""
    ports = {"NOTIFIER_OPS_PORT": "0", "NOTIFIER_HTTP_PORT": "0"}
    return {**os.environ, **room_env(stream, amqp_namespace, redis_url=redis_url, **ports)}


__all__ = ["AMQP_URL", "BOTH_REDIS", "ON_THE_RABBIT_CLUSTER", "REDIS_URL", "delete_topology", "free_port", "room_env"]

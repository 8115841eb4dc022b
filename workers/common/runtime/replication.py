"""Writes that must survive a failover: `WAIT` for replicas before a room acts on what it wrote.

Redis replicates asynchronously. A master that dies takes with it the writes its replicas had not received
yet, and the replica promoted in its place has never seen them: a review entry the pusher wrote and then
acknowledged to the broker, a batch the puller leased and handed to core, a notification core stored and
the relay published. With `NOTIFIER_REDIS_WAIT_REPLICAS=N` (0, the default, for a Redis without replicas)
every such write is followed, on the same connection, by `WAIT N <timeout>`, and the room goes on only when N
replicas have it; fewer within `NOTIFIER_REDIS_WAIT_TIMEOUT_S` is a temporary Redis error, retried like any
outage (the writes are idempotent or recognised when repeated, so a retry never doubles them).

On a cluster a pipeline runs on one connection per node: one `WAIT` goes to each node the pipeline wrote to.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from workers.common.contract.errors import ServiceUnavailable
from workers.common.runtime.faults import REDIS


@dataclass(frozen=True, slots=True)
class Replication:
    replicas: int
    timeout_ms: int


_wanted: weakref.WeakKeyDictionary[Any, Replication] = weakref.WeakKeyDictionary()


def require_replicas(redis: aioredis.Redis, replicas: int, *, timeout_s: float) -> None:
    """From now on, every `execute_replicated` of this client waits for `replicas` replicas (0: none)."""
    if replicas > 0:
        _wanted[redis] = Replication(replicas, max(1, int(timeout_s * 1000)))
    else:
        _wanted.pop(redis, None)


async def execute_replicated(
    redis: aioredis.Redis, pipe: Pipeline, *, keys: Iterable[str], raise_on_error: bool = True
) -> list[Any]:
    """Run `pipe` (built on `redis`, writing to `keys`) and, when the client wants replicas, wait until they
    have its writes. The results are the pipeline's own, without the `WAIT`s."""
    wanted = _wanted.get(redis)
    if wanted is None:
        results: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
        return results
    from redis.asyncio.cluster import RedisCluster

    if isinstance(redis, RedisCluster):
        nodes = {node.name: node for node in (redis.get_node_from_key(key) for key in keys)}
        targets: list[Any] = list(nodes.values())
    else:
        targets = [None]
    for node in targets:
        options = {"target_nodes": node} if node is not None else {}
        pipe.execute_command("WAIT", wanted.replicas, wanted.timeout_ms, **options)
    # A WAIT that fails (sent to a node that just became a replica in a failover) is an outage, not a bug.
    results = await pipe.execute(raise_on_error=False)
    acked = results[len(results) - len(targets) :]
    for count in acked:
        if isinstance(count, BaseException) or int(count) < wanted.replicas:
            raise ServiceUnavailable(
                f"Redis writes reached {count!r} of {wanted.replicas} replicas within {wanted.timeout_ms} ms",
                dependency=REDIS,
            )
    own = results[: len(results) - len(targets)]
    if raise_on_error:
        for result in own:
            if isinstance(result, BaseException):
                raise result
    return own

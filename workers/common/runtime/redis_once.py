"""Redis clients that send each command once: the kernel's retry decides what to send again, never redis-py.

redis-py retries a command or a whole pipeline on its own after a lost connection (three times by default).
For a write that is wrong: the lost reply may belong to a write Redis ran, and sending it again runs it
twice. The cluster pipeline is worse: when one node cannot be reached it sends again every command of the
pipeline whose reply was falsy, so a script that ran on a healthy node and answered 0 (the pusher's append,
which answers how many users became due) runs there a second time and every entry it wrote is doubled.

So the clients of `workers.common.runtime.connections.redis_client` have no retries of their own.
A failed call raises (`workers.common.runtime.faults` calls it a Redis outage) and the room's retry
(`workers.common.runtime.retry`) calls it again, knowing what a repeat means: the pusher first asks which
events a shard has, a create is recognised by its producer id, a settle is idempotent.

The cluster client loses one thing with its retries: after a connection error it read the cluster's layout
again before the next try. `OnceRedisCluster` keeps that: a command failing for a lost node already marks the
layout stale, and its pipeline does the same when a node cannot be reached, so the next call, the retry,
goes to the master promoted in the lost one's place.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster


class OnceClusterPipeline(ClusterPipeline):  # type: ignore[misc]  # redis-py is untyped here (pyproject)
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        try:
            results: list[Any] = await super().execute(raise_on_error, allow_redirections)
            return results
        except RedisCluster.ERRORS_ALLOW_RETRY:
            await self.cluster_client.aclose()  # read the layout again on the next call
            raise


class OnceRedisCluster(RedisCluster):  # type: ignore[misc]
    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused there, with redis-py's own message
        return OnceClusterPipeline(self, transaction)

"""The whole pipeline on a Redis Cluster (3 masters, 3 replicas): the same story, then a master killed mid-run."""

from __future__ import annotations

import pytest

from tests.e2e import test_delivery
from tests.e2e.conftest import DEVICES, Run, assert_each_review_shown_once
from tests.support.redis_cluster import RedisCluster
from workers.common.contract.keys import StoreKeys

ON_THE_CLUSTER = pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
BURST = 24


@ON_THE_CLUSTER
async def test_every_device_gets_exactly_one_digest_per_window_on_a_redis_cluster(run: Run) -> None:
    await test_delivery.test_every_device_of_every_user_gets_exactly_one_digest_per_window_with_exact_counts(run)


@ON_THE_CLUSTER
async def test_kill_9_of_the_master_serving_the_store_loses_nothing_and_no_room_exits(
    run: Run, redis_cluster: RedisCluster
) -> None:
    """The master of a user's store shard (and of a third of the shards) dies while a burst is on its way;
    its replica is promoted, every room rides it out (the fixture asserts each exits 0 when stopped), and every
    review reaches every device of its users in exactly one digest: the rooms wait for a replica to have each
    write they act on (NOTIFIER_REDIS_WAIT_REPLICAS=1), so the failover loses none of them."""
    await run.wait_every_device(await run.round(BURST))
    during = await run.round(BURST)
    store = StoreKeys(run.session.keys.stream)
    victim = redis_cluster.kill_master_of(store.seq(store.shard_of(DEVICES[0][1])))
    while_alone = await run.round(BURST)  # the promoted master has no replica yet: its writes wait for one
    redis_cluster.restart(victim)  # as an orchestrator restarts a killed pod: back as the new master's replica
    after = await run.round(BURST)
    await run.wait_every_device([*during, *while_alone, *after])
    await run.wait_drained()
    assert await run.session.wait_connected(len(DEVICES)), "devices lost their WebSocket for good"

    await assert_each_review_shown_once(run)

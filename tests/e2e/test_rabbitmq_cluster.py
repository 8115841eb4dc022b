"""The whole pipeline on a 3-node RabbitMQ cluster: a node killed mid-run loses nothing and no room exits."""

from __future__ import annotations

import asyncio

from tests.conftest import ON_THE_RABBIT_CLUSTER
from tests.e2e.conftest import DEVICES, Run, assert_each_review_shown_once
from tests.support.rabbitmq_cluster import RabbitCluster

BURST = 24


@ON_THE_RABBIT_CLUSTER
async def test_kill_9_of_a_rabbitmq_node_mid_run_loses_nothing_and_no_room_exits(
    run: Run, rabbit_cluster: RabbitCluster
) -> None:
    """Every room lists all three nodes in NOTIFIER_AMQP_URL and starts at a random one; a node dies
    (SIGKILL) while a burst is on its way. The rooms on it move to another node, the quorum queues keep every
    confirmed message, and every review reaches every device of its users in exactly one digest; the fixture
    asserts every room exits 0 when stopped."""
    await run.wait_every_device(await run.round(BURST))
    during = await run.round(BURST)
    # A node the rooms may be on, not the one the test's own publisher uses: the load generator is no room and
    # does not ride out a broker node's death (the rooms do: that is what this test is about).
    publishing_on = run.session.amqp.url.port
    victim = next(node for node in rabbit_cluster.nodes if node.port != publishing_on)
    rabbit_cluster.kill(victim)
    try:
        while_down = await run.round(BURST)
        await run.wait_every_device([*during, *while_down])
    finally:
        await asyncio.to_thread(rabbit_cluster.restart, victim)  # the session's next test gets 3 nodes
    after = await run.round(BURST)
    await run.wait_every_device(after)
    await run.wait_drained()
    assert await run.session.wait_connected(len(DEVICES)), "devices lost their WebSocket for good"

    await assert_each_review_shown_once(run)

"""Two controller replicas with kopf peering: one works, the other stands by and takes over."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import free_port
from tests.controller.conftest import Cluster
from tests.controller.test_controller import SPEC
from tests.support.waiting import eventually


async def test_standby_replica_stays_idle_until_the_active_one_exits(
    cluster: Cluster, controller: Any, stream: str
) -> None:
    peering = f"notifier-{uuid.uuid4().hex[:6]}"
    await cluster.create_peering(peering)
    active = controller(peering=peering, priority=200)
    # The standby cannot reach Redis: had it reconciled anything, RedisUnavailable would show.
    standby = controller(peering=peering, priority=100, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    await active.__aenter__()
    try:
        await eventually(lambda: cluster.peers(peering), what="the active replica's keep-alive")
        async with standby:
            await eventually(lambda: _peer_count(cluster, peering, 2), what="both keep-alives")
            await cluster.create_ready(stream, SPEC, what="Ready=True from the active replica")
            await cluster.patch(stream, {"spec": {"digest": {"windowSeconds": 5}}})
            await eventually(lambda: _observed(cluster, stream), what="the update handled")
            events_while_both = await cluster.events(stream)

            await active.__aexit__(None, None, None)
            active = None
            await eventually(lambda: _peer_count(cluster, peering, 1), what="the active replica's goodbye")
            taken_over = await eventually(
                lambda: cluster.ready(stream, status="False", reason="RedisUnavailable"),
                what="the standby reconciling after the takeover",
            )
    finally:
        if active is not None:
            await active.__aexit__(None, None, None)

    assert not [e for e in events_while_both if e["reason"] == "RedisUnavailable"]
    assert taken_over["status"]["brands"] == 2  # what the active replica loaded stays described


async def _peer_count(cluster: Cluster, peering: str, count: int) -> bool:
    return len(await cluster.peers(peering)) == count


async def _observed(cluster: Cluster, name: str) -> dict[str, Any] | None:
    obj = await cluster.get(name)
    return obj if obj and obj["status"].get("observedGeneration") == obj["metadata"]["generation"] else None

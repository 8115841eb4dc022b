"""`python -m workers.controller` as Kubernetes runs it: ops port, readiness, reconcile, SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path

import redis.asyncio as aioredis

from tests.conftest import REDIS_URL, free_port
from tests.controller.conftest import Cluster
from tests.controller.test_controller import SPEC
from tests.support.metrics import sample
from tests.support.processes import start_room
from workers.common.contract.keys import BusKeys
from workers.common.runtime.mapping_store import read_mapping


async def test_controller_process_serves_ops_reconciles_and_exits_cleanly_on_sigterm(
    cluster: Cluster, redis: aioredis.Redis, stream: str, owned_streams: list[str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "NOTIFIER_REDIS_URL": REDIS_URL,
        "NOTIFIER_CONTROLLER_NAMESPACES": cluster.namespace,
        "NOTIFIER_CONTROLLER_PEERING": "",
    }
    room = start_room("controller", env=env, log_dir=tmp_path, ops_port=free_port())
    try:
        await room.wait_ready()
        await cluster.create_ready(stream, SPEC)
        metrics = await room.metrics()
        mapping = await read_mapping(redis, keys=BusKeys(stream))
    finally:
        code = room.terminate()
        await cluster.remove_all()

    assert code == 0, room.log
    assert "controller stopped after" in room.log
    assert sample("notifier_controller_reconciles_total", {"outcome": "synced"}, text=metrics) >= 1
    assert mapping.brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}

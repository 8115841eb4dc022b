"""The controller against a Kubernetes API (KMock, or a real cluster with KUBECONFIG) and a real Redis."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.controller.conftest import Cluster, eventually
from workers.common.keys import BusKeys, ControllerKeys
from workers.common.mapping import read_mapping, read_settings

SPEC: dict[str, Any] = {
    "brands": {"Brand1": ["1", "2"], "Brand2": ["4"]},
    "digest": {"windowSeconds": 30, "maxItems": 100},
    "monitor": {"staleAfterSeconds": 20, "intervalSeconds": 10},
}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


async def test_created_stream_is_loaded_into_redis_and_reported_ready(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    async with controller():
        await cluster.create(stream, SPEC)
        obj = await eventually(lambda: cluster.ready(stream), what="Ready=True")
        mapping = await read_mapping(redis, keys=BusKeys(stream))
        settings = await read_settings(redis, keys=BusKeys(stream))
        events = await eventually(lambda: cluster.events(stream), what="a Synced event")

    assert mapping.brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}
    assert settings.window_s == 30
    assert settings.max_items == 100
    assert obj["status"]["brands"] == 2
    assert obj["status"]["users"] == 3
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert ready_condition(obj)["reason"] == "Synced"
    assert "notifier.io/mapping" in obj["metadata"]["finalizers"]
    assert await redis.hget(ControllerKeys().streams, stream) == f"{cluster.namespace}/{stream}"  # type: ignore[misc]
    assert {"type": "Normal", "reason": "Synced"}.items() <= events[0].items()

"""The chart's pre-delete hook (workers.controller.uninstall) against KMock and a running controller.

`helm uninstall` runs the hook before it deletes anything; the hook returns only once the controller has
released the release's streams, so the controller still has its RBAC when it patches the finalizer away.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import redis.asyncio as aioredis

from tests.controller.conftest import Cluster
from tests.controller.test_controller import SPEC
from tests.support.processes import ROOT
from tests.support.waiting import eventually
from workers.common.contract.keys import BusKeys, ControllerKeys
from workers.common.runtime.mapping_store import read_mapping
from workers.controller import uninstall
from workers.controller.main import FINALIZER

HELM_LABELS = {"app.kubernetes.io/instance": "rel", "app.kubernetes.io/managed-by": "Helm"}


async def test_the_hook_returns_once_the_controller_has_released_the_release_streams(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str, owned_streams: list[str]
) -> None:
    other = f"{stream}-other"
    owned_streams.append(other)
    async with controller():
        await cluster.create(stream, SPEC, labels=HELM_LABELS)
        await cluster.create(other, SPEC, labels={**HELM_LABELS, "app.kubernetes.io/instance": "another"})
        for name in (stream, other):
            await eventually(lambda name=name: cluster.ready(name), what=f"{name} Ready")
        deleted = await asyncio.to_thread(
            uninstall.delete_and_wait,
            cluster.custom,
            namespace=cluster.namespace,
            release="rel",
            timeout_s=20,
            poll_s=0.05,
        )
        # What Helm sees when the hook returns: the release's stream gone and its mapping released.
        gone = await cluster.gone(stream)
        owner = await redis.hget(ControllerKeys().streams, stream)  # type: ignore[misc]
        mapping_keys = await redis.exists(BusKeys(stream).map_current, BusKeys(stream).settings)
        survivor = await cluster.get(other)

    assert deleted == [stream]
    assert gone
    assert owner is None
    assert mapping_keys == 0
    assert survivor is not None
    assert (await read_mapping(redis, keys=BusKeys(other))).version


async def test_the_hook_fails_naming_the_streams_no_controller_released(
    cluster: Cluster, controller: Any, stream: str
) -> None:
    await cluster.create(stream, SPEC, labels=HELM_LABELS, finalizers=[FINALIZER])
    hook = [sys.executable, "-m", "workers.controller.uninstall", "--namespace", cluster.namespace, "--release", "rel"]
    result = await asyncio.to_thread(
        subprocess.run, [*hook, "--timeout", "0.5"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    held = await cluster.get(stream)

    assert result.returncode == 1, result.stdout + result.stderr
    assert stream in result.stdout
    assert "helm uninstall" in result.stdout
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]

"""The controller without a Kubernetes API: its Redis side against a real Redis, its settings and kopf's."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from workers.common.contract.errors import InvalidMapping, ServiceUnavailable
from workers.common.contract.keys import BusKeys
from workers.common.runtime.mapping_store import read_mapping
from workers.common.runtime.settings import CommonSettings
from workers.controller.main import operator_settings
from workers.controller.reconcile import Owner, Reconciler
from workers.controller.settings import ControllerSettings

SPEC = {"brands": {"Brand1": ["1", "2"], "Brand2": ["4"]}}


async def test_reapplying_the_same_spec_writes_nothing_new(
    redis: aioredis.Redis, stream: str, owned_streams: list[str]
) -> None:
    reconciler = Reconciler(redis, settings=CommonSettings())
    owner = Owner("ns", stream)

    first = await reconciler.apply(owner, SPEC)
    second = await reconciler.apply(owner, SPEC)

    assert first.changed
    assert not second.changed
    assert second.version == first.version
    assert (await read_mapping(redis, keys=BusKeys(stream))).version == first.version


async def test_object_name_that_cannot_be_a_stream_name_is_invalid(redis: aioredis.Redis) -> None:
    reconciler = Reconciler(redis, settings=CommonSettings())

    with pytest.raises(InvalidMapping, match="not a valid stream name"):
        await reconciler.apply(Owner("ns", "Reviews.v2"), SPEC)


async def test_unreachable_redis_is_a_temporary_error() -> None:
    unreachable = aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=1)
    reconciler = Reconciler(unreachable, settings=CommonSettings())
    try:
        with pytest.raises(ServiceUnavailable):
            await reconciler.apply(Owner("ns", "reviews"), SPEC)
    finally:
        await unreachable.aclose()


def test_namespaces_setting_lists_named_namespaces_or_means_the_whole_cluster() -> None:
    named = ControllerSettings(namespaces="team-a, team-b,")
    everywhere = ControllerSettings(namespaces="")

    assert named.namespace_list == ["team-a", "team-b"]
    assert not named.clusterwide
    assert everywhere.namespace_list == []
    assert everywhere.clusterwide


def test_kopf_needs_no_cluster_scoped_reads_and_keeps_its_bookkeeping_under_notifier_io() -> None:
    config = operator_settings(ControllerSettings())

    assert config.scanning.disabled  # no namespaces/CRD watches: a namespaced Role is enough
    assert config.persistence.finalizer == "notifier.io/mapping"
    assert config.persistence.progress_storage.prefix == "notifier.io"
    assert config.persistence.diffbase_storage.prefix == "notifier.io"

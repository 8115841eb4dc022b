"""The controller against a Kubernetes API (KMock, or a real cluster with KUBECONFIG) and a real Redis."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.conftest import free_port
from tests.controller.conftest import Cluster
from tests.controller.emulator import BackgroundServers
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from workers.common.contract.keys import BusKeys, ControllerKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_mapping, read_settings, write_mapping
from workers.controller.metrics import RECONCILES, RELEASES, STATUS_REFRESHES

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
        obj = await cluster.create_ready(stream, SPEC)
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


async def test_updated_spec_swaps_the_mapping_and_settings(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    async with controller():
        first = await cluster.create_ready(stream, SPEC)
        before = await read_mapping(redis, keys=keys)
        brands = {"Brand1": None, "Brand2": None, "Brand3": ["7", "8"]}  # a merge patch: null removes a key
        await cluster.patch(stream, {"spec": {"brands": brands, "digest": {"windowSeconds": 5}}})

        async def swapped() -> bool:
            return (await read_mapping(redis, keys=keys)).version != before.version

        await eventually(swapped, what="a new mapping version")

        async def observed() -> dict[str, Any] | None:
            obj = await cluster.get(stream)
            return obj if obj and obj["status"].get("observedGeneration") == obj["metadata"]["generation"] else None

        second = await eventually(observed, what="the new generation observed")
        after = await read_mapping(redis, keys=keys)
        settings = await read_settings(redis, keys=keys)

    assert after.brand_users == {"Brand3": ("7", "8")}
    assert after.user_brands == {"7": ("Brand3",), "8": ("Brand3",)}
    assert settings.window_s == 5
    assert settings.max_items == 100  # untouched fields keep their values
    assert second["metadata"]["generation"] > first["metadata"]["generation"]
    assert second["status"]["brands"] == 1
    assert second["status"]["users"] == 2
    assert ready_condition(second)["status"] == "True"
    assert ready_condition(second)["lastTransitionTime"] == ready_condition(first)["lastTransitionTime"]


async def test_user_twice_in_a_brand_is_reported_invalid_without_retries(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    invalid = {"brands": {"Brand1": ["1", "1"]}}
    async with controller(status_refresh_s=0.2) as room:
        await cluster.create(stream, invalid)
        obj = await eventually(
            lambda: cluster.ready(stream, status="False", reason="InvalidSpec"), what="Ready=False InvalidSpec"
        )
        events = await eventually(lambda: cluster.events(stream), what="a warning event")
        attempts = RECONCILES.labels(outcome="invalid")._value.get()
        # The findings timer runs independently of the failed handler; once it has refreshed the status
        # twice, a retrying reconcile would have had the same time to run again.
        await redis.hset(BusKeys(stream).findings, mapping={"stale_users": "1", "invalid_users": "0"})  # type: ignore[misc]
        await eventually(lambda: _status_field(cluster, stream, "staleUsers", 1), what="a findings refresh")
        await redis.hset(BusKeys(stream).findings, mapping={"stale_users": "2"})  # type: ignore[misc]
        await eventually(lambda: _status_field(cluster, stream, "staleUsers", 2), what="a second findings refresh")
        attempts_later = RECONCILES.labels(outcome="invalid")._value.get()
        while_invalid = await read_mapping(redis, keys=BusKeys(stream))

        await cluster.patch(stream, {"spec": {"brands": {"Brand1": ["1", "2"]}}})
        fixed = await eventually(lambda: cluster.ready(stream), what="Ready=True after the fix")
        assert not room.crashed.is_set()

    assert "appears twice" in ready_condition(obj)["message"]
    assert while_invalid.version == ""  # nothing was written
    assert any(e["type"] == "Warning" and e["reason"] == "InvalidSpec" for e in events)
    assert attempts_later == attempts
    assert fixed["status"]["users"] == 2


async def _status_field(cluster: Cluster, name: str, field: str, value: int) -> bool:
    obj = await cluster.get(name)
    return bool(obj) and (obj or {}).get("status", {}).get(field) == value


async def test_findings_of_the_monitor_are_mirrored_into_the_status(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    findings = BusKeys(stream).findings
    async with controller(status_refresh_s=0.2):
        await cluster.create_ready(stream, SPEC)
        await redis.hset(  # type: ignore[misc]
            findings,
            mapping={"stale_users": "3", "invalid_users": "2", "backlog_entries": "40", "updated_at": "1"},
        )
        await eventually(lambda: _status_field(cluster, stream, "staleUsers", 3), what="staleUsers=3")
        obj = await eventually(lambda: _status_field(cluster, stream, "invalidUsers", 2), what="invalidUsers=2")
        await redis.hset(findings, mapping={"stale_users": "0", "invalid_users": "0"})  # type: ignore[misc]
        await eventually(lambda: _status_field(cluster, stream, "staleUsers", 0), what="staleUsers back to 0")
        cleared = await cluster.get(stream)

    assert obj
    assert cleared is not None
    assert cleared["status"]["invalidUsers"] == 0
    assert ready_condition(cleared)["status"] == "True"


async def test_deleting_the_object_removes_the_mapping_and_releases_the_finalizer(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    async with controller():
        await cluster.create_ready(stream, SPEC)
        assert await redis.exists(keys.map_current, keys.settings) == 2
        await cluster.delete(stream)
        await eventually(lambda: cluster.gone(stream), what="the object to be deleted")

    assert await redis.exists(keys.map_current, keys.settings, keys.map_versions) == 0
    assert not await redis.sismember(keys.streams, stream)  # type: ignore[misc]
    assert await redis.hget(ControllerKeys().streams, stream) is None  # type: ignore[misc]


async def test_unreachable_redis_is_reported_and_the_stream_recovers_when_it_is_back(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str, servers: BackgroundServers
) -> None:
    port = free_port()
    proxy = TcpProxy("127.0.0.1", 6379, port=port)
    async with controller(redis_url=f"redis://127.0.0.1:{port}/0"):
        await cluster.create(stream, SPEC)
        down = await eventually(
            lambda: cluster.ready(stream, status="False", reason="RedisUnavailable"), what="RedisUnavailable"
        )
        events = await eventually(lambda: cluster.events(stream), what="a warning event")
        await servers.arun(proxy.start())
        try:
            up = await eventually(lambda: cluster.ready(stream), what="Ready=True once Redis is back")
        finally:
            await servers.arun(proxy.stop())
    mapping = await read_mapping(redis, keys=BusKeys(stream))

    assert any(e["type"] == "Warning" and e["reason"] == "RedisUnavailable" for e in events)
    assert ready_condition(down)["lastTransitionTime"] <= ready_condition(up)["lastTransitionTime"]
    assert ready_condition(up)["reason"] == "Synced"
    assert mapping.brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}


async def test_stream_deleted_while_the_controller_was_down_is_swept_at_startup(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str, owned_streams: list[str]
) -> None:
    kept, loaded_by_hand, elsewhere = f"{stream}-kept", f"{stream}-file", f"{stream}-other"
    owned_streams.extend([kept, loaded_by_hand, elsewhere])
    async with controller():
        await cluster.create(stream, SPEC)
        await cluster.create(kept, SPEC)
        await eventually(lambda: cluster.ready(stream), what="the first stream Ready")
        await eventually(lambda: cluster.ready(kept), what="the second stream Ready")
    # While no controller runs: the object goes without its finalizer (as a forced namespace deletion does),
    # a stream is loaded by `notifier mapping load`, and another namespace's controller owns a third one.
    await cluster.strip_finalizers(cluster.namespace, stream)
    await cluster.delete(stream)
    spec = parse_spec(SPEC)
    await write_mapping(redis, keys=BusKeys(loaded_by_hand), spec=spec)
    await write_mapping(redis, keys=BusKeys(elsewhere), spec=spec)
    await redis.hset(ControllerKeys().streams, elsewhere, f"another-namespace/{elsewhere}")  # type: ignore[misc]

    async with controller() as room:

        async def swept() -> bool:
            return room.swept

        await eventually(swept, what="the startup sweep")
        removed = room.orphans_removed

    assert removed == [stream]
    assert not await redis.exists(BusKeys(stream).map_current, BusKeys(stream).settings)
    assert await redis.hget(ControllerKeys().streams, stream) is None  # type: ignore[misc]
    for survivor in (kept, loaded_by_hand, elsewhere):
        assert (await read_mapping(redis, keys=BusKeys(survivor))).version, survivor


async def test_same_name_in_a_second_namespace_is_refused_and_leaves_the_first_mapping_alone(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    second_namespace = f"{cluster.namespace}-b"
    await cluster.ensure_namespace(second_namespace)
    other_spec = {"brands": {"Other": ["9"]}}
    async with controller(namespaces=f"{cluster.namespace},{second_namespace}"):
        await cluster.create_ready(stream, SPEC, what="the first object Ready")
        await cluster.create(stream, other_spec, namespace=second_namespace)
        refused = await eventually(
            lambda: cluster.ready(stream, status="False", reason="StreamConflict", namespace=second_namespace),
            what="the second object refused",
        )
        await cluster.delete(stream, namespace=second_namespace)
        await eventually(lambda: cluster.gone(stream, namespace=second_namespace), what="the second object deleted")
        mapping = await read_mapping(redis, keys=BusKeys(stream))

    assert f"{cluster.namespace}/{stream}" in ready_condition(refused)["message"]
    assert mapping.brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}
    assert await redis.hget(ControllerKeys().streams, stream) == f"{cluster.namespace}/{stream}"  # type: ignore[misc]


async def test_object_deleted_while_redis_is_down_waits_for_redis_before_letting_go(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str, servers: BackgroundServers
) -> None:
    port = free_port()
    proxy = TcpProxy("127.0.0.1", 6379, port=port)
    await servers.arun(proxy.start())
    try:
        async with controller(redis_url=f"redis://127.0.0.1:{port}/0"):
            await cluster.create_ready(stream, SPEC)
            await servers.arun(proxy.stop())
            failed_before = RELEASES.labels(outcome="unavailable")._value.get()
            await cluster.delete(stream)

            async def release_failed() -> bool:
                return RELEASES.labels(outcome="unavailable")._value.get() > failed_before

            await eventually(release_failed, what="a release attempt failing on Redis")
            held = await cluster.get(stream)
            await servers.arun(proxy.start())
            await eventually(lambda: cluster.gone(stream), what="the object released once Redis is back")
    finally:
        await servers.arun(proxy.stop())

    assert held is not None
    assert held["metadata"]["deletionTimestamp"]
    assert "notifier.io/mapping" in held["metadata"]["finalizers"]
    assert await redis.exists(BusKeys(stream).map_current, BusKeys(stream).settings) == 0


async def test_a_refused_object_shows_no_figures_of_the_stream_it_does_not_own(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str
) -> None:
    second_namespace = f"{cluster.namespace}-b"
    await cluster.ensure_namespace(second_namespace)
    await redis.hset(BusKeys(stream).findings, mapping={"stale_users": "3", "invalid_users": "2"})  # type: ignore[misc]
    async with controller(namespaces=f"{cluster.namespace},{second_namespace}"):
        await cluster.create_ready(stream, SPEC, what="the first object Ready")

        async def owner_figures() -> dict[str, Any] | None:
            obj = await cluster.get(stream)
            return obj if obj and obj["status"].get("staleUsers") == 3 else None

        owner = await eventually(owner_figures, what="the owner's staleUsers from the findings")
        skipped_before = STATUS_REFRESHES.labels(outcome="not_owned")._value.get()
        await cluster.create(stream, {"brands": {"Other": ["9"]}}, namespace=second_namespace)
        await eventually(
            lambda: cluster.ready(stream, status="False", reason="StreamConflict", namespace=second_namespace),
            what="the second object refused",
        )

        async def refreshes_skipped() -> bool:
            return STATUS_REFRESHES.labels(outcome="not_owned")._value.get() >= skipped_before + 2

        await eventually(refreshes_skipped, what="two status refreshes of the refused object")
        refused = await cluster.get(stream, namespace=second_namespace)

    assert owner["status"]["invalidUsers"] == 2
    assert refused is not None
    for figure in ("brands", "users", "staleUsers", "invalidUsers"):
        assert figure not in refused["status"], figure


async def test_a_namespaced_controller_leaves_other_namespaces_objects_alone(
    cluster: Cluster, controller: Any, redis: aioredis.Redis, stream: str, owned_streams: list[str]
) -> None:
    other_namespace = f"{cluster.namespace}-other"
    await cluster.ensure_namespace(other_namespace)
    theirs = f"{stream}-theirs"
    owned_streams.append(theirs)
    # Another release's controller serves `other_namespace` and owns the stream of its object.
    await write_mapping(redis, keys=BusKeys(theirs), spec=parse_spec(SPEC))
    await redis.hset(ControllerKeys().streams, theirs, f"{other_namespace}/{theirs}")  # type: ignore[misc]
    await cluster.create(theirs, {"brands": {"Other": ["9"]}}, namespace=other_namespace)
    async with controller(namespaces=cluster.namespace) as room:
        await cluster.create_ready(stream, SPEC, what="the served namespace's object Ready")

        async def swept() -> bool:
            return room.swept

        await eventually(swept, what="the startup sweep")
        untouched = await cluster.get(theirs, namespace=other_namespace)
        await cluster.delete(theirs, namespace=other_namespace)
        gone_at_once = await cluster.gone(theirs, namespace=other_namespace)
        mine = await cluster.ready(stream)

    assert untouched is not None
    assert "finalizers" not in untouched["metadata"] or not untouched["metadata"]["finalizers"]
    assert not untouched.get("status")
    assert gone_at_once
    assert mine is not None
    assert (await read_mapping(redis, keys=BusKeys(theirs))).brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}
    owner = await redis.hget(ControllerKeys().streams, theirs)  # type: ignore[misc]
    assert owner == f"{other_namespace}/{theirs}"

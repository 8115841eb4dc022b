"""Every room's image, run read-only on the host network against the local Redis and RabbitMQ.

One story through the containers: a review event published -> the pusher fans it out -> the puller's digest
created in core -> received on a WebSocket device from ws-delivery -> acknowledged -> listed as delivered by
core. Beside it the monitor and the cleaner run, and the controller reconciles a NotificationStream served by
KMock. Then every container gets SIGTERM and must exit 0 within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import free_port
from tests.conftest import room_env as env_for
from tests.controller.conftest import Cluster
from tests.images.containers import ROOMS, RUN_FLAGS, Container, engine, image, run, start
from tests.pusher.test_pusher import event, publish
from tests.support.processes import clean_env, notifier
from tests.support.tokens import SECRET, bearer, token
from tests.support.waiting import eventually
from tools.chart import RELEASE, by_name, of_kind, render
from workers.client.ws import Listener, Received
from workers.common.contract import paths
from workers.common.contract.keys import ControllerKeys
from workers.common.contract.names import Topology
from workers.common.contract.wire import DIGEST_CONTENT_TYPE, ReviewEvent

GRACE_S = 10.0
ROLE_PRODUCE = "notifier_produce"


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    for container in started:
        container.remove()


@pytest.fixture
def room_env(stream: str, amqp_namespace: str) -> dict[str, str]:
    return env_for(stream, amqp_namespace, NOTIFIER_JWT_SECRET=SECRET, NOTIFIER_SHUTDOWN_TIMEOUT_S="5")


@contextlib.asynccontextmanager
async def device(*, ws_url: str, user: str) -> AsyncIterator[asyncio.Queue[Received]]:
    """A WebSocket device of `user` (the client of workers/client, which acknowledges every frame)."""
    received: asyncio.Queue[Received] = asyncio.Queue()
    async with httpx.AsyncClient(timeout=10.0) as http:
        listener = Listener(ws_url=ws_url, token=token(user), http=http)

        async def listen() -> None:
            async for item in listener.notifications():
                received.put_nowait(item)

        task = asyncio.create_task(listen())
        try:
            await asyncio.wait_for(listener.connected.wait(), 30)
            yield received
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def delivered_ids(core: Container, user: str) -> list[str]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        response = await http.get(core.http_url + paths.DELIVERED, headers=bearer(user))
    response.raise_for_status()
    body = response.json()
    items = body if isinstance(body, list) else body.get("notifications", body.get("items", []))
    return [str(item["id"]) for item in items]


def start_rooms(
    containers: list[Container], *, env: Mapping[str, str], cluster: Cluster, kubeconfig: Path
) -> dict[str, Container]:
    """Core first (the puller's sink), then every other room; each on ports of its own."""
    rooms: dict[str, Container] = {}

    def launch(room: str, extra: Mapping[str, str] | None = None, volumes: Mapping[str, str] | None = None) -> None:
        rooms[room] = start(
            room, env={**env, **(extra or {})}, ops_port=free_port(), http_port=free_port(), volumes=volumes
        )
        containers.append(rooms[room])

    launch("core")
    launch("ws-delivery")
    launch("pusher")
    launch("puller", {"NOTIFIER_CORE_URL": rooms["core"].http_url})
    launch("monitor")
    launch("cleaner")
    launch(
        "controller",
        {
            "KUBECONFIG": "/etc/notifier/kubeconfig",
            "NOTIFIER_CONTROLLER_NAMESPACES": cluster.namespace,
            "NOTIFIER_CONTROLLER_PEERING": "",
        },
        volumes={str(kubeconfig): "/etc/notifier/kubeconfig"},
    )
    return rooms


@pytest.mark.usefixtures("built_images")
@pytest.mark.timeout(300)
async def test_every_room_image_runs_the_story_read_only_and_exits_cleanly_on_sigterm(
    cluster: Cluster,
    stream: str,
    owned_streams: list[str],
    room_env: dict[str, str],
    amqp: AbstractRobustConnection,
    topology: Topology,
    containers: list[Container],
    redis: aioredis.Redis,
    tmp_path: Path,
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    mapping = tmp_path / "mapping.yaml"
    spec = {"brands": {"Brand1": [user]}, "digest": {"windowSeconds": 1}}
    stream_object = {"apiVersion": "notifier.io/v1alpha1", "kind": "NotificationStream", "metadata": {"name": stream}}
    mapping.write_text(yaml.safe_dump({**stream_object, "spec": spec}))
    loaded = notifier("mapping", "load", str(mapping), "--stream", stream, env={**clean_env(), **room_env})
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr

    rooms = start_rooms(containers, env=room_env, cluster=cluster, kubeconfig=tmp_path / "kubeconfig")
    await asyncio.gather(*(room.wait_ready() for room in rooms.values()))
    health = {room: container.healthcheck().returncode for room, container in rooms.items()}
    if "podman" in engine()[0]:
        assert health == dict.fromkeys(rooms, 0)

    reconciled = f"{stream}-k"
    owned_streams.append(reconciled)
    helm_labels = {"app.kubernetes.io/instance": "img", "app.kubernetes.io/managed-by": "Helm"}
    await cluster.create(reconciled, {"brands": {"Brand9": ["9"]}}, labels=helm_labels)
    assert await eventually(lambda: cluster.ready(reconciled), what="the containerised controller's Ready=True")
    hook = await asyncio.to_thread(
        uninstall_hook, release="img", namespace=cluster.namespace, kubeconfig=tmp_path / "kubeconfig"
    )
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert await cluster.gone(reconciled)
    assert await redis.hget(ControllerKeys().streams, reconciled) is None  # type: ignore[misc]

    async with device(ws_url=rooms["ws-delivery"].http_url, user=user) as received:
        await publish(
            amqp,
            topology,
            event("Brand1", "r1"),
            event("Brand1", "r2"),
            event("Brand1", "r3", ReviewEvent.DELETED),
        )
        got = await asyncio.wait_for(received.get(), 60)
        notification = got.notification
        delivered = await eventually(
            lambda: _listed(rooms["core"], user, notification.id), what="core listing the acked digest as delivered"
        )

    digest = json.loads(notification.content)
    assert got.via == "websocket"
    assert notification.content_type == DIGEST_CONTENT_TYPE
    assert (digest["stream"], digest["user"], digest["total"]) == (stream, user, 3)
    assert {k: v for k, v in digest["brands"]["Brand1"].items() if k in ("added", "updated", "deleted")} == {
        "added": 2,
        "updated": 0,
        "deleted": 1,
    }
    assert sorted(digest["brands"]["Brand1"]["review_ids"]) == ["r1", "r2", "r3"]
    assert delivered

    stops = await asyncio.gather(*(asyncio.to_thread(room.stop, grace_s=GRACE_S) for room in rooms.values()))
    logs = {room: container.logs() for room, container in rooms.items()}
    for (room, (code, took)), container_logs in zip(zip(rooms, stops, strict=True), logs.values(), strict=True):
        assert code == 0, f"{room} exited with {code}:\n{container_logs}"
        assert took < GRACE_S, f"{room} took {took:.1f}s to stop:\n{container_logs}"


def uninstall_hook(*, release: str, namespace: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """The chart's pre-delete Job, as rendered, run in the controller image against the test's API server."""
    rendered = render(
        "--set", "stream.create=true", "--set-json", 'stream.brands={"B": ["1"]}', release=release, namespace=namespace
    )
    (job,) = of_kind(rendered, "Job")
    (hook,) = job["spec"]["template"]["spec"]["containers"]
    assert hook["image"] == image("controller")
    command = hook["command"]
    return run(
        "run", "--rm", *RUN_FLAGS, "--env=KUBECONFIG=/etc/notifier/kubeconfig",
        f"--volume={kubeconfig}:/etc/notifier/kubeconfig:ro", "--entrypoint", command[0], hook["image"], *command[1:],
        timeout_s=120,
    )  # fmt: skip


async def _listed(core: Container, user: str, notification_id: str) -> bool:
    return notification_id in await delivered_ids(core, user)


def test_chart_defaults_name_exactly_the_images_make_images_builds() -> None:
    deployments = by_name(render(), "Deployment")
    for room in ROOMS:
        (container,) = deployments[f"{RELEASE}-{room}"]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == image(room)
        assert run("image", "inspect", container["image"]).returncode == 0, container["image"]

"""Fixtures of the controller tests: a Kubernetes API (KMock, or a real cluster) and the controller room.

Without `KUBECONFIG`, every test gets its own KMock-based API server (`emulator.ApiServer`) on 127.0.0.1
and a kubeconfig pointing at it. With `KUBECONFIG` set, the same tests run against that cluster in
namespace `$NOTIFIER_TEST_K8S_NAMESPACE` (default `default`), installing the CRDs when they are missing; no
deployed Notifier controller may serve that namespace, or it would reconcile the tests' objects too.
Objects are created, patched and read through the kubernetes client in both cases, as kubectl would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes
import pytest
import redis.asyncio as aioredis
import yaml

from tests.conftest import REDIS_URL
from tests.controller.emulator import ApiServer, BackgroundServers
from tests.support.rooms import running_room
from tests.support.waiting import eventually
from workers.common.contract.keys import ControllerKeys
from workers.common.contract.streamspec import API_GROUP, API_VERSION
from workers.controller.kube import PLURAL
from workers.controller.main import ControllerRoom
from workers.controller.settings import ControllerSettings

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "helm/notifier/crds"
REAL_CLUSTER = bool(os.environ.get("KUBECONFIG"))


class Cluster:
    """NotificationStreams and events in one namespace, through the kubernetes client (in a thread)."""

    def __init__(self, *, client: kubernetes.client.ApiClient, namespace: str, api: ApiServer | None) -> None:
        self.namespace = namespace
        self.api = api
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self._core = kubernetes.client.CoreV1Api(client)
        self.created: set[tuple[str, str]] = set()
        self.namespaces_created: list[str] = []
        self.peerings: list[str] = []

    async def ensure_namespace(self, name: str) -> None:
        """Create namespace `name` on a real cluster (KMock serves any namespace); removed at the end."""
        if self.api is not None:
            return
        try:
            await asyncio.to_thread(self._core.read_namespace, name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            await asyncio.to_thread(self._core.create_namespace, {"metadata": {"name": name}})
            self.namespaces_created.append(name)

    async def create(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        finalizers: list[str] | None = None,
    ) -> dict[str, Any]:
        namespace = namespace or self.namespace
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
        if finalizers:
            meta["finalizers"] = finalizers
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "NotificationStream",
            "metadata": meta,
            "spec": spec,
        }
        self.created.add((namespace, name))
        created: dict[str, Any] = await asyncio.to_thread(
            self.custom.create_namespaced_custom_object, API_GROUP, API_VERSION, namespace, PLURAL, body
        )
        return created

    async def create_ready(self, name: str, spec: dict[str, Any], *, what: str = "Ready=True") -> dict[str, Any]:
        """Create the object and wait until the controller reports it Ready; the object then."""
        await self.create(name, spec)
        return await eventually(lambda: self.ready(name), what=what)

    async def patch(self, name: str, patch: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object, API_GROUP, API_VERSION, self.namespace, PLURAL, name, patch
        )

    async def delete(self, name: str, *, namespace: str | None = None) -> None:
        await asyncio.to_thread(
            self.custom.delete_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace or self.namespace,
            PLURAL,
            name,
        )

    async def get(self, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object,
                API_GROUP,
                API_VERSION,
                namespace or self.namespace,
                PLURAL,
                name,
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def create_peering(self, name: str) -> None:
        """The KopfPeering object the replicas share (the chart creates it in a real installation)."""
        body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
        try:
            await asyncio.to_thread(
                self.custom.create_namespaced_custom_object, "kopf.dev", "v1", self.namespace, "kopfpeerings", body
            )
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
        self.peerings.append(name)

    async def peers(self, name: str) -> dict[str, Any]:
        """The live peers recorded in the peering object's status: identity -> keep-alive record."""
        peering: dict[str, Any] = await asyncio.to_thread(
            self.custom.get_namespaced_custom_object, "kopf.dev", "v1", self.namespace, "kopfpeerings", name
        )
        return {peer: record for peer, record in (peering.get("status") or {}).items() if record}

    async def gone(self, name: str, *, namespace: str | None = None) -> bool:
        return await self.get(name, namespace=namespace) is None

    async def events(self, name: str) -> list[dict[str, Any]]:
        """Events about the object `name` (filtered here: KMock ignores field selectors)."""
        listing = await asyncio.to_thread(self._core.list_namespaced_event, self.namespace)
        return [
            {"type": e.type, "reason": e.reason, "message": e.message}
            for e in listing.items
            if e.involved_object is not None and e.involved_object.name == name
        ]

    async def ready(
        self, name: str, *, status: str = "True", reason: str | None = None, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object once its Ready condition has `status` (and `reason`), else None."""
        obj = await self.get(name, namespace=namespace)
        for condition in ((obj or {}).get("status") or {}).get("conditions") or ():
            if condition.get("type") != "Ready" or condition.get("status") != status:
                continue
            if reason is None or condition.get("reason") == reason:
                return obj
        return None

    async def strip_finalizers(self, namespace: str, name: str) -> None:
        with contextlib.suppress(kubernetes.client.ApiException):
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object,
                API_GROUP,
                API_VERSION,
                namespace,
                PLURAL,
                name,
                {"metadata": {"finalizers": None}},
            )

    async def remove_all(self) -> None:
        for namespace, name in self.created:
            await self.strip_finalizers(namespace, name)
            with contextlib.suppress(kubernetes.client.ApiException):
                await asyncio.to_thread(
                    self.custom.delete_namespaced_custom_object, API_GROUP, API_VERSION, namespace, PLURAL, name
                )
        for peering in self.peerings:
            with contextlib.suppress(kubernetes.client.ApiException):
                await asyncio.to_thread(
                    self.custom.delete_namespaced_custom_object,
                    "kopf.dev",
                    "v1",
                    self.namespace,
                    "kopfpeerings",
                    peering,
                )
        for namespace in self.namespaces_created:
            with contextlib.suppress(kubernetes.client.ApiException):
                await asyncio.to_thread(self._core.delete_namespace, namespace)


def declare_resources(api: ApiServer) -> None:
    with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        api.resources.load_bundled()
    api.resources["kopf.dev/v1/kopfpeerings"] = kmock.ResourceInfo(
        kind="KopfPeering", singular="kopfpeering", namespaced=True, verbs={"list", "watch", "get", "create", "patch"}
    )
    api.resources["kopf.dev/v1/clusterkopfpeerings"] = kmock.ResourceInfo(
        kind="ClusterKopfPeering",
        singular="clusterkopfpeering",
        namespaced=False,
        verbs={"list", "watch", "get", "create", "patch"},
    )
    api.resources[f"{API_GROUP}/{API_VERSION}/{PLURAL}"] = kmock.ResourceInfo(
        kind="NotificationStream",
        singular="notificationstream",
        namespaced=True,
        verbs={"list", "watch", "get", "create", "patch", "delete"},
        shortnames={"nstream"},
        subresources={"status"},
    )


@pytest.fixture
def servers() -> Iterator[BackgroundServers]:
    background = BackgroundServers()
    yield background
    background.close()


@pytest.fixture
def namespace() -> str:
    return os.environ.get("NOTIFIER_TEST_K8S_NAMESPACE", "default") if REAL_CLUSTER else f"ns-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def cluster(
    servers: BackgroundServers, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    if REAL_CLUSTER:
        client = kubernetes.config.new_client_from_config()
        await asyncio.to_thread(_install_crds, client)
        cluster = Cluster(client=client, namespace=namespace, api=None)
        yield cluster
        await cluster.remove_all()
        return

    api, server = await servers.arun(start_api())
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    yield Cluster(client=client, namespace=namespace, api=api)
    client.close()

    await servers.arun(asyncio.wait_for(stop_api(api, server), 10))


async def start_api() -> tuple[ApiServer, kmock.Server]:
    """A KMock-based API server with Notifier's resources."""
    api = ApiServer()
    await api.__aenter__()
    declare_resources(api)
    server = kmock.Server(api)
    await server.__aenter__()
    return api, server


def write_kubeconfig(path: Path, server: kmock.Server) -> Path:
    """A kubeconfig at `path` for `server`, as kubectl, the kubernetes client and Helm read it."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": str(server.url).rstrip("/")}}],
                "users": [{"name": "kmock", "user": {"token": "kmock"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                "current-context": "kmock",
            }
        )
    )
    return path


async def stop_api(api: ApiServer, server: kmock.Server) -> None:
    await server.__aexit__(None, None, None)
    await api.__aexit__(None, None, None)


def _install_crds(client: kubernetes.client.ApiClient) -> None:
    """The chart's CRDs, where the cluster lacks them (NotificationStream, kopf peering)."""
    extensions = kubernetes.client.ApiextensionsV1Api(client)
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            _install_crd(extensions, crd)


def _install_crd(extensions: kubernetes.client.ApiextensionsV1Api, crd: dict[str, Any]) -> None:
    name = crd["metadata"]["name"]
    try:
        extensions.read_custom_resource_definition(name)
        return
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
    extensions.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)


@pytest.fixture
async def owned_streams(redis: aioredis.Redis, stream: str) -> AsyncIterator[list[str]]:
    """Extra stream names a test may use; their keys and controller records are removed afterwards."""
    extra: list[str] = []
    yield extra
    for name in [stream, *extra]:
        keys = [key async for key in redis.scan_iter(match=f"nf:{name}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.srem("nf:streams", name)  # type: ignore[misc]
        await redis.hdel(ControllerKeys().streams, name)  # type: ignore[misc]


def controller_settings(namespace: str, **overrides: Any) -> ControllerSettings:
    values: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "namespaces": namespace,
        "peering": "",
        "status_refresh_s": 0.3,
        "retry_delay_s": 0.2,
        "max_retry_delay_s": 1.0,
        "redis_timeout_s": 1.0,
        **overrides,
    }
    return ControllerSettings(**values)


def running_controller(settings: ControllerSettings) -> contextlib.AbstractAsyncContextManager[ControllerRoom]:
    """The controller room as `serve_room` runs it (start, then stop intake and drain), minus the signals."""
    return running_room(ControllerRoom(settings))


@pytest.fixture
async def controller(
    cluster: Cluster, namespace: str, owned_streams: list[str]
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[ControllerRoom]]]:
    """Start controllers with `async with controller(**settings) as room:`; objects are removed at the end."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[ControllerRoom]:
        return running_controller(controller_settings(namespace, **overrides))

    yield start
    await cluster.remove_all()

"""A Kubernetes API for the controller's tests: KMock 0.8 plus what kopf relies on and KMock lacks.

KMock's emulator stores objects and serves list and watch, but (0.8):
- assigns no `metadata.resourceVersion` / `uid` / `generation` / `creationTimestamp`: kopf's finalizer
  JSON-patch starts with a `test` of resourceVersion and fails with HTTP 500 without it, and
  `status.observedGeneration` needs a generation that moves when the spec changes;
- ignores `generateName`: every kopf event is posted with it, so the second event answers 409;
- lets `PATCH .../status` change the spec (and a plain PATCH change the status);
- answers a failed JSON-patch `test` with 500 where the API server answers 422 (kopf retries on 422);
- answers lists without `kind`/`apiVersion` (Helm's `lookup` then fails) and names the core group version
  `/v1` in `/api/v1` (Helm then maps no core kind); has no resource versions in lists,
  and ignores `?resourceVersion=` on watch: a watch replays every object
  as ADDED and misses what changed between its list and its subscription to KMock's event bus, so kopf
  can sit waiting for a MODIFIED event that never comes.

`ApiServer` fills these in before KMock handles a write. Still not emulated: label and field selectors,
schema validation and defaulting (the CRD's defaults are not applied; the controller applies its own).
`BackgroundServers` runs KMock (and other test servers) on a loop in a thread of its own, so that their
never-ending watch streams are not counted among the controller's tasks when kopf shuts down.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import jsonpatch
import kmock
from kmock._internal import dicts, enums, k8s

T = TypeVar("T")


class ApiServer(kmock.KubernetesEmulator):  # type: ignore[misc]
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.version = 0

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    async def _serve_list(self, request: Any) -> Any:
        listing = await super()._serve_list(request)
        listing["metadata"]["resourceVersion"] = str(self.version)
        resource = request.resource
        info = self.resources.get(resource)
        if info is not None and info.kind:
            listing.setdefault("kind", f"{info.kind}List")
            group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
            listing.setdefault("apiVersion", group_version)
        return listing

    async def _serve_version(self, request: Any) -> Any:
        """`/api/v1` names its groupVersion `v1`, not `/v1` (Helm's discovery finds no core kind otherwise)."""
        listing = await super()._serve_version(request)
        listing["groupVersion"] = listing["groupVersion"].lstrip("/")
        return listing

    async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
        """Subscribe first, then send what changed after `?resourceVersion=`, then every new event."""
        yield b""
        since = request.params.get("resourceVersion", "")
        since_version = int(since) if since.isdigit() else 0
        bus = self._buses[request.resource]
        mark = await bus.mark()
        try:
            async with self._lock:
                current = [
                    obj.raw
                    for (resource, namespace, _), obj in self.objects.items()
                    if resource == request.resource and not obj.deleted and self._in(request, namespace)
                ]
            for raw in current:
                if int(raw.get("metadata", {}).get("resourceVersion", "0")) > since_version:
                    yield {"type": "ADDED", "object": raw}
            async for event in bus.stream(since=mark):
                if self._in(request, event.get("object", {}).get("metadata", {}).get("namespace")):
                    yield event
        finally:
            await bus.unmark(mark)

    @staticmethod
    def _in(request: Any, namespace: str | None) -> bool:
        return request.namespace is None or namespace == request.namespace

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action == enums.action.CREATE:
            self._on_create(request)
        elif request.resource is not None and request.action == enums.action.UPDATE and request.name:
            self._on_patch(request)
        return await super()._handle(request)

    def _on_create(self, request: Any) -> None:
        meta = request.data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:8]}"
        meta.setdefault("namespace", request.namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = self._next_version()
        meta["generation"] = 1
        meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _on_patch(self, request: Any) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # KMock answers 404
        current = self.objects[key].raw
        status_only = request.subresource == "status"
        if isinstance(request.data, list):
            request.data.append(self._replace_meta("resourceVersion", self._next_version()))
            if not status_only and any(op.get("path", "").startswith("/spec") for op in request.data):
                request.data.append(self._replace_meta("generation", current["metadata"].get("generation", 0) + 1))
            return
        if status_only:
            for field in [f for f in request.data if f != "status"]:
                del request.data[field]
        elif "status" in self.resources[request.resource].subresources:
            request.data.pop("status", None)
        meta = request.data.setdefault("metadata", {})
        meta["resourceVersion"] = self._next_version()
        if "spec" in request.data:
            merged = dicts.merge_patch_dict(current.get("spec") or {}, request.data["spec"])
            if merged != current.get("spec"):
                meta["generation"] = current["metadata"].get("generation", 0) + 1

    async def _render_error(self, exc: Exception) -> Any:
        """A failed JSON-patch `test` (kopf's resourceVersion check) is 422, as from the API server."""
        if isinstance(exc, jsonpatch.JsonPatchTestFailed | jsonpatch.JsonPatchConflict):
            exc = k8s.KubernetesError(status=422, reason="Invalid", message=str(exc))
        return await super()._render_error(exc)

    @staticmethod
    def _replace_meta(field: str, value: Any) -> dict[str, Any]:
        return {"op": "add", "path": f"/metadata/{field}", "value": value}


class BackgroundServers:
    """An event loop in a thread for test servers (KMock, the TCP proxy); `run` awaits a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

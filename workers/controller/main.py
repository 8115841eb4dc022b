"""Wiring of the controller: Redis, the startup sweep and kopf in one loop, beside the kernel's ops server.

kopf runs embedded under the room lifecycle: `kopf.spawn_tasks` starts its root tasks, and the room waits
for them itself rather than through `kopf.run_tasks`, which would treat every task created later in the
loop (the lifecycle's own drain among them) as kopf's and cancel it. SIGTERM reaches the room, whose
`stop_intake` raises kopf's stop flag; running handlers finish, then Redis closes. kopf installs
SIGINT/SIGTERM handlers of its own when it spawns; the room takes them back right after (`Room.take_signals`).

Peering (the HA choice): with `NOTIFIER_CONTROLLER_PEERING` set, replicas share a kopf peering object and
only the live replica with the highest priority works; the priority is drawn at random per process unless
set, since kopf pauses every replica when two share the highest one. The others stand by and take over
when its keep-alive stops (at once on a clean exit, within 60 s after a crash). See docs/kubernetes.md,
"Controller".
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import AsyncExitStack

import kopf

from workers.common.contract.errors import ServiceUnavailable
from workers.common.runtime.aio import Backoff
from workers.common.runtime.connections import redacted, redis_client
from workers.common.runtime.lifecycle import Room, run_room
from workers.common.runtime.retry import retrying
from workers.controller.handlers import Context, build_registry
from workers.controller.kube import list_owners
from workers.controller.metrics import ORPHANS_REMOVED
from workers.controller.reconcile import Owner, Reconciler
from workers.controller.settings import ControllerSettings

log = logging.getLogger(__name__)

FINALIZER = "notifier.io/mapping"
ANNOTATIONS_PREFIX = "notifier.io"


def operator_settings(settings: ControllerSettings) -> kopf.OperatorSettings:
    config = kopf.OperatorSettings()
    config.persistence.finalizer = FINALIZER
    config.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    config.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATIONS_PREFIX)
    config.posting.reporting_component = "notifier-controller"
    # No watching of namespaces and CRDs: the namespaces are named and the CRD is installed before the
    # controller, so it needs no cluster-wide permissions when it serves named namespaces.
    config.scanning.disabled = True
    config.watching.server_timeout = 300
    config.watching.client_timeout = 330
    return config


class ControllerRoom(Room):
    name = "controller"

    def __init__(self, settings: ControllerSettings) -> None:
        super().__init__()
        self.settings = settings
        self.orphans_removed: list[str] = []
        self.swept = False
        self._stop_kopf = asyncio.Event()
        self._kopf_ready = asyncio.Event()

    async def start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        # The handlers log one line per reconcile; kopf's own per-object lines ("Timer ... succeeded" every
        # refresh, for every object) only from warnings up.
        kopf_objects = logging.getLogger("kopf.objects")
        kopf_objects.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        # No connect-and-ping here: while Redis is down the controller still runs and says so in each status.
        redis = redis_client(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        stack.push_async_callback(redis.aclose)
        log.info("controller uses Redis at %s", redacted(settings.redis_url))
        reconciler = Reconciler(redis, settings=settings)
        self.spawn(self._sweep(reconciler), name="controller-sweep")
        self.spawn(self._operator(Context(reconciler=reconciler, settings=settings)), name="controller-kopf")

    async def _operator(self, context: Context) -> None:
        settings = self.settings
        tasks = await kopf.spawn_tasks(
            registry=build_registry(settings),
            settings=operator_settings(settings),
            memo=kopf.Memo(controller=context),
            standalone=not settings.peering,
            peering_name=settings.peering or None,
            priority=settings.priority or random.SystemRandom().randint(1, 2**31 - 1),
            clusterwide=settings.clusterwide,
            namespaces=settings.namespace_list,
            stop_flag=self._stop_kopf,
            ready_flag=self._kopf_ready,
        )
        self.take_signals()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"kopf task {task.get_name()} failed") from task.exception()
        if not self._stop_kopf.is_set():
            raise RuntimeError("kopf stopped by itself")

    async def _sweep(self, reconciler: Reconciler) -> None:
        """Remove mappings whose NotificationStream was deleted while no controller ran; retried until done."""
        settings = self.settings
        scope = set(settings.namespace_list)

        def in_scope(owner: Owner) -> bool:
            return not scope or owner.namespace in scope

        async def existing() -> set[Owner]:
            return await list_owners(settings.namespace_list)

        try:
            self.orphans_removed = await retrying(
                lambda: reconciler.sweep(existing, in_scope=in_scope),
                what="sweep orphaned mappings",
                stopping=self.stopping,
                backoff=Backoff(first_s=settings.retry_delay_s, max_s=settings.max_retry_delay_s),
            )
        except ServiceUnavailable:
            return  # stopped before the sweep could run: the next controller sweeps
        self.swept = True
        ORPHANS_REMOVED.inc(len(self.orphans_removed))
        log.info("startup sweep done: %d orphaned mappings removed", len(self.orphans_removed))

    async def stop_intake(self) -> None:
        await super().stop_intake()
        self._stop_kopf.set()

    def ready(self) -> bool:
        return super().ready() and self._kopf_ready.is_set()

    def summary(self) -> str:
        if not self.swept:
            return "the startup sweep did not complete"
        return f"{len(self.orphans_removed)} orphaned mappings removed at startup"


def run() -> int:
    return run_room(ControllerRoom, settings=ControllerSettings)

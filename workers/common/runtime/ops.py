"""The ops port every process serves: /metrics (Prometheus), /healthz (alive), /readyz (ready for work).

Importing this module adds the dependency metrics of `faults.HEALTH` to the default registry, so every room's
/metrics carries them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workers.common.runtime.healthmetrics import export_health

PATH_METRICS = "/metrics"
PATH_HEALTHZ = "/healthz"
PATH_READYZ = "/readyz"

export_health()


def ops_app(*, ready: Callable[[], bool], registry: CollectorRegistry = REGISTRY) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    return Starlette(
        routes=[
            Route(PATH_METRICS, metrics),
            Route(PATH_HEALTHZ, healthz),
            Route(PATH_READYZ, readyz),
        ]
    )

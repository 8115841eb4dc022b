"""The rooms, declared once: every place that lists them derives from `ROOMS` or is checked against it.

    notifier <command>                     workers/cli (its room commands)
    python -m <package>                    the room's own entry point
    docker.io/notifier/<command> images    Makefile IMAGE_ROOMS (`python3 -m workers.common.contract.rooms`)
    Dockerfile stage <command>             checked by tests/common/test_rooms.py
    chart values key <values_key>          helm/notifier/templates/_helpers.tpl, checked by the same test
    import-linter contracts                pyproject.toml, checked by the same test
    chart checks, image tests              tools/chart.py, tests/images/containers.py

Pure values, importable without any client library: the command line reads it on every start.
"""

from __future__ import annotations

from typing import NamedTuple


class Room(NamedTuple):
    command: str
    """`notifier <command>`, the image name, the chart's component label and object suffix."""
    package: str
    """The room's package: `python -m <package>` runs it."""
    values_key: str
    """The room's key in the chart's values."""
    http: bool = False
    """Serves an HTTP API besides its ops port (a Service, an Ingress, the HTTP port's probes)."""


ROOMS: tuple[Room, ...] = (
    Room("pusher", "workers.pusher", "pusher"),
    Room("puller", "workers.puller", "puller"),
    Room("monitor", "workers.monitor", "monitor"),
    Room("cleaner", "workers.cleaner", "cleaner"),
    Room("core", "workers.core", "core", http=True),
    Room("ws-delivery", "workers.ws_delivery", "wsDelivery", http=True),
    Room("controller", "workers.controller", "controller"),
)

if __name__ == "__main__":
    print(" ".join(room.command for room in ROOMS))

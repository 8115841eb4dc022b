"""Running the room images built by `make images` from tests: host network, read-only root, loopback only.

The engine is `$CONTAINER_ENGINE` when set (the same command `make images` used, e.g. "podman --root DIR
--runroot DIR"), else podman, else docker. Every container gets a tmpfs for /tmp and nothing else writable,
and binds its HTTP and ops ports on 127.0.0.1 of the host.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from tests.support.processes import ROOT
from tests.support.waiting import wait_ready
from workers.common.contract import rooms
from workers.local.stack import RoomAddress

VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
ROOMS = tuple(room.command for room in rooms.ROOMS)
# podman's default ulimits exceed some hosts' hard limits; these are plenty for one room.
RUN_FLAGS = (
    *("--network", "host", "--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777"),
    *("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"),
)


def engine() -> list[str]:
    """The container engine command, or [] when there is none; the one `make images` (.ci/images) built with."""
    if configured := os.environ.get("CONTAINER_ENGINE"):
        return shlex.split(configured)
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
        return ["docker"]
    if shutil.which("podman"):
        return ["podman"]
    return []


def image(room: str) -> str:
    """The name `make images` gives the room's image (fully qualified, the same from docker and podman)."""
    registry = os.environ.get("IMAGE_REGISTRY", "docker.io").rstrip("/")
    return f"{registry}/notifier/{room}:{VERSION}" if registry else f"notifier/{room}:{VERSION}"


def run(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*engine(), *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def missing_images() -> list[str]:
    return [image(room) for room in ROOMS if run("image", "inspect", image(room)).returncode != 0]


@dataclass
class Container(RoomAddress):
    """One room's container, started detached; `stop` sends SIGTERM and measures how long the exit took."""

    def logs(self) -> str:
        result = run("logs", self.name)
        return result.stdout + result.stderr

    def state(self, field: str) -> str:
        return run("inspect", "--format", f"{{{{.State.{field}}}}}", self.name).stdout.strip()

    def exit_code(self) -> int | None:
        """The container's exit code once it stopped, else None."""
        return int(self.state("ExitCode") or -1) if self.state("Running") == "false" else None

    async def wait_ready(self, *, timeout_s: float = 90.0) -> None:
        await wait_ready(
            self.ops_url,
            exit_code=self.exit_code,
            output=self.logs,
            what=self.room,
            timeout_s=timeout_s,
            interval_s=0.2,
        )

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """Run the image's HEALTHCHECK once, as the engine would on its schedule."""
        return run("healthcheck", "run", self.name)

    def stop(self, *, grace_s: float) -> tuple[int, float]:
        """SIGTERM, SIGKILL after `grace_s`; returns the exit code and the seconds the stop took."""
        started = time.monotonic()
        run("stop", "-t", f"{grace_s:g}", self.name, timeout_s=grace_s + 30)
        took = time.monotonic() - started
        return int(self.state("ExitCode") or -1), took

    def remove(self) -> None:
        run("rm", "-f", self.name)


def start(
    room: str, *, env: Mapping[str, str], ops_port: int, http_port: int, volumes: Mapping[str, str] | None = None
) -> Container:
    """Start `room`'s image with `env`, its ports on 127.0.0.1 and `volumes` (host path -> path, read-only)."""
    name = f"nf-{room}-{uuid.uuid4().hex[:8]}"
    settings = {
        **env,
        "NOTIFIER_HTTP_HOST": "127.0.0.1",
        "NOTIFIER_OPS_HOST": "127.0.0.1",
        "NOTIFIER_HTTP_PORT": str(http_port),
        "NOTIFIER_OPS_PORT": str(ops_port),
    }
    flags = [f"--env={key}={value}" for key, value in settings.items()]
    flags += [f"--volume={host}:{inside}:ro" for host, inside in (volumes or {}).items()]
    result = run("run", "--detach", "--name", name, *RUN_FLAGS, *flags, image(room))
    if result.returncode != 0:
        raise AssertionError(f"{room} did not start: {result.stderr}")
    return Container(name, room, ops_port, http_port)

"""Every room of one stream wired together as local processes: replicas, ports and who talks to whom.

Each puller hands its digests to one core replica (puller i to core i mod n), so the core replicas share
the load; devices are spread over the ws_delivery replicas and long-poll the core replicas in turn.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from workers.local.stack import LocalStack, Proc


@dataclass
class Rooms:
    stack: LocalStack
    cores: list[Proc] = field(default_factory=list)
    ws: list[Proc] = field(default_factory=list)
    pushers: list[Proc] = field(default_factory=list)
    pullers: list[Proc] = field(default_factory=list)
    monitors: list[Proc] = field(default_factory=list)

    def groups(self) -> Iterator[list[Proc]]:
        yield from (self.cores, self.ws, self.pushers, self.pullers, self.monitors)

    def core_url(self, index: int) -> str:
        return self.cores[index % len(self.cores)].http_url

    def ws_url(self, index: int) -> str:
        return self.ws[index % len(self.ws)].http_url

    async def restart(self, proc: Proc) -> Proc:
        """Start a stopped or killed replica again on its ports and wait until it is ready."""
        again = self.stack.restart(proc)
        for group in self.groups():
            if proc in group:
                group[group.index(proc)] = again
        await self.stack.wait_ready([again])
        return again

    async def metric(self, group: list[Proc], name: str) -> float:
        """The sum of one metric (every sample of it, all labels) over a group of replicas; 0 where absent."""
        return sum((await metrics_of(group, name)).values())


async def metrics_of(procs: list[Proc], name: str) -> dict[str, float]:
    """Per process name, the sum of every sample of `name` on its /metrics (unreachable processes count 0)."""
    found: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=2.0) as client:
        for proc in procs:
            try:
                text = (await client.get(f"{proc.ops_url}/metrics")).text
            except httpx.TransportError:
                found[proc.name] = 0.0
                continue
            found[proc.name] = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
            )
    return found


def start_rooms(stack: LocalStack, *, replicas: int = 2, extra: Mapping[str, Mapping[str, str]] | None = None) -> Rooms:
    """Start `replicas` of pusher, puller, core and ws_delivery and one monitor; not yet waited for."""
    extra = extra or {}
    rooms = Rooms(stack)
    rooms.cores = [stack.start("core", extra=extra.get("core")) for _ in range(replicas)]
    rooms.ws = [stack.start("ws-delivery", extra=extra.get("ws-delivery")) for _ in range(replicas)]
    rooms.pushers = [stack.start("pusher", extra=extra.get("pusher")) for _ in range(replicas)]
    rooms.pullers = [
        stack.start("puller", extra={**extra.get("puller", {}), "NOTIFIER_CORE_URL": rooms.core_url(i)})
        for i in range(replicas)
    ]
    rooms.monitors = [stack.start("monitor", extra=extra.get("monitor"))]
    return rooms

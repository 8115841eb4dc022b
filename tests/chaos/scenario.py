"""The chaos scenario: a steady review load through every room while ordinary faults hit one at a time.

Every room runs as a real process on loopback, two replicas each of pusher, puller, core and ws_delivery
and one monitor, on a redis-server of the scenario's own (append-only file, `appendfsync everysec`) and on
RabbitMQ through a TCP proxy the scenario can cut. Four devices (`notifier listen`): two users, each with one
device on each ws_delivery replica. While reviews are published at a steady rate (straight to RabbitMQ, as a
review source outside the cluster would), the faults come one after the other, each waited out before the
next:

1. `kill -9` and restart of one replica of each room (pusher, puller, core, ws_delivery, monitor);
2. the broker cut for `broker_cut_s` and restored;
3. Redis `kill -9` and a restart from its append-only file `redis_restart_s` later;
4. Redis `kill -9` and away for `redis_away_s`, while every room's /readyz is watched.

A fault's recovery time is from its end (restart, restore) until every review published before that moment
has reached every device it should. At the end the ledger counts, per device, the reviews lost and the ones
shown twice; every room must still be running (none exited on its own) and stop cleanly.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import AMQP_URL
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from workers.common.contract.streamspec import StreamSpec
from workers.common.runtime.settings import BrokerSettings
from workers.local.ledger import DeviceTally, all_arrived, outcome
from workers.local.rooms import Rooms
from workers.local.session import Session
from workers.local.stack import Proc

BRANDS = {"Brand1": ["1"], "Brand2": ["1", "2"], "Brand3": ["2"]}
USERS = ("1", "2")


@dataclass
class Fault:
    name: str
    lasted_s: float
    recovered_s: float | None
    """From the fault's end until everything published before it reached every device (None: not within
    the wait)."""


@dataclass
class ChaosReport:
    events_in: int = 0
    lost: int = 0
    duplicates: int = 0
    devices: dict[str, DeviceTally] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    exited_on_their_own: list[str] = field(default_factory=list)
    """Room processes found not running at the end (a killed replica was replaced by its restart)."""
    unready_during_redis_outage: dict[str, bool] = field(default_factory=dict)
    """Per room process: whether /readyz answered 503 while Redis was away."""
    ready_after_redis_outage: dict[str, bool] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)


@dataclass
class Chaos:
    work_dir: Path
    rate: float = 20.0
    settle_s: float = 3.0
    """Load between two faults, so every fault hits a pipeline in full flow."""
    broker_cut_s: float = 10.0
    redis_restart_s: float = 3.0
    redis_away_s: float = 20.0
    recovery_timeout_s: float = 90.0
    log: Callable[[str], None] = print
    report: ChaosReport = field(default_factory=ChaosReport)

    async def run(self) -> ChaosReport:
        redis = RedisServer(self.work_dir / "redis").start()
        proxy = await TcpProxy("127.0.0.1", 5672).start()
        stream = f"chaos-{secrets.token_hex(3)}"
        settings = BrokerSettings.model_validate({"redis_url": redis.url, "amqp_url": AMQP_URL})
        session = await Session.open(
            stream=stream,
            namespace=f"{stream}.",
            log_dir=self.work_dir / "logs",
            settings=settings,
            env={"NOTIFIER_AMQP_URL": AMQP_URL.replace(":5672", f":{proxy.port}")},
        )
        try:
            await self._play(session, redis, proxy)
        finally:
            self.report.exit_codes = await session.close()
            await proxy.stop()
            redis.stop()
        return self.report

    async def _play(self, session: Session, redis: RedisServer, proxy: TcpProxy) -> None:
        spec = StreamSpec.model_validate({"brands": BRANDS, "digest": {"windowSeconds": 1, "maxItems": 100}})
        await session.load(spec)
        rooms = await session.start_rooms(replicas=2, extra={"puller": {"NOTIFIER_PULLER_LEASE_S": "5"}})
        for user in USERS:
            for index in range(2):
                await session.add_device(user=user, name=f"user{user}-ws{index + 1}", index=index)
        if not await session.wait_connected(4):
            raise AssertionError("the four devices did not connect")
        source = session.source(sorted(BRANDS), seed=7)
        loading = asyncio.Event()
        publisher = asyncio.create_task(source.publish(rate=self.rate, duration_s=24 * 3600, stopping=loading))

        async def caught_up(before: float) -> bool:
            published = {r: p for r, p in source.published.items() if p.at_s <= before}
            return all_arrived(published=published, user_brands=spec.user_brands, devices=session.devices.items)

        async def fault(name: str, act: Callable[[], Awaitable[None]]) -> None:
            await asyncio.sleep(self.settle_s)
            self.log(f"fault: {name}")
            started = time.monotonic()
            await act()
            ended, ended_wall = time.monotonic(), time.time()
            recovered = await _wait(lambda: caught_up(ended_wall), timeout_s=self.recovery_timeout_s)
            self.report.faults.append(
                Fault(name, round(ended - started, 1), None if recovered is None else round(recovered - ended, 1))
            )
            self.log(f"  recovered in {self.report.faults[-1].recovered_s}s")

        for group, index in ((rooms.pushers, 0), (rooms.pullers, 1), (rooms.cores, 0), (rooms.ws, 1)):
            await fault(f"kill -9 {group[index].name}", lambda g=group, i=index: _kill_and_restart(rooms, g, i))
        await fault(f"kill -9 {rooms.monitors[0].name}", lambda: _kill_and_restart(rooms, rooms.monitors, 0))
        await fault(f"broker cut {self.broker_cut_s:g}s", lambda: _cut(proxy, self.broker_cut_s))
        await fault(
            f"Redis kill -9, back {self.redis_restart_s:g}s later", lambda: _bounce(redis, self.redis_restart_s)
        )
        await fault(f"Redis away {self.redis_away_s:g}s", lambda: self._redis_away(rooms, redis))

        await asyncio.sleep(self.settle_s)
        loading.set()
        await publisher
        self.log(f"load stopped after {len(source.published)} review events; waiting for every device")
        await _wait(lambda: caught_up(time.time()), timeout_s=self.recovery_timeout_s)
        counted = outcome(published=source.published, user_brands=spec.user_brands, devices=session.devices.items)
        self.report.events_in = len(source.published)
        self.report.lost, self.report.duplicates = counted.lost, counted.duplicates
        self.report.devices = counted.devices_tally
        self.report.exited_on_their_own = [p.name for p in session.stack.procs if p.process.poll() is not None]

    async def _redis_away(self, rooms: Rooms, redis: RedisServer) -> None:
        procs = [proc for group in rooms.groups() for proc in group]
        redis.kill()
        deadline = time.monotonic() + self.redis_away_s
        async with httpx.AsyncClient(timeout=1.0) as http:
            while time.monotonic() < deadline:
                for proc in procs:
                    if await _readyz(http, proc) == 503:
                        self.report.unready_during_redis_outage[proc.name] = True
                    self.report.unready_during_redis_outage.setdefault(proc.name, False)
                await asyncio.sleep(0.5)
            await asyncio.to_thread(redis.start)
            for proc in procs:
                ready = await _wait(lambda p=proc: _is_ready(http, p), timeout_s=self.recovery_timeout_s)
                self.report.ready_after_redis_outage[proc.name] = ready is not None


async def _kill_and_restart(rooms: Rooms, group: list[Proc], index: int) -> None:
    """SIGKILL one replica and start it again (the killed process leaves the stack's list)."""
    proc = group[index]
    rooms.stack.kill(proc)
    await rooms.restart(proc)


async def _cut(proxy: TcpProxy, seconds: float) -> None:
    await proxy.cut()
    await asyncio.sleep(seconds)
    proxy.restore()


async def _bounce(redis: RedisServer, seconds: float) -> None:
    redis.kill()
    await asyncio.sleep(seconds)
    await asyncio.to_thread(redis.start)


async def _readyz(http: httpx.AsyncClient, proc: Proc) -> int:
    try:
        return (await http.get(f"{proc.ops_url}/readyz")).status_code
    except httpx.TransportError:
        return 0


async def _is_ready(http: httpx.AsyncClient, proc: Proc) -> bool:
    return await _readyz(http, proc) == 200


async def _wait(check: Callable[[], Awaitable[bool]], *, timeout_s: float) -> float | None:
    """The monotonic time `check` first held, or None when it did not within `timeout_s` (a finding of the
    run, reported, not a failure of the harness)."""

    async def held_at() -> float | None:
        return time.monotonic() if await check() else None

    try:
        return await eventually(held_at, timeout_s=timeout_s, interval_s=0.2)
    except AssertionError:
        return None

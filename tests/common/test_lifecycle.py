"""How a room process starts, waits out dependencies, stops and exits: real processes, real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import AMQP_URL, REDIS_URL, room_env
from tests.support.metrics import sample
from tests.support.processes import ROOT, RoomProcess, clean_env, start_room
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually
from workers.common.runtime.lifecycle import Room, serve_room
from workers.common.runtime.settings import CommonSettings
from workers.local.stack import free_port

pytestmark = pytest.mark.timeout(120)


def run_room(room: str, env: dict[str, str], *, cli: bool = False) -> subprocess.CompletedProcess[str]:
    command = ["-m", "workers.cli", room.replace("_", "-")] if cli else ["-m", f"workers.{room}"]
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def base_env(stream: str, amqp_namespace: str) -> dict[str, str]:
    return {**clean_env(), **room_env(stream, amqp_namespace, NOTIFIER_OPS_PORT="0", NOTIFIER_HTTP_PORT="0")}


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("cli", [False, True], ids=["python-m", "notifier"])
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("NOTIFIER_SHUTDOWN_TIMEOUT_S", "inf"),
        ("NOTIFIER_CONNECT_TIMEOUT_S", "nan"),
        ("NOTIFIER_MONITOR_INTERVAL_S", "-1"),
        ("NOTIFIER_OPS_PORT", "70000"),
    ],
)
def test_bad_settings_exit_2_with_one_line_naming_the_setting(
    base_env: dict[str, str], setting: str, value: str, cli: bool
) -> None:
    done = run_room("monitor", {**base_env, setting: value}, cli=cli)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert setting in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("cli", [False, True], ids=["python-m", "notifier"])
def test_a_port_in_use_exits_2_naming_the_setting(base_env: dict[str, str], taken_port: int, cli: bool) -> None:
    done = run_room("monitor", {**base_env, "NOTIFIER_OPS_PORT": str(taken_port)}, cli=cli)
    assert done.returncode == 2, done.stderr
    assert "NOTIFIER_OPS_PORT" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("room", ["core", "ws_delivery"])
def test_an_http_port_in_use_exits_2_naming_the_setting(base_env: dict[str, str], taken_port: int, room: str) -> None:
    env = {**base_env, "NOTIFIER_HTTP_PORT": str(taken_port), "NOTIFIER_JWT_SECRET": "s" * 40}
    done = run_room(room, env)
    assert done.returncode == 2, done.stderr
    assert "NOTIFIER_HTTP_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_host_exits_2(base_env: dict[str, str]) -> None:
    done = run_room("monitor", {**base_env, "NOTIFIER_REDIS_URL": "redis://no-such-host.invalid:6379/0"})
    assert done.returncode == 2, done.stderr
    assert "no-such-host.invalid" in done.stderr or "resolve" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    async with TcpProxy(host, int(port)) as proxy:
        yield proxy


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", 5672) as proxy:
        yield proxy


async def readyz(room: RoomProcess) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{room.ops_port}/readyz", timeout=2.0)).status_code


async def healthz(room: RoomProcess) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{room.ops_port}/healthz", timeout=2.0)).status_code


async def test_sigterm_during_start_up_ends_the_room_at_once(
    base_env: dict[str, str], redis_proxy: TcpProxy, tmp_path: Path
) -> None:
    await redis_proxy.cut()
    env = {**base_env, "NOTIFIER_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0"}
    room = start_room("monitor", env=env, log_dir=tmp_path, ops_port=free_port())
    try:
        await eventually(lambda: _answers(room))
        assert await healthz(room) == 200, "the process is alive while it waits for Redis"
        assert await readyz(room) == 503
        await room.wait_log("redis unavailable")
        room.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert room.process.wait(15) == 0, room.log
        assert time.monotonic() - started < 10.0, "a room exits within NOTIFIER_SHUTDOWN_TIMEOUT_S"
    finally:
        room.kill()


async def _answers(room: RoomProcess) -> bool:
    try:
        return await healthz(room) == 200
    except httpx.TransportError:
        return False


async def test_start_up_waits_for_the_broker_and_starts_when_it_is_back(
    base_env: dict[str, str], amqp_proxy: TcpProxy, tmp_path: Path
) -> None:
    await amqp_proxy.cut()
    proxied = AMQP_URL.replace("127.0.0.1:5672", f"127.0.0.1:{amqp_proxy.port}")
    room = start_room("pusher", env={**base_env, "NOTIFIER_AMQP_URL": proxied}, log_dir=tmp_path, ops_port=free_port())
    try:
        await room.wait_log("rabbitmq unavailable")
        assert await readyz(room) == 503
        assert sample("notifier_dependency_up", {"dependency": "rabbitmq"}, text=await room.metrics()) == 0
        amqp_proxy.restore()
        await room.wait_ready(timeout_s=30)
        assert sample("notifier_dependency_up", {"dependency": "rabbitmq"}, text=await room.metrics()) == 1
        assert room.process.poll() is None
    finally:
        assert room.terminate() == 0, room.log


async def test_redis_going_away_makes_the_room_unready_not_dead(
    base_env: dict[str, str], redis_proxy: TcpProxy, tmp_path: Path
) -> None:
    env = {
        **base_env,
        "NOTIFIER_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
        "NOTIFIER_MONITOR_INTERVAL_S": "0.1",
    }
    room = start_room("monitor", env=env, log_dir=tmp_path, ops_port=free_port())
    try:
        await room.wait_ready()
        await redis_proxy.cut()
        await eventually(lambda: _status_is(room, 503))
        assert await healthz(room) == 200
        await asyncio.sleep(1.5)  # several retries
        metrics = await room.metrics()
        assert sample("notifier_dependency_up", {"dependency": "redis"}, text=metrics) == 0
        assert sample("notifier_dependency_errors_total", {"dependency": "redis", "room": "monitor"}, text=metrics) >= 2
        redis_proxy.restore()
        await eventually(lambda: _status_is(room, 200))
        await room.wait_log("redis back after")
        assert room.log.count("redis unavailable") == 1, "one line per outage, not one per retry"
        assert room.process.poll() is None
    finally:
        assert room.terminate() == 0, room.log


async def _status_is(room: RoomProcess, status: int) -> bool:
    return await readyz(room) == status


async def test_a_started_room_keeps_what_start_up_allocated_out_of_later_collections() -> None:
    class Idle(Room):
        name = "idle"

        async def start(self, stack: AsyncExitStack) -> None:
            return None

    gc.unfreeze()
    room = Idle()
    serving = asyncio.create_task(serve_room(room, settings=CommonSettings(), with_ops=False))
    await eventually(lambda: room.is_ready, what="the room started")
    frozen = gc.get_freeze_count()
    assert room._signalled is not None
    room._signalled.set()
    assert await serving == 0
    assert frozen > 0, "start-up's objects are still in the collected generations"

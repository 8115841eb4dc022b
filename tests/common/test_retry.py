"""The kernel's one retry mechanism: backoff, stop-aware pauses, exception mapping, outage records."""

from __future__ import annotations

import asyncio
import errno
import logging

import aio_pika
import aiormq.connection
import aiormq.exceptions
import httpx
import pytest
import redis.asyncio as aioredis
import redis.exceptions

from tests.support.metrics import sample
from workers.common.contract.errors import InvalidSettings, ServiceUnavailable
from workers.common.runtime.aio import Backoff, pause
from workers.common.runtime.faults import HEALTH, classify, temporary
from workers.common.runtime.healthmetrics import export_health
from workers.common.runtime.retry import repeat, retrying
from workers.local.stack import free_port

export_health()  # as every room's ops port does: the outage records below are read as metrics


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(first_s=0.1, max_s=1.0)
    delays = [backoff.next() for _ in range(8)]
    nominal = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, expected in zip(delays, nominal, strict=True):
        assert expected * 0.8 <= delay <= expected * 1.2
    backoff.reset()
    assert backoff.next() <= 0.12


async def test_a_stop_aware_pause_ends_when_stopping() -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stopping.set)
    assert await asyncio.wait_for(pause(stopping, 60.0), 5.0) is True
    assert await pause(asyncio.Event(), 0.01) is False


async def test_redis_away_is_temporary_and_an_unknown_host_is_a_setting() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=free_port())
    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        await client.ping()
    await client.aclose()
    away = temporary(refused.value)
    assert isinstance(away, ServiceUnavailable)
    assert away.dependency == "redis"

    client = aioredis.Redis(host="no-such-host.invalid", port=6379)
    with pytest.raises(redis.exceptions.ConnectionError) as unknown:
        await client.ping()
    await client.aclose()
    assert isinstance(classify(unknown.value), InvalidSettings)
    assert temporary(unknown.value) is None


async def test_broker_and_core_away_are_temporary_with_their_names() -> None:
    with pytest.raises(aiormq.exceptions.AMQPConnectionError) as broker:
        await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=5)
    assert getattr(temporary(broker.value), "dependency", None) == "rabbitmq"
    with pytest.raises(httpx.ConnectError) as core:
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{free_port()}/")
    assert getattr(temporary(core.value), "dependency", None) == "core"


def test_a_port_in_use_is_a_setting_and_a_bug_is_nothing_known() -> None:
    assert isinstance(classify(OSError(errno.EADDRINUSE, "Address already in use")), InvalidSettings)
    assert classify(KeyError("bug")) is None
    assert classify(ValueError("bad")) is None


async def test_retrying_waits_out_an_outage_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    before = sample("notifier_dependency_errors_total", {"dependency": "redis", "room": HEALTH.room})

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise ConnectionRefusedError(111, "refused")
        return "done"

    with caplog.at_level(logging.WARNING, logger="workers.common.runtime.faults"):
        result = await retrying(flaky, what="test", dependency="redis", backoff=Backoff(first_s=0.001))
    assert result == "done"
    assert calls == 5
    assert sample("notifier_dependency_errors_total", {"dependency": "redis", "room": HEALTH.room}) == before + 4
    assert sample("notifier_dependency_up", {"dependency": "redis"}) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in line for line in lines) == 1, lines
    assert sum("back after" in line for line in lines) == 1, lines
    assert HEALTH.all_up()


async def test_retrying_lets_anything_else_through_at_once() -> None:
    calls = 0

    async def buggy() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await retrying(buggy, what="test", dependency="redis")
    assert calls == 1


async def test_retrying_gives_up_when_stopping_and_marks_the_dependency_down() -> None:
    stopping = asyncio.Event()

    async def away() -> None:
        raise ConnectionResetError(104, "reset")

    task = asyncio.ensure_future(retrying(away, what="test", dependency="rabbitmq", stopping=stopping))
    await asyncio.sleep(0.2)
    assert not HEALTH.is_up("rabbitmq")
    assert not HEALTH.all_up()
    assert HEALTH.all_up(frozenset({"redis"})), "an outage of rabbitmq leaves a room that needs only redis ready"
    assert sample("notifier_dependency_up", {"dependency": "rabbitmq"}) == 0
    stopping.set()
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(task, 5.0)
    HEALTH.ok("rabbitmq")


async def test_retrying_until_a_deadline_for_commands() -> None:
    async def away() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(retrying(away, what="test", dependency="core", deadline_s=0.2), 5.0)
    HEALTH.ok("core")


async def test_repeat_pauses_as_the_step_says_and_survives_outages() -> None:
    stopping = asyncio.Event()
    runs: list[int] = []

    async def step() -> float:
        runs.append(len(runs))
        if len(runs) == 2:
            raise ConnectionRefusedError(111, "refused")
        if len(runs) >= 5:
            stopping.set()
        return 0.0

    await asyncio.wait_for(repeat(step, what="test", stopping=stopping, dependency="redis"), 5.0)
    assert len(runs) == 5
    assert HEALTH.is_up("redis")


async def test_a_broker_that_closed_the_socket_before_the_handshake_is_away() -> None:
    """A broker still starting (or a proxy with none behind it) accepts the connection and closes it at once.
    When the end of the stream arrives before aiormq reads the broker's first frame, its frame reader raises
    StopAsyncIteration (as in tests/common/test_lifecycle.py, against a cut proxy): RabbitMQ unavailable, waited
    out like a refused connection, not a bug that stops the room."""
    reader = asyncio.StreamReader()
    reader.feed_eof()  # the broker's FIN, read before the first frame
    with pytest.raises(StopAsyncIteration) as closed:
        await aiormq.connection.FrameReceiver(reader).get_frame()
    assert getattr(temporary(closed.value), "dependency", None) == "rabbitmq"
    with pytest.raises(StopAsyncIteration) as ours:
        raise StopAsyncIteration
    assert temporary(ours.value) is None, "the same exception outside the broker's client is no outage"


def test_an_error_of_the_cluster_clients_own_state_is_redis_unavailable() -> None:
    """While a replica is promoted, redis-py's cluster client can fail inside itself (a slot without a node): the
    call is retried, as for a refused connection. The same error in Notifier's own code is a bug, not an outage."""
    import redis.asyncio.cluster as cluster

    half_made = cluster.NodesManager.__new__(cluster.NodesManager)  # no slot table yet, as in the middle of a failover
    with pytest.raises(AttributeError) as inside:
        half_made.get_node_from_slot(5)
    error = classify(inside.value)
    assert isinstance(error, ServiceUnavailable)
    assert error.dependency == "redis"
    with pytest.raises(AttributeError) as ours:
        getattr(None, "name")  # noqa: B009
    assert classify(ours.value) is None

"""The client end to end: WebSocket delivery with acks marking core's notifications delivered, the long-polling
fallback during a broker outage, reconnects, admin close, and `notifier listen`."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import pytest

from tests.client.conftest import Core, listen_process
from tests.conftest import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import bearer, token
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Instance, StartInstance
from workers.client.ws import ClosedByAdmin, Listener, Received


def listener(instance: Instance, core: Core, http: httpx.AsyncClient, user: str) -> Listener:
    return Listener(ws_url=instance.url, core_url=core.url, token=token(user), http=http, poll_wait_s=1.0)


async def listening(
    instance: Instance, core: Core, http: httpx.AsyncClient, user: str
) -> tuple[Listener, AsyncGenerator[Received, None], asyncio.Future[Received]]:
    """A listener of `user`, connected to `instance`, already waiting for its first notification."""
    client = listener(instance, core, http, user)
    stream = client.notifications()
    first = asyncio.ensure_future(anext(stream))
    await eventually(lambda: instance.room.hub.devices(user) == 1 and client.settled)
    return client, stream, first


async def take(stream: AsyncIterator[Received], count: int, timeout_s: float = 10.0) -> list[Received]:
    async with asyncio.timeout(timeout_s):
        return [await anext(stream) for _ in range(count)]


async def test_listener_delivers_over_the_websocket_and_its_ack_marks_delivered(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    instance = await start_instance()
    _, stream, opened = await listening(instance, core, http, "alice")
    created = await core.create("alice")
    received = await asyncio.wait_for(opened, 10)
    assert (received.notification.id, received.via) == (created, "websocket")
    await core.wait_delivered("alice", created)
    await stream.aclose()


async def test_multicast_is_marked_delivered_only_for_the_recipient_who_acked(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    instance = await start_instance()
    _, alice, first = await listening(instance, core, http, "alice")
    created = await core.create("alice", "bob")
    assert (await asyncio.wait_for(first, 10)).notification.id == created
    await core.wait_delivered("alice", created)
    assert created not in await core.delivered_ids("bob")
    assert await core.take_undelivered("bob") == [created], "bob never acked, so it is still undelivered for him"
    await alice.aclose()


async def test_listener_long_polls_during_a_broker_outage_and_loses_nothing(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    async with TcpProxy("127.0.0.1", 5672) as proxy:
        instance = await start_instance(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1")
        _, stream, first = await listening(instance, core, http, "alice")
        before = await core.create("alice", content=b"before")
        assert (await asyncio.wait_for(first, 10)).via == "websocket"
        await proxy.cut()
        during = [await core.create("alice", content=f"during-{n}".encode()) for n in range(3)]
        polled = await take(stream, 3)
        assert sorted(r.notification.id for r in polled) == sorted(during)
        assert {r.via for r in polled} == {"feed"}
        proxy.restore()
        await eventually(lambda: instance.room.hub.broker_up, timeout_s=10)
        after = await core.create("alice", content=b"after")
        (last,) = await take(stream, 1)
        assert last.notification.id == after
        assert before not in [r.notification.id for r in polled]
        await stream.aclose()


async def test_listener_reconnects_after_its_instance_restarts(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    port = free_port()
    first = await start_instance(http_port=port)
    alice, stream, pending = await listening(first, core, http, "alice")
    await first.stop()
    second = await start_instance(http_port=port)
    await eventually(lambda: second.room.hub.devices("alice") == 1 and alice.settled, timeout_s=10)
    created = await core.create("alice")
    assert (await asyncio.wait_for(pending, 10)).notification.id == created
    assert alice.connections == 2
    await stream.aclose()


async def test_admin_close_ends_the_listener(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    instance = await start_instance()
    _, _, pending = await listening(instance, core, http, "alice")
    response = await http.delete(
        f"{instance.url}/api/v1/connection/alice",
        headers=bearer("root", "notifier_admin"),
    )
    assert response.status_code == 204
    with pytest.raises(ClosedByAdmin):
        await asyncio.wait_for(pending, 10)


async def test_notifier_listen_prints_notifications_and_exits_after_count(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient
) -> None:
    instance = await start_instance()
    ws_url = instance.url.replace("http://", "ws://")
    async with listen_process("--user", "alice", "--ws-url", ws_url, "--core-url", core.url, "--count", "1") as process:
        await eventually(lambda: instance.room.hub.devices("alice") == 1, timeout_s=60)
        created = await core.create("alice", content=b"printed")
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    line = json.loads(stdout.decode().strip().splitlines()[-1])
    assert (line["id"], line["status"]) == (created, "NEW")
    assert base64.b64decode(line["content"]) == b"printed"
    await core.wait_delivered("alice", created)


async def test_listener_gives_up_on_a_refused_token(start_instance: StartInstance, http: httpx.AsyncClient) -> None:
    instance = await start_instance()
    refused = Listener(ws_url=instance.url, token="not-a-token", http=http)
    with pytest.raises(httpx.HTTPStatusError) as info:
        await asyncio.wait_for(anext(refused.notifications()), 10)
    assert info.value.response.status_code == 401


async def test_a_consumer_cancelled_while_waiting_leaves_no_task_behind() -> None:
    """A getter left pending on the listener's queue would take the next step from a later iteration unseen."""
    async with httpx.AsyncClient() as http:
        client = Listener(ws_url=f"http://127.0.0.1:{free_port()}", token=token("alice"), http=http)
        waiting = asyncio.ensure_future(anext(client.notifications()))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0)
        assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []

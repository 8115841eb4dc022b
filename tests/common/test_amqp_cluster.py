"""Several brokers in NOTIFIER_AMQP_URL: the setting, connecting past a dead one, and a node killed under load
(workers/common/runtime/amqpnodes.py, settings.amqp_addresses)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from tests.conftest import AMQP_URL
from tests.support.rabbitmq_cluster import RabbitCluster
from tests.support.tcp_proxy import TcpProxy
from workers.common.contract.names import PERSISTENT, Topology
from workers.common.runtime.amqp import declare_topology
from workers.common.runtime.amqpnodes import BrokerRing, open_ring
from workers.common.runtime.connections import connect_amqp, redacted
from workers.common.runtime.lifecycle import run_room
from workers.common.runtime.publishing import Properties, publish_confirmed
from workers.common.runtime.settings import BrokerSettings, amqp_addresses
from workers.local.stack import free_port

TWO = "amqp://user:s3cret@rabbit-0.rabbit:5672/notifier,amqp://user:s3cret@rabbit-1.rabbit:5672/notifier"


def test_the_amqp_url_lists_several_brokers_separated_by_commas() -> None:
    settings = BrokerSettings(amqp_url=TWO + " , amqps://user:s3cret@rabbit-2.rabbit:5671/notifier")
    assert amqp_addresses(settings.amqp_url) == [
        "amqp://user:s3cret@rabbit-0.rabbit:5672/notifier",
        "amqp://user:s3cret@rabbit-1.rabbit:5672/notifier",
        "amqps://user:s3cret@rabbit-2.rabbit:5671/notifier",
    ]
    assert amqp_addresses("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]


@pytest.mark.parametrize(
    "value",
    [
        TWO + ",",  # a comma too many
        TWO + ",rabbit-2.rabbit:5672",  # a bare host:port
        "http://user:s3cret@rabbit-0.rabbit/",
        "amqp://user:s3cret@rabbit-0.rabbit:99999/",
        "amqp://user:s3cret@:5672/",
        "amqp://user:s3,cret@rabbit-0.rabbit/",  # a comma in a password must be written %2C
    ],
)
def test_a_broker_address_that_is_no_amqp_url_fails_closed(value: str) -> None:
    with pytest.raises(ValidationError):
        BrokerSettings(amqp_url=value)


def test_a_room_with_a_bad_broker_address_exits_2_with_one_line_and_no_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFIER_AMQP_URL", TWO + ",amqp://user:s3cret@:0/")
    built: list[object] = []
    assert run_room(built.append, settings=BrokerSettings) == 2  # type: ignore[arg-type]
    assert built == []
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "NOTIFIER_AMQP_URL" in error
    assert "address 3 of 3" in error
    assert "s3cret" not in error


def test_log_lines_show_no_password_of_any_broker() -> None:
    shown = redacted(TWO)
    assert "s3cret" not in shown
    assert shown.count("user:***@") == 2
    assert redacted("redis+cluster://u:pw@h1:1,h2:2") == "redis+cluster://u:***@h1:1,h2:2"


async def test_a_connection_listing_a_dead_broker_first_connects_to_the_live_one() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    ring = await open_ring([dead, AMQP_URL], first=0, timeout_s=5)
    try:
        assert ring.url.port == 5672
        channel = await ring.channel()
        await channel.close()
    finally:
        await ring.close()
    for _ in range(4):  # connect_amqp starts at a random broker: either way it lands on the live one
        connection = await connect_amqp(f"{dead},{AMQP_URL}", timeout_s=10)
        try:
            assert isinstance(connection, BrokerRing)
            assert connection.url.port == 5672
        finally:
            await connection.close()


async def test_a_lost_connection_comes_back_on_the_next_broker_with_its_queue_and_consumer() -> None:
    async with TcpProxy("127.0.0.1", 5672) as first, TcpProxy("127.0.0.1", 5672) as second:
        urls = [f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.1" for proxy in (first, second)]
        connection = await open_ring(urls, first=0, timeout_s=5)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"t{uuid.uuid4().hex[:10]}.ring", auto_delete=True)
            got: asyncio.Queue[bytes] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                await message.ack()
                got.put_nowait(message.body)

            await queue.consume(take)
            reconnected = asyncio.Event()
            connection.reconnect_callbacks.add(lambda *_: reconnected.set())
            await first.cut()
            async with asyncio.timeout(10):
                await reconnected.wait()
            assert connection.url.port == second.port
            await channel.default_exchange.publish(aio_pika.Message(b"after"), routing_key=queue.name)
            async with asyncio.timeout(10):
                assert await got.get() == b"after"
        finally:
            await connection.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_killed_node_loses_no_confirmed_message_and_the_room_moves_to_another_node(
    rabbit_cluster: RabbitCluster,
) -> None:
    """kill -9 of the node a publisher and a consumer share, under a steady stream of confirmed publishes to a
    quorum queue of the runtime's topology: every confirmed message is consumed, the connection moves on."""
    topology = Topology(namespace=f"t{uuid.uuid4().hex[:10]}.")
    url = ",".join(f"{u}?reconnect_interval=0.2" for u in amqp_addresses(rabbit_cluster.url))
    connection = await connect_amqp(url, timeout_s=30)
    assert isinstance(connection, BrokerRing)
    victim = rabbit_cluster.node_on(connection.url.port or 0)
    try:
        confirmed, seen, deliveries = await _stream_through_a_kill(
            connection, topology, total=3000, kill_after=600, kill=lambda: rabbit_cluster.kill(victim)
        )
        assert len(confirmed) == 3000
        assert confirmed <= seen, f"{len(confirmed - seen)} confirmed messages never arrived"
        assert seen <= set(range(3000))
        assert deliveries >= len(seen)
        assert not connection.is_closed
        assert connection.url.port != victim.port
        assert rabbit_cluster.node_on(connection.url.port or 0).running
    finally:
        await connection.close()
        await asyncio.to_thread(rabbit_cluster.restart, victim)  # the session's next test gets 3 nodes


async def _stream_through_a_kill(
    connection: AbstractRobustConnection, topology: Topology, *, total: int, kill_after: int, kill: Callable[[], None]
) -> tuple[set[int], set[int], int]:
    """Publish `total` numbered messages in confirmed batches (a batch that fails is published again, as the
    rooms do), kill the node once `kill_after` are confirmed, and consume them with acks. Returns the confirmed
    numbers, the numbers consumed (de-duplicated) and how many deliveries there were."""
    publishing = await connection.channel()
    declared = await declare_topology(publishing, topology)
    consuming = await connection.channel()
    await consuming.set_qos(prefetch_count=200)
    queue = await consuming.get_queue(declared.reviews_queue.name)
    seen: set[int] = set()
    deliveries = 0

    async def take(message: AbstractIncomingMessage) -> None:
        nonlocal deliveries
        deliveries += 1
        seen.add(int(message.body))
        await message.ack()

    await queue.consume(take)
    confirmed: set[int] = set()
    failures: list[BaseException] = []
    killed: asyncio.Task[None] | None = None
    properties = Properties(delivery_mode=PERSISTENT)
    try:
        async with asyncio.timeout(180):
            for start in range(0, total, 50):
                pending = {n: (b"%d" % n, topology.reviews_routing_key, properties) for n in range(start, start + 50)}
                while pending:
                    results = await publish_confirmed(
                        publishing, topology.reviews_exchange, list(pending.values()), timeout_s=5
                    )
                    for number, failure in zip(list(pending), results, strict=True):
                        if failure is None:
                            confirmed.add(number)
                            del pending[number]
                        else:
                            failures.append(failure)
                    if pending:
                        await asyncio.sleep(0.1)
                if killed is None and len(confirmed) >= kill_after:
                    killed = asyncio.create_task(asyncio.to_thread(kill))
            assert killed is not None
            await killed
            while not confirmed <= seen:
                await asyncio.sleep(0.05)
    except TimeoutError:
        last = repr(failures[-1]) if failures else "none"
        pytest.fail(f"{len(confirmed)} confirmed, {len(seen)} consumed, {len(failures)} failed publishes, last {last}")
    return confirmed, seen, deliveries

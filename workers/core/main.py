"""Wiring of core: Redis, RabbitMQ, the outbox relay, the confirmation consumer, the purger and the API."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from workers.common.contract.names import Topology
from workers.common.runtime.amqp import declare_topology, stop_consuming, watch_dead_letters
from workers.common.runtime.asgi import EmbeddedServer, start_server, stop_server
from workers.common.runtime.assignment import ShardAssignment
from workers.common.runtime.auth import TokenVerifier
from workers.common.runtime.connections import connect_amqp, connect_redis_for
from workers.common.runtime.faults import REDIS
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.lifecycle import Room, run_room
from workers.core import metrics
from workers.core.api import Services, create_app
from workers.core.confirmations import Confirmations
from workers.core.loops import purge_loop
from workers.core.relay import Relay
from workers.core.settings import CoreSettings
from workers.core.store import Store
from workers.core.tokens import CachingVerifier
from workers.core.wakeups import Wakeups


class CoreRoom(Room):
    name = "core"
    needs = frozenset({REDIS})
    """The API serves while the broker is away (the outbox keeps the events); without Redis it cannot."""

    def __init__(self, settings: CoreSettings) -> None:
        super().__init__()
        self.settings = settings
        self.http_port = 0
        self.relay: Relay | None = None
        self.store: Store | None = None
        self.confirmations: Confirmations | None = None
        self._server: tuple[EmbeddedServer, asyncio.Task[None]] | None = None
        self._stop_consuming: Callable[[], Awaitable[object]] | None = None
        self._listening: asyncio.Task[None] | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        redis = await connect_redis_for(s, decode=False)
        stack.push_async_callback(redis.aclose)
        amqp = await connect_amqp(s.amqp_url, timeout_s=s.connect_timeout_s)
        stack.push_async_callback(amqp.close)
        topology = Topology(namespace=s.amqp_namespace)
        publishing_channel = await amqp.channel(publisher_confirms=True)
        await declare_topology(publishing_channel, topology)
        consuming_channel = await amqp.channel()
        await consuming_channel.set_qos(prefetch_count=s.amqp_prefetch)
        consuming = await declare_topology(consuming_channel, topology)
        self.spawn(
            watch_dead_letters(
                consuming_channel,
                topology,
                every_s=s.dead_letter_watch_s,
                stopping=self.stopping,
                report=metrics.DEAD_LETTERS.set,
            ),
            name="dead-letters",
        )

        await claim_layout(redis, s.stream, s.shards)
        consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        store = Store(
            redis,
            stream=s.stream,
            retention_s=s.retention_s,
            feed_retention_s=s.feed_retention_s,
            shards=s.shards,
            replica=consumer,
        )
        self.store = store
        wakeups = Wakeups(channel=store.keys.wake)
        self._listening = self.spawn(wakeups.listen(redis, self.stopping), name="wakeups")
        await wakeups.subscribed.wait()

        self.relay = Relay(
            redis=redis,
            channel=publishing_channel,
            exchange=topology.notifications_exchange,
            outboxes=[store.keys.outbox(shard) for shard in store.keys.shards],
            consumer=consumer,
            settings=s,
            written=store.written,
        )
        await self.relay.ensure_group()
        stack.push_async_callback(self.relay.close)
        self.spawn(self.relay.run(self.stopping), name="relay")

        self.confirmations = Confirmations(store, retry_delay_s=s.retry_delay_s, linger_s=s.confirm_linger_s)
        self.spawn(self.confirmations.run(self.stopping), name="confirmations")
        queue = consuming.confirmations_queue
        tag = await queue.consume(self.confirmations.on_message)
        self._stop_consuming = lambda: stop_consuming(queue, tag)
        shards = ShardAssignment(redis, stream=s.stream, room="core", member=consumer, shards=store.keys.shards)
        self.spawn(shards.run(self.stopping), name="shard-assignment")
        self.spawn(
            purge_loop(
                store, interval_s=s.purge_interval_s, batch=s.purge_batch, stopping=self.stopping, shards=shards
            ),
            name="purge",
        )

        services = Services(
            store=store,
            wakeups=wakeups,
            verifier=CachingVerifier(TokenVerifier.from_settings(s)),
            settings=s,
            stopping=self.stopping,
        )
        server, task = await start_server(
            create_app(services),
            host=s.http_host,
            port=s.http_port,
            name="core api",
            setting="NOTIFIER_HTTP_PORT",
            limits=s.http_limits,
            proxy_headers=False,
        )
        self._server = (server, task)
        self.http_port = server.port
        stack.push_async_callback(stop_server, server, task)

    async def stop_intake(self) -> None:
        await super().stop_intake()
        if self._server is not None:
            self._server[0].should_exit = True
        if self._stop_consuming is not None:
            await self._stop_consuming()
        if self._listening is not None:
            self._listening.cancel()

    async def drain(self) -> None:
        if self._server is not None:
            await self._server[1]
        await super().drain()

    def summary(self) -> str:
        published = self.relay.published if self.relay else 0
        confirmed = self.confirmations.handled if self.confirmations else 0
        return f"{published} events published, {confirmed} confirmations handled"


def run() -> int:
    return run_room(CoreRoom, settings=CoreSettings)

"""Wiring of ws_delivery: Redis, RabbitMQ, the device server, the admin close listener.

The process runs on uvloop, as every room does (`run_room`): the device server is a plain asyncio protocol,
and uvloop roughly doubles its frame rate.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from workers.common.contract import closes
from workers.common.contract.keys import GatewayKeys
from workers.common.runtime.asgi import listening_socket
from workers.common.runtime.auth import TokenVerifier
from workers.common.runtime.connections import connect_redis_for
from workers.common.runtime.faults import REDIS
from workers.common.runtime.lifecycle import Room, run_room
from workers.ws_delivery import heap
from workers.ws_delivery.broker import BrokerLink, Confirmations
from workers.ws_delivery.closer import CloseListener
from workers.ws_delivery.connection import DeviceConnection
from workers.ws_delivery.dedup import Deduplicator
from workers.ws_delivery.hub import Hub
from workers.ws_delivery.routes import Router
from workers.ws_delivery.settings import WsSettings


class WsDeliveryRoom(Room):
    name = "ws-delivery"
    needs = frozenset({REDIS})
    """Devices connect while the broker is away (they are told to long-poll); tickets need Redis."""

    def __init__(self, settings: WsSettings) -> None:
        super().__init__()
        self.settings = settings
        self.confirmations = Confirmations(limit=settings.confirm_backlog)
        self.hub = Hub(dedup=Deduplicator(capacity=settings.dedup_size), confirm=self.confirmations.put)
        self.broker = BrokerLink(settings=settings, hub=self.hub, confirmations=self.confirmations)
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        redis = await connect_redis_for(settings)
        stack.push_async_callback(redis.aclose)
        await self.broker.start(stack)
        self.spawn(self.broker.publish_confirmations(self.stopping), name="confirmations")
        closer = CloseListener(
            redis=redis,
            keys=GatewayKeys(settings.stream),
            on_close=lambda user: self.hub.close_user(user, closes.ADMIN),
        )
        self.spawn(closer.run(self.stopping), name="admin-closes")
        await closer.subscribed.wait()
        self.spawn(
            heap.keep_frozen(
                self.stopping, freeze_every_s=settings.gc_freeze_every_s, collect_every_s=settings.gc_collect_every_s
            ),
            name="heap",
        )
        router = Router(redis=redis, settings=settings, verifier=TokenVerifier.from_settings(settings))
        self.server = await asyncio.get_running_loop().create_server(
            lambda: DeviceConnection(hub=self.hub, router=router, settings=settings),
            sock=listening_socket(host=settings.http_host, port=settings.http_port, setting="NOTIFIER_HTTP_PORT"),
            backlog=4096,
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop_intake(self) -> None:
        await super().stop_intake()
        if self.server is not None:
            self.server.close()
        self.hub.close_all(closes.SHUTDOWN)

    async def drain(self) -> None:
        await self.hub.wait_idle()
        await super().drain()

    def summary(self) -> str:
        return (
            f"{self.hub.opened_total} connections, {self.hub.acked_total} messages acknowledged, "
            f"{self.broker.published} confirmations published"
        )


def run() -> int:
    return run_room(WsDeliveryRoom, settings=WsSettings)

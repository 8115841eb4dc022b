"""One robust RabbitMQ connection over several brokers: the nodes of a cluster that `NOTIFIER_AMQP_URL` lists.

aio-pika's `RobustConnection` reconnects on its own (its loop, its `reconnect_interval` pause) and restores
the channels, exchanges, queues, bindings and consumers declared through it. Each attempt connects to
`connection.url`, and every failed attempt and every lost connection passes through `_on_connection_close`
before the next attempt. `BrokerRing` moves `url` on to the next broker of its list right there, so a
connection whose node went away comes back on another node, and a dead address costs one attempt.

Publisher confirms stay exact: a publish in flight when its node goes away is confirmed or fails with the
lost channel (callers retry it), and nothing is resent behind their backs.

aio-pika's connection options (`reconnect_interval`, `fail_fast`) are read from the first broker's URL; each
URL's own options (`heartbeat`, TLS) apply when connecting to that broker.

Imported by `connect_amqp` when it connects, so a command that only talks to Redis never loads aio-pika.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from workers.common.runtime.faults import RABBITMQ, temporary

log = logging.getLogger(__name__)


class BrokerRing(RobustConnection):
    """A robust connection to one broker of `urls` at a time, starting at `urls[first]`; each reconnect goes
    to the next broker in the list (round the end to the start)."""

    def __init__(self, urls: Sequence[str], *, first: int = 0, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("no broker to connect to")
        self.brokers = tuple(URL(url) for url in urls)
        self.position = first % len(self.brokers)
        super().__init__(self.brokers[0], **kwargs)
        self.url = self.brokers[self.position]

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        await super()._on_connection_close(closing)  # logs the broker it lost, wakes the reconnecting task
        self.position = (self.position + 1) % len(self.brokers)  # before that task runs: no await in between
        self.url = self.brokers[self.position]

    async def _on_connected(self) -> None:
        await super()._on_connected()
        if self.connection_attempt > 1:
            log.info("reconnected to RabbitMQ at %s", self)  # str() hides the password


async def open_ring(urls: Sequence[str], *, first: int, timeout_s: float) -> BrokerRing:
    """A `BrokerRing` connected to the first broker, from `urls[first]` on, that answers within `timeout_s`.

    One attempt per broker. A broker that is away (refused, timed out, closed) passes the turn to the next;
    anything else (refused credentials, an unknown host) is raised at once, and when no broker answered,
    what the last one raised."""
    if not urls:
        raise ValueError("no broker to connect to")
    failures: list[BaseException] = []
    for step in range(len(urls)):
        connection = BrokerRing(urls, first=first + step)
        address = str(connection)  # before the attempt moves it on; str() hides the password
        try:
            await connection.connect(timeout=timeout_s)
        except CONNECTION_EXCEPTIONS as exc:
            await connection.close()
            if temporary(exc, dependency=RABBITMQ) is None:
                raise
            log.debug("RabbitMQ at %s did not answer: %r", address, exc)
            failures.append(exc)
            continue
        return connection
    raise failures[-1]

"""`Listener`: every notification of one user, over the WebSocket and, when needed, long polling.

    async with httpx.AsyncClient() as http:
        listener = Listener(ws_url="http://127.0.0.1:8001", core_url="http://127.0.0.1:8000", token=token, http=http)
        async for received in listener.notifications():
            print(received.notification.id, received.via)

Every frame is acknowledged as soon as it is received. After each (re)connect the listener polls core
once (events sent while it was away went nowhere); while ws_delivery reports its broker lost it long
polls core, and polls once more when the broker is back. Reconnects back off exponentially up to
`backoff_max_s`; an admin close (4003) ends the iteration with `ClosedByAdmin`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from workers.client.http import get_ticket, poll_undelivered, websocket_url
from workers.client.poller import Poller
from workers.common.wire import Notification, WebSocketConfirmation, WebSocketMessage

log = logging.getLogger(__name__)

CLOSE_ADMIN = 4003
SEEN_LIMIT = 10_000
Via = Literal["websocket", "poll"]


class ClosedByAdmin(Exception):
    """An admin closed this user's connections (close code 4003); the listener does not reconnect."""


@dataclass(frozen=True, slots=True)
class Received:
    notification: Notification
    via: Via


class Listener:
    def __init__(
        self,
        *,
        ws_url: str,
        token: str,
        http: httpx.AsyncClient,
        core_url: str = "",
        poll_wait_s: float = 30.0,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._ws_url = ws_url
        self._core_url = core_url
        self._token = token
        self._http = http
        self._backoff_max_s = backoff_max_s
        self._queue: asyncio.Queue[Received] = asyncio.Queue()
        self._seen: OrderedDict[tuple[str, int, int], None] = OrderedDict()
        self._poller = Poller(fetch=self._fetch, emit=lambda n: self._offer(n, "poll"), wait_s=poll_wait_s)
        self.connected = asyncio.Event()
        self.connections = 0

    @property
    def settled(self) -> bool:
        """Connected, and the catch-up poll after connecting is done: new events come over the WebSocket."""
        return self.connected.is_set() and self._poller.idle

    async def notifications(self) -> AsyncIterator[Received]:
        runner = asyncio.create_task(self._run(), name="listener")
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                    continue
                getter.cancel()
                runner.result()
                return
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await self._poller.close()

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._session()
                delay = 0.2
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (401, 403):
                    raise  # a bad token does not get better by retrying
                log.warning("ticket refused (%s), retrying in %.1fs", exc, delay)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, httpx.HTTPError) as exc:
                log.warning("WebSocket unavailable (%s), reconnecting in %.1fs", exc, delay)
            self.connected.clear()
            if self._core_url:
                self._poller.want(polling=True)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max_s)

    async def _session(self) -> None:
        ticket = await get_ticket(self._http, ws_url=self._ws_url, token=self._token)
        async with websockets.connect(websocket_url(self._ws_url, ticket), compression=None) as ws:
            self.connections += 1
            self.connected.set()
            log.info("WebSocket connected")
            if self._core_url:
                self._poller.want(polling=False)
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == CLOSE_ADMIN:
                    raise ClosedByAdmin(exc.rcvd.reason or "closed by an admin") from None
                raise

    async def _receive(self, ws: ClientConnection) -> None:
        async for data in ws:
            if isinstance(data, str):
                continue
            message = WebSocketMessage.FromString(data)
            if message.HasField("notification"):
                self._offer(message.notification, "websocket")
            elif message.network_status == WebSocketMessage.ERROR:
                log.warning("ws_delivery lost its broker: long polling core")
                if self._core_url:
                    self._poller.want(polling=True)
            else:
                log.info("ws_delivery's broker is back: relying on the WebSocket again")
                if self._core_url:
                    self._poller.want(polling=False)
            await ws.send(WebSocketConfirmation(message_id=message.message_id).SerializeToString())

    async def _fetch(self, wait_s: float) -> list[Notification]:
        return await poll_undelivered(self._http, core_url=self._core_url, token=self._token, wait_s=wait_s)

    def _offer(self, notification: Notification, via: Via) -> None:
        """Queue a notification unless it came already (a NEW one can arrive both by poll and WebSocket)."""
        stamp = 0 if notification.status == Notification.NEW else notification.timestamp.ToNanoseconds()
        key = (notification.id, int(notification.status), stamp)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._queue.put_nowait(Received(notification, via))

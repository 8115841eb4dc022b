"""`Listener`: every change of one user's notifications on one device, exactly once: the device protocol of
DESIGN section 9 (WebSocket first, then the feed after the device's cursor).

    async with httpx.AsyncClient() as http:
        listener = Listener(ws_url="http://127.0.0.1:8001", core_url="http://127.0.0.1:8000", token=token, http=http)
        async for received in listener.notifications():
            print(received.notification.id, received.via)

Every frame is acknowledged as soon as it is received. After each (re)connect the listener reads the feed
after its cursor, page by page until caught up (events sent while it was away went nowhere); while
ws_delivery reports its broker lost it long-polls the feed, and reads it once more when the broker is back.
Every change is shown once, by `(id, position)`, whichever way it came first; the cursor (`DeviceState`)
moves past a feed entry only once the consumer is done with it: a consumer shows each notification before
it asks for the next one or closes the iteration.
Reconnects back off exponentially up to `backoff_max_s`; an admin close (4003) ends the iteration with
`ClosedByAdmin`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from workers.client.http import CursorExpired, get_ticket, read_feed, websocket_url
from workers.client.poller import Poller
from workers.client.state import DeviceState, Key
from workers.common.contract import closes
from workers.common.contract.wire import Notification, WebSocketConfirmation, WebSocketMessage
from workers.common.runtime.aio import Backoff

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
REFRESH_AFTER = 100
"""Frames shown since the last feed read after which the feed is read once (wait 0) to move the cursor on,
so the saved state and a later catch-up stay small during a long WebSocket session."""
CLOSE_TIMEOUT_S = 2.0
"""How long a device that stops waits for ws_delivery to answer its close frame (websockets waits 10 s by
default, as long as a supervisor gives the whole process to exit)."""
Via = Literal["websocket", "feed"]


class ClosedByAdmin(Exception):
    """An admin closed this user's connections (close code 4003); the listener does not reconnect."""


@dataclass(frozen=True, slots=True)
class Received:
    notification: Notification
    via: Via


@dataclass(frozen=True, slots=True)
class _Step:
    """One thing for `notifications()` to do, in arrival order: show a change (unless shown), then move the
    cursor. Feed entries carry their own position as the cursor, a page's end its `next`."""

    received: Received | None
    key: Key | None
    cursor: str | None


def change_key(notification: Notification) -> Key:
    if notification.HasField("position"):
        return (notification.id, notification.position)
    return (notification.id, f"~{notification.status}:{notification.timestamp.ToNanoseconds()}")


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
        state: DeviceState | None = None,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        self._ws_url = ws_url
        self._core_url = core_url
        self._token = token
        self._http = http
        self._backoff_max_s = backoff_max_s
        self.state = DeviceState() if state is None else state
        self._page_limit = page_limit
        self._read_from = self.state.cursor
        """Where the next feed read starts: the last read's `next` (its entries may still be queued)."""
        self._frames_since_read = 0
        self._queue: asyncio.Queue[_Step] = asyncio.Queue()
        self._poller: Poller[_Step] = Poller(fetch=self._catch_up, emit=self._queue.put_nowait, wait_s=poll_wait_s)
        self.connected = asyncio.Event()
        self.connections = 0

    @property
    def settled(self) -> bool:
        """Connected, and the catch-up poll after connecting is done: new events come over the WebSocket."""
        return self.connected.is_set() and self._poller.idle

    async def notifications(self) -> AsyncGenerator[Received, None]:
        runner = asyncio.create_task(self._run(), name="listener")
        getter: asyncio.Future[_Step] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    step = getter.result()
                    if step.received is not None and step.key is not None and not self.state.shown(step.key):
                        try:
                            yield step.received
                        finally:  # the consumer asked for the next or closed the iteration: it has shown this
                            self._done(step, shown=True)
                    else:
                        self._done(step, shown=False)
                    continue
                getter.cancel()
                runner.result()
                return
        finally:  # a consumer cancelled while waiting leaves no getter behind to take the next step unseen
            if getter is not None:
                getter.cancel()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await self._poller.close()

    def _done(self, step: _Step, *, shown: bool) -> None:
        """A step is behind the consumer (`shown`: it showed the change): remember, move the cursor, save."""
        if step.key is not None and step.cursor is None:  # a frame
            if not shown:
                return  # a change shown before: nothing to remember
            self.state.record(step.key, ahead=True)
        elif step.key is not None:  # a feed entry: the cursor passes it
            if shown:
                self.state.record(step.key, ahead=False)
            self.state.passed(step.key)
        if step.cursor is not None:
            self.state.cursor = step.cursor
        self.state.save()

    async def _run(self) -> None:
        backoff = Backoff(first_s=0.2, max_s=self._backoff_max_s)
        while True:
            delay = backoff.next()
            try:
                await self._session()
                backoff.reset()
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (401, 403):
                    raise  # a bad token does not get better by retrying
                log.warning("ticket refused (%s), retrying in %.1fs", exc, delay)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, httpx.HTTPError) as exc:
                log.warning("WebSocket unavailable (%s), reconnecting in %.1fs", exc, delay)
            self.connected.clear()
            if self._core_url:
                self._poller.want(polling=True)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        ticket = await get_ticket(self._http, ws_url=self._ws_url, token=self._token)
        async with websockets.connect(
            websocket_url(self._ws_url, ticket), compression=None, close_timeout=CLOSE_TIMEOUT_S
        ) as ws:
            self.connections += 1
            self.connected.set()
            log.info("WebSocket connected")
            if self._core_url:
                self._poller.want(polling=False)
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == closes.ADMIN.code:
                    raise ClosedByAdmin(exc.rcvd.reason or "closed by an admin") from None
                raise

    async def _receive(self, ws: ClientConnection) -> None:
        async for data in ws:
            if isinstance(data, str):
                continue
            message = WebSocketMessage.FromString(data)
            if message.HasField("notification"):
                notification = message.notification
                self._queue.put_nowait(_Step(Received(notification, "websocket"), change_key(notification), None))
                self._frames_since_read += 1
                if self._core_url and self._frames_since_read >= REFRESH_AFTER and self._poller.idle:
                    self._poller.want(polling=False)
            elif message.network_status == WebSocketMessage.ERROR:
                log.warning("ws_delivery lost its broker: long polling core")
                if self._core_url:
                    self._poller.want(polling=True)
            else:
                log.info("ws_delivery's broker is back: relying on the WebSocket again")
                if self._core_url:
                    self._poller.want(polling=False)
            await ws.send(WebSocketConfirmation(message_id=message.message_id).SerializeToString())

    async def _catch_up(self, wait_s: float) -> list[_Step]:
        """The feed after where the last read ended, page by page until a page is not full (only the first
        page waits); on 410 from the oldest change kept."""
        self._frames_since_read = 0
        after = self._read_from
        steps: list[_Step] = []
        while True:
            try:
                page = await read_feed(
                    self._http,
                    core_url=self._core_url,
                    token=self._token,
                    after=after,
                    limit=self._page_limit,
                    wait_s=wait_s,
                )
            except CursorExpired as exc:
                log.warning("feed cursor %s expired (%s): resyncing from the oldest change kept", after, exc)
                after = None
                continue
            for notification in page.notifications:
                steps.append(_Step(Received(notification, "feed"), change_key(notification), notification.position))
            steps.append(_Step(None, None, page.next))
            after = page.next
            if len(page.notifications) < self._page_limit:
                self._read_from = after
                return steps
            wait_s = 0.0

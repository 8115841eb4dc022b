"""One device's TCP connection: an asyncio protocol over the `websockets` sans-I/O server protocol.

Why not Starlette or the `websockets` asyncio server: ASGI cannot send pings nor choose the close code
of a heartbeat timeout, and both put a task, futures and a receive queue behind every connection.
Here a connection is one protocol object and a few timer handles: frames go straight from the consumer
into the socket, acks are handled inside `data_received`, pings, resends and closes are timers, and the
socket's own flow control (`pause_writing`) drives the lagged rule. That keeps 10k idle devices per
process cheap and the frame rate high. The same port answers the few HTTP requests of the room (ticket,
admin close, OpenAPI) through `Router`, one request per TCP connection.

    connected -> HTTP request -> over NOTIFIER_WS_MAX_CONNECTIONS: 503 with Retry-After, closed
                             -> Router -> plain HTTP response, closed
                                       -> user id: 101 Switching Protocols, open
    open -> close(code, reason) -> closing (close frame sent; the socket is dropped after close_timeout_s)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import TYPE_CHECKING, cast

from google.protobuf.message import DecodeError
from websockets.exceptions import InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from workers.common.contract import closes
from workers.common.contract.closes import Close
from workers.common.contract.wire import WebSocketConfirmation
from workers.ws_delivery import frames, metrics, routes
from workers.ws_delivery.outbox import Outbox
from workers.ws_delivery.settings import REFUSING, WsSettings

if TYPE_CHECKING:
    from workers.ws_delivery.hub import Hub
    from workers.ws_delivery.routes import Router

log = logging.getLogger(__name__)

WIRE_LOG = logging.getLogger("workers.ws_delivery.wire")
"""The sans-I/O protocol logs every open and close at INFO; this room logs its own lines instead."""
WIRE_LOG.setLevel(logging.WARNING)

BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n"
    b'Content-Length: 34\r\n\r\n{"detail": "invalid HTTP request"}'
)


class DeviceConnection(asyncio.Protocol):
    __slots__ = (
        "_awaiting_pong",
        "_backlog",
        "_close_reason",
        "_close_timer",
        "_corked",
        "_fragments",
        "_head_tail",
        "_hub",
        "_loop",
        "_missed_pongs",
        "_next_id",
        "_outbox",
        "_paused",
        "_ping_timer",
        "_request_task",
        "_resend_timer",
        "_router",
        "_settings",
        "_transport",
        "_ws",
        "user",
    )

    def __init__(self, *, hub: Hub, router: Router, settings: WsSettings) -> None:
        self._hub = hub
        self._router = router
        self._settings = settings
        self._loop = asyncio.get_running_loop()
        self._ws = ServerProtocol(max_size=settings.max_frame_bytes, logger=WIRE_LOG)
        self._transport: asyncio.Transport | None = None
        self._outbox = Outbox(interval_s=settings.retry_interval_s, retry_limit=settings.retry_limit)
        self._backlog: deque[bytes] = deque()
        self._corked: list[bytes] | None = None
        self._paused = False
        self._next_id = 0
        self._fragments: bytearray | None = None
        self._awaiting_pong = False
        self._missed_pongs = 0
        self._close_reason: str | None = None
        self._resend_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._request_task: asyncio.Task[None] | None = None
        self._head_tail = b""
        self.user = ""

    @property
    def unacknowledged(self) -> int:
        return len(self._outbox)

    @property
    def awaiting_pong(self) -> bool:
        return self._awaiting_pong

    @property
    def close_reason(self) -> str | None:
        """Why the server is closing this connection, once it started to."""
        return self._close_reason

    # transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport
        self._hub.sockets += 1
        if self._hub.sockets > self._settings.max_connections + REFUSING:
            self._transport.abort()  # more refusals than the descriptors kept for them: no answer at all
            return
        self._close_timer = self._loop.call_later(self._settings.handshake_timeout_s, self._abort)

    def data_received(self, data: bytes) -> None:
        if not self.user:
            data = self._request_head(data)
            if not data:
                return
        self._ws.receive_data(data)
        if type(self._ws.handshake_exc) is InvalidMessage:
            self._write_now(BAD_REQUEST)  # websockets closes on a garbage request without a word (then flushed)
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._request_task = self._loop.create_task(self._answer(event))
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        while self._backlog and not self._paused:
            self._write(self._backlog.popleft())

    def connection_lost(self, exc: Exception | None) -> None:
        self._hub.sockets -= 1
        for timer in (self._resend_timer, self._ping_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        if self._request_task is not None and not self._request_task.done():
            self._request_task.cancel()
        if not self.user:
            return
        reason = self._close_reason or (closes.BY_DEVICE if self._ws.close_rcvd is not None else closes.LOST)
        metrics.CLOSES.labels(reason).inc()
        self._hub.closed(self)
        log.info("device of user %s disconnected (%s, %d unacknowledged)", self.user, reason, len(self._outbox))

    # HTTP and handshake

    def _request_head(self, data: bytes) -> bytes:
        """What of `data` the handshake parser may read: up to the end of the first request head only.

        One HTTP request per connection: what follows the head (pipelined requests, which the parser
        would take for WebSocket frames and fail the connection on) is not read; the response says
        `Connection: close`, so the client sends them again on a new connection.
        """
        if self._request_task is not None:
            return b""
        seen = self._head_tail + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._head_tail = seen[-3:]
            return data
        return data[: end + 4 - len(self._head_tail)]

    async def _answer(self, request: Request) -> None:
        limit = self._settings.max_connections
        # Refused before routing, so a refused upgrade spends no ticket.
        outcome = routes.at_capacity(limit) if self._hub.sockets > limit else await self._router.route(request)
        if self._transport is None or self._transport.is_closing():
            return
        if isinstance(outcome, Response):
            self._ws.send_response(outcome)
        else:
            response = self._ws.accept(request)
            self._ws.send_response(response)
            if response.status_code == 101:
                self._open(outcome)
        self._flush()

    def _open(self, user: str) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.user = user
        # The first ping at a random point of the interval, so that devices connected together (an instance
        # restarting) do not all ping in the same instant ever after.
        first_ping = self._settings.ping_interval_s * random.uniform(0.5, 1.0)
        self._ping_timer = self._loop.call_later(first_ping, self._on_ping_due)
        self._hub.opened(self)
        log.info("device of user %s connected", user)

    # frames from the device

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            if not frame.fin:
                self._fragments = (self._fragments or bytearray()) + frame.data
                return
            if self._fragments is not None:
                data, self._fragments = bytes(self._fragments + frame.data), None
            else:
                data = bytes(frame.data)
            self._on_confirmation(data)
        elif opcode is Opcode.PONG:
            self._awaiting_pong = False
            self._missed_pongs = 0
        elif opcode is Opcode.TEXT:
            self.close(closes.TEXT_FRAME)

    def _on_confirmation(self, data: bytes) -> None:
        try:
            message_id = WebSocketConfirmation.FromString(data).message_id
        except DecodeError:
            self.close(closes.BAD_PROTOBUF)
            return
        entry = self._outbox.ack(message_id)
        if entry is not None:
            self._hub.acknowledged(self, entry, now=self._loop.time())

    # frames to the device

    def send_message(self, shared: bytes, *, confirm_id: str = "") -> bool:
        """Send one WebSocketMessage (see `frames.shared_part`) under a new message id and track its ack."""
        if self._ws.state is not OPEN or self._close_reason is not None:
            return False
        self._next_id += 1
        message_id = str(self._next_id)
        data = frames.binary_frame(frames.message(message_id, shared))
        self._outbox.track(message_id=message_id, frame=data, confirm_id=confirm_id, now=self._loop.time())
        self._write(data)
        if self._resend_timer is None:
            self._schedule_resend()
        return True

    def _write(self, frame: bytes) -> None:
        """Queue a whole binary frame; frames of one loop iteration reach the socket in one write."""
        if self._paused:
            if len(self._backlog) >= self._settings.send_buffer:
                self.close(closes.LAGGED)
            else:
                self._backlog.append(frame)
            return
        if self._corked is None:
            self._corked = []
            self._loop.call_soon(self._uncork)
        self._corked.append(frame)

    def _uncork(self) -> None:
        corked, self._corked = self._corked, None
        transport = self._transport
        if corked and transport is not None and not transport.is_closing() and self._ws.state is OPEN:
            transport.write(b"".join(corked))

    def _write_now(self, frame: bytes) -> None:
        """Write a control frame past the cork (an empty ping is two bytes, not worth a loop turn)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.close()
                return

    # timers

    def _schedule_resend(self) -> None:
        due = self._outbox.next_due()
        self._resend_timer = None if due is None else self._loop.call_at(due, self._on_resend_due)

    def _on_resend_due(self) -> None:
        self._resend_timer = None
        if self._ws.state is not OPEN or self._close_reason is not None:
            return
        due = self._outbox.collect_due(self._loop.time())
        if due.unresponsive:
            self.close(closes.UNRESPONSIVE)
            return
        if due.resend:
            metrics.MESSAGES_RESENT.inc(len(due.resend))
        for entry in due.resend:
            self._write(entry.frame)
        self._schedule_resend()

    def _on_ping_due(self) -> None:
        if self._ws.state is not OPEN or self._close_reason is not None:
            return
        if self._awaiting_pong:
            self._missed_pongs += 1
            if self._missed_pongs >= 2:
                self.close(closes.HEARTBEAT)
                return
        self._awaiting_pong = True
        self._write_now(frames.PING)
        self._ping_timer = self._loop.call_later(self._settings.ping_interval_s, self._on_ping_due)

    # closing

    def close(self, close: Close) -> None:
        """Start the closing handshake; the socket is dropped if the device does not answer in time."""
        if self._ws.state is not OPEN or self._close_reason is not None:
            return
        self._close_reason = close.label
        self._backlog.clear()
        self._uncork()
        self._ws.send_close(close.code, close.reason)
        self._flush()
        self._close_timer = self._loop.call_later(self._settings.close_timeout_s, self._abort)
        log.info("closing device of user %s: %s (%d)", self.user, close.label, close.code)

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

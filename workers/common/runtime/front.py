"""A strict HTTP/1.1 front for uvicorn: bounded request heads, no slowloris, a cap on connections.

uvicorn's httptools protocol takes a request head of any size (httptools keeps a header growing across
reads until it ends: 20 clients sending 16 MB headers cost core half a gigabyte), waits for it for ever
(a client sending one byte every ten seconds holds its connection, and thousands of them hold the
process) and accepts every connection. `guarded_protocol` returns a subclass with the limits of
`FrontLimits`:

- head size: bytes are counted while a request head is incomplete, fed to the parser in slices of
  `SLICE` bytes so the count is exact to a slice; past `max_header_bytes` the answer is 431 and the
  connection closes. More than `max_headers` header fields is 431 as well.
- head time: the first byte of a request head (or the connection itself) starts a timer; a head not
  complete within `header_timeout_s` closes the connection. Between requests uvicorn's keep-alive
  timeout (`keepalive_timeout_s`) closes an idle connection; a long-running response (a long poll) is
  never timed here, since the timer stops as the head completes.
- connections: past `max_connections` open at once a new connection is answered 503 and closed.

Refusals carry `Connection: close` and a JSON body `{"detail": ...}` like every other error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from workers.common.contract.errors import error_body

SLICE = 4096
"""A read is fed to the parser in slices of this many bytes; the head count is exact to one slice."""


@dataclass(frozen=True, slots=True)
class FrontLimits:
    max_header_bytes: int = 16_384
    max_headers: int = 100
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 4096


DEFAULT_LIMITS = FrontLimits()
"""What a server gets without room settings of its own (the ops port)."""


class HeadRefused(Exception):
    """Raised inside a parser callback to stop parsing a refused head (the parser reports it as an error)."""


def refusal(status: int, reason: str, detail: str) -> bytes:
    body = error_body(detail)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


HEAD_TOO_LARGE = refusal(431, "Request Header Fields Too Large", "request head too large")
TOO_MANY_HEADERS = refusal(431, "Request Header Fields Too Large", "too many header fields")
TOO_MANY_CONNECTIONS = refusal(503, "Service Unavailable", "too many connections, retry later")
BAD_REQUEST = refusal(400, "Bad Request", "invalid HTTP request")


class GuardedProtocol(HttpToolsProtocol):
    limits = DEFAULT_LIMITS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(TOO_MANY_CONNECTIONS)
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), SLICE):
            if self.transport.is_closing():
                return
            piece = view[start : start + SLICE]
            if self._in_head:
                if self._head_timer is None:
                    self._arm_head_timer()
                self._head_bytes += len(piece)
            super().data_received(piece)  # type: ignore[arg-type]
            if self._in_head and self._head_bytes > self.limits.max_header_bytes:
                self._refuse(HEAD_TOO_LARGE)
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refused = TOO_MANY_HEADERS
            raise HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, also what a callback's `HeadRefused` becomes."""
        self._refuse(self._refused or BAD_REQUEST)

    def _refuse(self, response: bytes) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.abort()


def guarded_protocol(limits: FrontLimits) -> type[GuardedProtocol]:
    """The protocol class to hand uvicorn (`http=`) for a server with these limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})


def server_options(limits: FrontLimits) -> dict[str, Any]:
    """uvicorn settings besides the protocol: keep-alive timeout, no WebSocket upgrades."""
    return {"http": guarded_protocol(limits), "timeout_keep_alive": limits.keepalive_timeout_s, "ws": "none"}

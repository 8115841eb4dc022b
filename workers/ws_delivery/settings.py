"""ws_delivery settings: `NOTIFIER_WS_<FIELD>` plus the shared broker and auth settings."""

from __future__ import annotations

import resource

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.settings import BrokerSettings, VerifierSettings

FD_RESERVE = 64
"""Descriptors kept from devices besides Redis's pool: the process's own (stdio, the loop, listening sockets),
the broker connection, the ops port and its scrapes, and up to `REFUSING` refusals being answered."""
REFUSING = 32
"""Connections past `max_connections` held until their request can be answered 503; one more is dropped at once,
so that a flood of connections that send nothing cannot take the reserve."""


def open_file_limit() -> int:
    """The process's soft RLIMIT_NOFILE (`ulimit -n`); "unlimited" counts as Linux's default ceiling, 2**20."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def connection_ceiling(*, redis_concurrency: int) -> int:
    """The most device-port connections the open-file limit leaves: less Redis's pool (one connection per call in
    flight, and the admin-close subscription) and `FD_RESERVE`."""
    return open_file_limit() - redis_concurrency - 1 - FD_RESERVE


class WsSettings(BrokerSettings, VerifierSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_WS_", extra="ignore", populate_by_name=True)

    retry_interval_s: float = Field(10.0, gt=0)
    """An unacknowledged message is sent again after this long."""
    retry_limit: int = Field(5, ge=0)
    """Resends of one message; one interval after the last resend the connection closes as unresponsive."""
    ping_interval_s: float = Field(20.0, gt=0)
    """WebSocket ping every this long; two unanswered pings close the connection."""
    ticket_ttl_s: float = Field(30.0, gt=0)
    send_buffer: int = Field(1024, ge=1)
    """Frames queued for a device while its socket does not take more; one more closes it as lagged."""
    dedup_size: int = Field(100_000, ge=1)
    """(user, notification, status) triples remembered for deduplication, least recently used evicted."""
    handshake_timeout_s: float = Field(10.0, gt=0)
    """A TCP connection must finish its HTTP request or WebSocket upgrade within this long."""
    close_timeout_s: float = Field(5.0, gt=0)
    """How long a closing connection may take to answer the close frame before the socket is dropped."""
    max_frame_bytes: int = Field(4096, ge=64)
    """Largest frame a device may send (acks are a few bytes)."""
    redis_concurrency: int = Field(64, ge=1, le=100)
    """Redis calls in flight at once (tickets, admin closes); redis-py's pool holds 100 connections."""
    gc_freeze_every_s: float = Field(1.0, gt=0)
    """Live objects move out of the garbage collector's view this often (see `heap`)."""
    gc_collect_every_s: float = Field(600.0, gt=0)
    """A full collection of everything, frozen objects included, this often."""
    confirm_backlog: int = Field(100_000, ge=1)
    """Confirmations held while the broker is away; the oldest are dropped beyond this (core's poll covers them)."""
    max_connections: int = Field(
        default_factory=lambda fields: connection_ceiling(redis_concurrency=fields["redis_concurrency"]), ge=1
    )
    """Open connections of the device port (devices and HTTP requests) at most; a request beyond is answered 503
    with Retry-After, its ticket unspent. By default and at most `connection_ceiling`, so that Redis, the broker
    and the ops port always get a descriptor (at the limit, /metrics and /readyz would stop answering)."""

    @field_validator("max_connections")
    @classmethod
    def _leaves_descriptors(cls, value: int, info: ValidationInfo) -> int:
        ceiling = connection_ceiling(redis_concurrency=info.data.get("redis_concurrency", 100))
        if value > ceiling:
            raise ValueError(
                f"at most {ceiling}: the open-file limit ({open_file_limit()}) less descriptors for Redis's pool, "
                "the broker and the ops port"
            )
        return value

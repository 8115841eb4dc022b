"""Settings of the core room: `NOTIFIER_CORE_<FIELD>` besides the shared ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.front import FrontLimits
from workers.common.runtime.settings import BrokerSettings, VerifierSettings


class CoreSettings(BrokerSettings, VerifierSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_CORE_", extra="ignore", populate_by_name=True)

    http_body_limit_bytes: int = Field(8192, ge=64)
    """Largest request body accepted (checked before parsing, also for chunked bodies): 413 above it."""
    http_batch_body_limit_bytes: int = Field(4 * 1024 * 1024, ge=64, le=64 * 1024 * 1024)
    """The same for a batch of creates (up to 500 of them, each up to the content limit in base64)."""
    http_max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576)
    """Largest request head (request line and headers): 431 above it, then the connection closes."""
    http_max_headers: int = Field(100, ge=8, le=1000)
    """Most header fields in one request: 431 above it."""
    http_header_timeout_s: float = Field(10.0, gt=0, le=300)
    """A request head must arrive whole within this long from its first byte (or from connecting): no slowloris."""
    http_keepalive_timeout_s: float = Field(5.0, gt=0, le=300)
    """An idle keep-alive connection is closed after this long."""
    http_max_connections: int = Field(4096, ge=1, le=1_000_000)
    """Open connections at most (long polls included); a connection beyond is answered 503 and closed."""
    retention_s: float = Field(7 * 86_400.0, ge=0)
    """How long expired and deleted notifications are kept before they are purged."""
    feed_retention_s: float = Field(30 * 86_400.0, ge=0)
    """How long each user's feed keeps a change (default 30 days); an older cursor is answered 410 (resync)."""
    purge_interval_s: float = Field(60.0, gt=0)
    purge_batch: int = Field(500, ge=1, le=100_000)
    relay_batch: int = Field(200, ge=1, le=10_000)
    """Outbox entries the relay reads and publishes at once (confirms in flight together); larger batches
    publish more per second but hold the event loop longer, which the API feels as latency."""
    relay_block_s: float = Field(1.0, gt=0)
    """How long the relay waits on empty outboxes before looking again, unless its own process writes one first."""
    relay_claim_idle_s: float = Field(30.0, gt=0)
    """An outbox entry read but unconfirmed this long (its relay crashed) is taken over by another relay."""
    confirm_linger_s: float = Field(0.02, ge=0, le=1.0)
    """How long the confirmation consumer lets a batch fill after its first message (0: handle at once)."""
    retry_delay_s: float = Field(1.0, gt=0)
    """Pause of the relay and the confirmation consumer after the broker or Redis failed."""
    dead_letter_watch_s: float = Field(15.0, gt=0, le=3600)
    """How often the depth of notifier.dead is read for `notifier_core_dead_letter_messages`."""

    @property
    def http_limits(self) -> FrontLimits:
        return FrontLimits(
            max_header_bytes=self.http_max_header_bytes,
            max_headers=self.http_max_headers,
            header_timeout_s=self.http_header_timeout_s,
            keepalive_timeout_s=self.http_keepalive_timeout_s,
            max_connections=self.http_max_connections,
        )

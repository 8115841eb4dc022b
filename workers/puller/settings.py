"""Settings of the puller (`NOTIFIER_PULLER_*`)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.assignment import DEFAULT_BEAT_S, DEFAULT_TTL_S
from workers.common.runtime.settings import MIN_SECRET_BYTES, AuthSettings, MappingReaderSettings


class PullerSettings(AuthSettings, MappingReaderSettings):
    """The token towards core uses the shared secret, role name and roles claim that core verifies."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_PULLER_")

    lease_s: float = Field(30.0, gt=0, description="How long a claimed batch is ours before another puller takes it.")
    poll_interval_s: float = Field(0.2, gt=0, le=60, description="How often an idle puller looks for due users.")
    batch_users: int = Field(200, ge=1, le=10_000, description="Due users claimed per bus shard in one cycle.")
    max_ids_per_brand: int = Field(100, ge=0, description="Review ids listed per brand before cutting.")
    service_id: str = Field("notifier-puller", description="The `sub` of the puller's token towards core.")
    sink_timeout_s: float = Field(10.0, gt=0, description="Timeout of one request to core.")
    membership_ttl_s: float = Field(
        DEFAULT_TTL_S, gt=0, le=600, description="How long a puller replica counts as live after its last beat."
    )
    membership_beat_s: float = Field(
        DEFAULT_BEAT_S, gt=0, le=60, description="How often a puller replica renews its membership."
    )
    """The replicas spread the stream's shards among them (workers/common/runtime/assignment.py): a replica that
    dies without leaving holds its shards for up to `membership_ttl_s` (its due users wait as long)."""

    @model_validator(mode="after")
    def _secret_for_core(self) -> Self:
        """Digests for core need a token signed with core's secret: without one the puller does not start."""
        if self.core_url and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"NOTIFIER_JWT_SECRET (at least {MIN_SECRET_BYTES} bytes) is needed with NOTIFIER_CORE_URL"
            )
        return self

    @model_validator(mode="after")
    def _beat_within_ttl(self) -> Self:
        """A replica whose beats come further apart than its ttl would drop out between them."""
        if self.membership_beat_s >= self.membership_ttl_s:
            raise ValueError("NOTIFIER_PULLER_MEMBERSHIP_BEAT_S must be shorter than NOTIFIER_PULLER_MEMBERSHIP_TTL_S")
        return self

"""Settings of the puller (`NOTIFIER_PULLER_*`)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

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

    @model_validator(mode="after")
    def _secret_for_core(self) -> Self:
        """Digests for core need a token signed with core's secret: without one the puller does not start."""
        if self.core_url and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"NOTIFIER_JWT_SECRET (at least {MIN_SECRET_BYTES} bytes) is needed with NOTIFIER_CORE_URL"
            )
        return self

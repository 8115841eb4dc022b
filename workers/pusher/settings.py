"""Settings of the pusher (`NOTIFIER_PUSHER_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.settings import BrokerSettings, MappingReaderSettings


class PusherSettings(BrokerSettings, MappingReaderSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_PUSHER_")

    batch_size: int = Field(1000, ge=1, le=65535, description="Events written to Redis in one round trip.")
    linger_s: float = Field(0.005, ge=0, le=1, description="How long a batch waits for more events.")
    redelivery_horizon_s: float = Field(
        300.0,
        gt=0,
        description="How long a written event's key is kept, so its redelivery after a lost ack is not written twice.",
    )

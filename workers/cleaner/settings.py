"""Settings of the cleaner (`NOTIFIER_CLEANER_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.settings import CommonSettings


class CleanerSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_CLEANER_")

    invalid_interval_s: float = Field(
        0.0, ge=0, description="Remove invalid users every this many seconds; 0 only serves `notifier clean`."
    )

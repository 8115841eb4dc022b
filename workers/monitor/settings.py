"""Settings of the monitor (`NOTIFIER_MONITOR_*`). The interval and staleness come from the stream's
settings in Redis (the NotificationStream spec); these are the fallbacks before a mapping is loaded."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.settings import CommonSettings


class MonitorSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_MONITOR_")

    interval_s: float | None = Field(None, gt=0, description="Overrides the stream's monitor interval.")
    stale_after_s: float | None = Field(None, gt=0, description="Overrides the stream's staleAfterSeconds.")
    max_users_logged: int = Field(20, ge=1, description="Users named per alert line; the rest are counted.")

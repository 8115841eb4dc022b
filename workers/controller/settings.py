"""Settings of the controller room: `NOTIFIER_CONTROLLER_<FIELD>`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from workers.common.runtime.settings import CommonSettings


class ControllerSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_CONTROLLER_", extra="ignore", populate_by_name=True)

    namespaces: str = Field("", pattern=r"^[a-z0-9, -]*$")
    """Comma-separated namespaces whose NotificationStreams are served; empty serves the whole cluster."""
    status_refresh_s: float = Field(15.0, gt=0, le=3_600)
    """How often status.staleUsers / status.invalidUsers are refreshed from the monitor's findings."""
    peering: str = Field("notifier", pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$")
    """Name of the kopf peering object shared by the replicas; empty runs standalone (one replica only)."""
    priority: int = Field(0, ge=0, le=2**31 - 1)
    """Peering priority: the live replica with the highest one works, the others stand by; 0 draws one at random."""
    retry_delay_s: float = Field(1.0, gt=0)
    """First delay before a reconcile that failed on Redis is retried; doubles per attempt."""
    max_retry_delay_s: float = Field(60.0, gt=0)
    redis_timeout_s: float = Field(5.0, gt=0)
    """Socket timeout of each Redis call, so an unreachable Redis fails a reconcile instead of hanging it."""

    @property
    def namespace_list(self) -> list[str]:
        return [ns for ns in (part.strip() for part in self.namespaces.split(",")) if ns]

    @property
    def clusterwide(self) -> bool:
        return not self.namespace_list

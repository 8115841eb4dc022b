"""A stream's values without I/O: its settings, its brand -> users mapping, a load's result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema (PyYAML, pydantic) loads only where a spec is parsed, not with the values
    from workers.common.contract.streamspec import StreamSpec

DEFAULT_WINDOW_S = 30.0
DEFAULT_MAX_ITEMS = 100
DEFAULT_STALE_AFTER_S = 20.0
DEFAULT_MONITOR_INTERVAL_S = 10.0

VERSION_GRACE_S = 60.0
"""How long a superseded mapping version stays readable."""


@dataclass(frozen=True, slots=True)
class StreamSettings:
    window_s: float = DEFAULT_WINDOW_S
    max_items: int = DEFAULT_MAX_ITEMS
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    monitor_interval_s: float = DEFAULT_MONITOR_INTERVAL_S

    @classmethod
    def from_spec(cls, spec: StreamSpec) -> StreamSettings:
        return cls(
            window_s=spec.digest.window_seconds,
            max_items=spec.digest.max_items,
            stale_after_s=spec.monitor.stale_after_seconds,
            monitor_interval_s=spec.monitor.interval_seconds,
        )

    def as_hash(self) -> dict[str, str]:
        return {
            "window_s": repr(self.window_s),
            "max_items": str(self.max_items),
            "stale_after_s": repr(self.stale_after_s),
            "monitor_interval_s": repr(self.monitor_interval_s),
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> StreamSettings:
        default = cls()
        return cls(
            window_s=float(raw.get("window_s", default.window_s)),
            max_items=int(raw.get("max_items", default.max_items)),
            stale_after_s=float(raw.get("stale_after_s", default.stale_after_s)),
            monitor_interval_s=float(raw.get("monitor_interval_s", default.monitor_interval_s)),
        )


@dataclass(frozen=True, slots=True)
class Mapping:
    """One whole version of the mapping."""

    version: str
    brand_users: dict[str, tuple[str, ...]]
    user_brands: dict[str, tuple[str, ...]]
    digest: str = ""
    meta: dict[str, object] = field(default_factory=dict)

    def is_valid_user(self, user: str) -> bool:
        return user in self.user_brands


EMPTY = Mapping(version="", brand_users={}, user_brands={})


@dataclass(frozen=True, slots=True)
class LoadResult:
    stream: str
    version: str
    brands: int
    users: int
    changed: bool


def content_digest(spec: StreamSpec) -> str:
    canonical = json.dumps({b: sorted(u) for b, u in spec.brands.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

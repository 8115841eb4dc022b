"""Every Redis key of Notifier, declared once.

All keys start with `nf:<stream>:`. Keys of one user carry the hash tag `{<user_id>}`, so a Lua script
over one user's keys also runs on Redis Cluster; global indexes are sorted sets whose scores are unix
seconds. Scripts never touch a per-user key and a global key together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
"""User, brand and review ids: 1-128 characters of `[A-Za-z0-9._:@-]` (DESIGN section 6)."""

_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


@dataclass(frozen=True, slots=True)
class BusKeys:
    """The review bus of one stream: per-user pending lists, their indexes, the mapping and settings."""

    stream: str

    @property
    def prefix(self) -> str:
        return f"nf:{self.stream}:"

    def pending(self, user: str) -> str:
        """List of review entries waiting for the user's next digest (RPUSH by pushers, LPOP by pullers)."""
        return f"nf:{self.stream}:u:{{{user}}}:pending"

    def inflight(self, user: str) -> str:
        """Hash: the batch a puller claimed but has not handed on yet (digest id, lease, entries)."""
        return f"nf:{self.stream}:u:{{{user}}}:inflight"

    def last_pulled_at(self, user: str) -> str:
        """String: unix time of the user's last pull."""
        return f"nf:{self.stream}:u:{{{user}}}:last_pulled_at"

    def user_keys(self, user: str) -> tuple[str, str, str]:
        return (self.pending(user), self.inflight(user), self.last_pulled_at(user))

    @property
    def due(self) -> str:
        """Zset user -> time the user's digest window closes (or a claimed user's lease runs out)."""
        return f"nf:{self.stream}:due"

    @property
    def pending_since(self) -> str:
        """Zset user -> time of the user's oldest unpulled entry; the monitor reads this, never SCAN."""
        return f"nf:{self.stream}:pending_since"

    @property
    def map_current(self) -> str:
        """String: the version id of the mapping in force (flipped last, so readers see whole versions)."""
        return f"nf:{self.stream}:map:current"

    def map_version(self, version: str) -> str:
        """Hash of one mapping version: `brand:<id>` -> users, `user:<id>` -> brands, `meta` (JSON values)."""
        return f"nf:{self.stream}:map:v:{version}"

    @property
    def map_versions(self) -> str:
        """Zset version id -> time it was superseded, so old versions are deleted after a grace period."""
        return f"nf:{self.stream}:map:versions"

    @property
    def settings(self) -> str:
        """Hash of stream settings from the NotificationStream spec."""
        return f"nf:{self.stream}:settings"

    @property
    def findings(self) -> str:
        """Hash written by the monitor each cycle: its latest counts, read by the controller for status."""
        return f"nf:{self.stream}:monitor:findings"

    @property
    def streams(self) -> str:
        """Set (outside any stream) of stream names that have a mapping loaded."""
        return "nf:streams"

"""Where digests go: a sink takes a batch of digests and hands each on exactly once per digest id.

`deliver` may be called again with the same digests (after a crash or a retry); a sink must treat a
digest id it has seen as delivered (core answers 409 for a repeated `producer_notification_id`).
Raising TemporaryError leaves the batch in flight to be retried; anything else is a bug.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from workers.puller.settings import PullerSettings

log = logging.getLogger(__name__)


class Digest(NamedTuple):
    """One user's digest for one window; `content` is the JSON document of DESIGN section 13. A tuple: a pass
    makes one per user, and a tuple is built several times faster than a frozen dataclass."""

    digest_id: str
    stream: str
    user: str
    content: bytes
    entries: int
    reviews: int


class DigestSink(Protocol):
    async def deliver(self, digests: Sequence[Digest]) -> None: ...

    async def close(self) -> None: ...


class LogSink:
    """Logs one line per digest; the sink when no core is configured."""

    def __init__(self) -> None:
        self.delivered = 0

    async def deliver(self, digests: Sequence[Digest]) -> None:
        for digest in digests if log.isEnabledFor(logging.INFO) else ():
            log.info(
                "digest %s for user %s: %d reviews from %d entries (%d bytes)",
                digest.digest_id,
                digest.user,
                digest.reviews,
                digest.entries,
                len(digest.content),
            )
        self.delivered += len(digests)

    async def close(self) -> None:
        return None


def make_sink(settings: PullerSettings) -> DigestSink:
    """Core over HTTP when NOTIFIER_CORE_URL is set, else the log (HTTP's client loads only for core)."""
    if not settings.core_url:
        return LogSink()
    from workers.puller.http_sink import HttpSink

    return HttpSink.from_settings(settings)

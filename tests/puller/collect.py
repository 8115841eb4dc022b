"""A digest sink for tests: keeps every digest it is handed."""

from __future__ import annotations

import json
from collections.abc import Sequence

from workers.puller.sink import Digest


class CollectingSink:
    def __init__(self) -> None:
        self.digests: list[Digest] = []

    async def deliver(self, digests: Sequence[Digest]) -> None:
        self.digests.extend(digests)

    async def close(self) -> None:
        return None

    def reviews(self) -> list[tuple[str, str]]:
        """(user, review id) of every review listed in every digest."""
        pairs: list[tuple[str, str]] = []
        for digest in self.digests:
            doc = json.loads(digest.content)
            for body in doc["brands"].values():
                assert body["truncated"] is False
                pairs.extend((digest.user, review) for review in body["review_ids"])
        return pairs

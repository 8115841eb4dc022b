"""The review entry: what a pusher appends to a user's pending list and a puller reads back.

An entry is one compact string `brand|review|kind|pushed_ms|occurred_ms` (ids never contain `|`: they
match `ID_PATTERN`), cheap to write a hundred thousand times a second and to parse back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import is_valid_id

Kind = Literal["added", "updated", "deleted"]
KINDS: tuple[Kind, ...] = ("added", "updated", "deleted")
"""Indexed by `ReviewEvent.Kind` (ADDED=0, UPDATED=1, DELETED=2)."""
_CODE: dict[Kind, str] = {"added": "A", "updated": "U", "deleted": "D"}
_KIND: dict[str, Kind] = {code: kind for kind, code in _CODE.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    brand: str
    review: str
    kind: Kind
    pushed_ms: int
    occurred_ms: int

    def encode(self) -> str:
        return f"{self.brand}|{self.review}|{_CODE[self.kind]}|{self.pushed_ms}|{self.occurred_ms}"


def decode(raw: str) -> Entry:
    try:
        brand, review, code, pushed, occurred = raw.split("|")
        return Entry(brand, review, _KIND[code], int(pushed), int(occurred))
    except (ValueError, KeyError):
        raise InvalidInput(f"not a review entry: {raw[:80]!r}") from None


def make_entry(*, brand: str, review: str, kind: Kind, pushed_ms: int, occurred_ms: int) -> Entry:
    """An entry whose ids are checked, so it always decodes again."""
    if not is_valid_id(brand):
        raise InvalidInput(f"brand id {brand[:80]!r} is not a valid id")
    if not is_valid_id(review):
        raise InvalidInput(f"review id {review[:80]!r} is not a valid id")
    return Entry(brand, review, kind, pushed_ms, occurred_ms)

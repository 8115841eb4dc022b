"""Building digests without I/O: one user's batch of entries -> the digest document(s) of DESIGN section 13.

Reviews are deduplicated per brand; the latest kind of a review wins (by occurrence time, then by push
order). Counts are exact; review ids are cut, evenly across brands, until the document fits the content
limit, and `truncated` says where. A batch whose counts alone do not fit (very many brands) is split by
brand into several documents with derived ids `<digest_id>.<n>`, deterministic so a retry yields the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from workers.common.contract.entries import Entry, Kind

SEPARATORS = (",", ":")


@dataclass(frozen=True, slots=True)
class BrandTally:
    brand: str
    counts: dict[Kind, int]
    review_ids: list[str]

    @property
    def total(self) -> int:
        return len(self.review_ids)


@dataclass(frozen=True, slots=True)
class DigestDoc:
    digest_id: str
    content: bytes
    reviews: int


def rfc3339(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tally(entries: Iterable[Entry]) -> list[BrandTally]:
    """Per brand, each review once with its latest kind; brands sorted, ids in order of their latest change."""
    latest: dict[str, dict[str, tuple[int, int, Kind]]] = {}
    for order, entry in enumerate(entries):
        reviews = latest.setdefault(entry.brand, {})
        seen = reviews.get(entry.review)
        if seen is None or (entry.occurred_ms, order) >= (seen[0], seen[1]):
            reviews[entry.review] = (entry.occurred_ms, order, entry.kind)
    result = []
    for brand in sorted(latest):
        ordered = sorted(latest[brand].items(), key=lambda item: (item[1][0], item[1][1]))
        counts: dict[Kind, int] = {"added": 0, "updated": 0, "deleted": 0}
        for _, (_, _, kind) in ordered:
            counts[kind] += 1
        result.append(BrandTally(brand, counts, [review for review, _ in ordered]))
    return result


def build_digests(
    *,
    digest_id: str,
    stream: str,
    user: str,
    entries: Sequence[Entry],
    window_end_ms: int,
    max_bytes: int,
    max_ids_per_brand: int,
) -> list[DigestDoc]:
    """The digest document(s) for one user's batch; usually exactly one."""
    if not entries:
        return []
    header: dict[str, object] = {
        "stream": stream,
        "user": user,
        "window": {"start": rfc3339(min(e.pushed_ms for e in entries)), "end": rfc3339(window_end_ms)},
    }
    brands = tally(entries)
    cap = min(max_ids_per_brand, max(b.total for b in brands))
    whole = _render(brands, header=header, digest_id=digest_id, cap=cap)
    if len(whole) <= max_bytes:  # the usual case: everything fits, one rendering
        return [DigestDoc(digest_id, whole, sum(b.total for b in brands))]
    groups = _split_to_fit(brands, header=header, digest_id=digest_id, max_bytes=max_bytes)
    docs = []
    for index, group in enumerate(groups):
        part_id = digest_id if len(groups) == 1 else f"{digest_id}.{index + 1}"
        cap = _largest_cap(group, header=header, digest_id=part_id, max_bytes=max_bytes, ceiling=max_ids_per_brand)
        content = _render(group, header=header, digest_id=part_id, cap=cap)
        docs.append(DigestDoc(part_id, content, sum(b.total for b in group)))
    return docs


def _render(group: Sequence[BrandTally], *, header: dict[str, object], digest_id: str, cap: int) -> bytes:
    doc = {
        "digest_id": digest_id,
        **header,
        "total": sum(b.total for b in group),
        "brands": {
            b.brand: {
                **b.counts,
                "review_ids": b.review_ids[-cap:] if cap else [],
                "truncated": b.total > cap,
            }
            for b in group
        },
    }
    return json.dumps(doc, separators=SEPARATORS).encode()


def _largest_cap(
    group: Sequence[BrandTally], *, header: dict[str, object], digest_id: str, max_bytes: int, ceiling: int
) -> int:
    """The largest per-brand id count (<= ceiling) whose document fits; the newest ids are kept."""
    low, high = 0, min(ceiling, max(b.total for b in group))
    while low < high:
        middle = (low + high + 1) // 2
        if len(_render(group, header=header, digest_id=digest_id, cap=middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return low


def _split_to_fit(
    brands: list[BrandTally], *, header: dict[str, object], digest_id: str, max_bytes: int
) -> list[list[BrandTally]]:
    """Groups of brands whose count-only documents fit `max_bytes` (one group unless there are very many)."""
    probe_id = f"{digest_id}.{len(brands)}"
    groups: list[list[BrandTally]] = [[]]
    for brand in brands:
        candidate = [*groups[-1], brand]
        if groups[-1] and len(_render(candidate, header=header, digest_id=probe_id, cap=0)) > max_bytes:
            groups.append([brand])
        else:
            groups[-1] = candidate
    return groups

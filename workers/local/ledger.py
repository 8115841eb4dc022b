"""What the devices printed, held against what was published: reviews lost, duplicates, latency.

Every published review of a brand must reach every device of every user of the brand in exactly one
digest. A review is lost when some such device never listed it; a duplicate is a notification a device
printed twice, or a review a device saw in two digests. Latency is, per review and device, the time from
publishing the review to the device printing the digest that lists it (the digest window included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workers.local.devices import Device
from workers.local.reviews import Published


@dataclass
class Outcome:
    reviews_in: int = 0
    digests_seen: int = 0
    receipts: int = 0
    devices_reached: int = 0
    devices: int = 0
    lost: int = 0
    duplicates: int = 0
    truncated: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def expected_reviews(published: Mapping[str, Published], brands: Iterable[str]) -> set[str]:
    wanted = set(brands)
    return {review for review, p in published.items() if p.brand in wanted}


def missing_on(device: Device, expected: set[str]) -> set[str]:
    listed = {r for receipt in device.receipts if receipt.digest is not None for r in receipt.digest.review_ids}
    return expected - listed


def outcome(
    *, published: Mapping[str, Published], user_brands: Mapping[str, Sequence[str]], devices: Sequence[Device]
) -> Outcome:
    result = Outcome(reviews_in=len(published), devices=len(devices))
    lost: set[str] = set()
    digest_ids: set[str] = set()
    for device in devices:
        digests = [r for r in device.receipts if r.digest is not None]
        result.receipts += len(digests)
        result.devices_reached += bool(digests)
        ids = Counter(r.notification_id for r in device.receipts)
        result.duplicates += sum(n - 1 for n in ids.values())
        listed: Counter[str] = Counter()
        for receipt in digests:
            assert receipt.digest is not None
            digest_ids.add(receipt.notification_id)
            result.truncated += receipt.digest.truncated
            for review in set(receipt.digest.review_ids):
                listed[review] += 1
                sent = published.get(review)
                if sent is not None:
                    result.latencies_s.append(receipt.at_s - sent.at_s)
        result.duplicates += sum(n - 1 for n in listed.values())
        lost |= expected_reviews(published, user_brands.get(device.user, ())) - set(listed)
    result.digests_seen = len(digest_ids)
    result.lost = len(lost)
    return result


def all_arrived(
    *, published: Mapping[str, Published], user_brands: Mapping[str, Sequence[str]], devices: Sequence[Device]
) -> bool:
    return all(
        not missing_on(device, expected_reviews(published, user_brands.get(device.user, ()))) for device in devices
    )

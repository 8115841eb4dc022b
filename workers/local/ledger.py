"""What the devices printed, held against what was published: per device, reviews lost and duplicates; latency.

Every published review of a brand must reach EVERY device of every user of the brand in exactly one digest:
a review that one device of a user listed does not count for the user's other devices. So the ledger keeps
one `DeviceTally` per device:

- `expected`: the reviews of the device's user's brands that were published;
- `lost`: expected reviews the device never listed;
- `duplicates`: changes the device printed twice (the same notification at the same feed position, or the
  same notification and status when there is no position) plus reviews it saw in two different digests.

`tally(device, published=..., user_brands=...)` gives one device's; `outcome(...)` gives every device's in
`Outcome.devices_tally` (by device name) and their sums in `Outcome.lost` and `Outcome.duplicates`
((device, review) pairs). A fault test asserts `all(t.lost == 0 and t.duplicates == 0 for t in
outcome(...).devices_tally.values())`. Latency is, per review and device, the time from publishing the
review to the device printing the digest that lists it (the digest window included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workers.local.devices import Device, Receipt
from workers.local.reviews import Published


@dataclass(frozen=True, slots=True)
class DeviceTally:
    """One device's account: how many reviews it should list, listed, lost and saw twice, in how many digests."""

    device: str
    user: str
    expected: int
    listed: int
    lost: int
    duplicates: int
    digests: int


@dataclass
class Outcome:
    reviews_in: int = 0
    digests_seen: int = 0
    receipts: int = 0
    devices_reached: int = 0
    devices: int = 0
    lost: int = 0
    """(device, review) pairs lost: the sum of the devices' `lost`."""
    duplicates: int = 0
    """The sum of the devices' `duplicates`."""
    truncated: int = 0
    latencies_s: list[float] = field(default_factory=list)
    devices_tally: dict[str, DeviceTally] = field(default_factory=dict)
    """Every device's `DeviceTally`, by device name."""

    def percentile(self, fraction: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def expected_reviews(published: Mapping[str, Published], brands: Iterable[str]) -> set[str]:
    wanted = set(brands)
    return {review for review, p in published.items() if p.brand in wanted}


def shown_digests(device: Device) -> list[Receipt]:
    """The receipts that showed a digest, the first one of each notification (a later change of the same
    notification, e.g. UPDATED after seen, shows the same digest again and does not count twice)."""
    first: dict[str, Receipt] = {}
    for receipt in device.receipts:
        if receipt.digest is not None:
            first.setdefault(receipt.notification_id, receipt)
    return list(first.values())


def listed_reviews(device: Device) -> Counter[str]:
    """How many different digests listed each review, on this device."""
    listed: Counter[str] = Counter()
    for receipt in shown_digests(device):
        assert receipt.digest is not None
        listed.update(set(receipt.digest.review_ids))
    return listed


def missing_on(device: Device, expected: set[str]) -> set[str]:
    return expected - set(listed_reviews(device))


def _change(receipt: Receipt) -> tuple[str, str]:
    return (receipt.notification_id, receipt.position or f"~{receipt.status}")


def tally(
    device: Device, *, published: Mapping[str, Published], user_brands: Mapping[str, Sequence[str]]
) -> DeviceTally:
    expected = expected_reviews(published, user_brands.get(device.user, ()))
    listed = listed_reviews(device)
    repeated = Counter(_change(r) for r in device.receipts)
    return DeviceTally(
        device=device.name,
        user=device.user,
        expected=len(expected),
        listed=len(set(listed) & expected),
        lost=len(expected - set(listed)),
        duplicates=sum(n - 1 for n in repeated.values()) + sum(n - 1 for n in listed.values()),
        digests=len(shown_digests(device)),
    )


def outcome(
    *, published: Mapping[str, Published], user_brands: Mapping[str, Sequence[str]], devices: Sequence[Device]
) -> Outcome:
    result = Outcome(reviews_in=len(published), devices=len(devices))
    digest_ids: set[str] = set()
    for device in devices:
        counted = tally(device, published=published, user_brands=user_brands)
        result.devices_tally[device.name] = counted
        result.lost += counted.lost
        result.duplicates += counted.duplicates
        result.receipts += counted.digests
        result.devices_reached += bool(counted.digests)
        for receipt in shown_digests(device):
            assert receipt.digest is not None
            digest_ids.add(receipt.notification_id)
            result.truncated += receipt.digest.truncated
            for review in set(receipt.digest.review_ids):
                sent = published.get(review)
                if sent is not None:
                    result.latencies_s.append(receipt.at_s - sent.at_s)
    result.digests_seen = len(digest_ids)
    return result


def all_arrived(
    *, published: Mapping[str, Published], user_brands: Mapping[str, Sequence[str]], devices: Sequence[Device]
) -> bool:
    return all(
        not missing_on(device, expected_reviews(published, user_brands.get(device.user, ()))) for device in devices
    )

"""Prometheus metrics of the puller."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

USERS = Counter(
    "notifier_puller_users_total",
    "Due users handled, by outcome.",
    ["outcome"],  # digested | empty | busy | invalid
)
DIGESTS = Counter("notifier_puller_digests_total", "Digests handed to the sink.")
ENTRIES = Counter("notifier_puller_entries_total", "Pending entries turned into digests.")
RESUMED = Counter("notifier_puller_batches_resumed_total", "In-flight batches taken over after a lease ran out.")
CYCLE_SECONDS = Histogram(
    "notifier_puller_cycle_seconds",
    "Time of one claim-digest-release cycle that found work.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

"""Prometheus metrics of the pusher."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "notifier_pusher_events_total",
    "Review events consumed, by outcome.",
    ["outcome"],  # written | written_before (a redelivery of a lost ack) | unknown_brand | invalid
)
ENTRIES = Counter("notifier_pusher_entries_total", "Entries appended to users' pending lists.")
BATCH_SECONDS = Histogram(
    "notifier_pusher_batch_seconds",
    "Time to write one batch to Redis.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
ACK_FAILURES = Counter(
    "notifier_pusher_ack_failures_total", "Acks lost to a broken channel (the broker redelivers those events)."
)

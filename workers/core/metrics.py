"""Prometheus metrics of core (`notifier_core_<noun>_<unit>`); labels come from closed sets only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "notifier_core_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "notifier_core_request_duration_seconds",
    "HTTP request latency by route template and method (long polls included).",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0),
)
CREATED = Counter(
    "notifier_core_notifications_created_total",
    "Notifications stored, by audience (unicast, multicast, broadcast).",
    ["audience"],
)
DUPLICATES = Counter(
    "notifier_core_duplicates_total", "Creates refused because the producer_notification_id was known."
)
DELIVERED = Counter(
    "notifier_core_notifications_delivered_total",
    "Notifications marked delivered for a user, by path (poll, feed or confirmation).",
    ["path"],
)
WAITING_POLLS = Gauge("notifier_core_waiting_polls", "Long polls waiting for a notification right now.")
OUTBOX_ENTRIES = Gauge("notifier_core_outbox_entries", "Events in the outbox not yet confirmed by the broker.")
OUTBOX_AGE = Gauge("notifier_core_outbox_age_seconds", "Age of the oldest event in the outbox (0 when empty).")
DEAD_LETTERS = Gauge(
    "notifier_core_dead_letter_messages", "Messages in notifier.dead (refused messages waiting to be read)."
)
PUBLISHED = Counter(
    "notifier_core_events_published_total",
    "Events the broker confirmed, by routing key.",
    ["routing_key"],
)
PUBLISH_FAILURES = Counter(
    "notifier_core_publish_failures_total", "Outbox batches the broker did not confirm (retried later)."
)
CONFIRMATIONS = Counter(
    "notifier_core_confirmations_total",
    "Delivery confirmations consumed, by outcome.",
    ["outcome"],
)
PURGED = Counter("notifier_core_purged_total", "Notifications deleted after their retention.")
PURGER_SHARDS = Gauge("notifier_core_purger_shards", "Store shards whose purger lease this replica holds.")
CREATES_RECOVERED = Counter(
    "notifier_core_creates_recovered_total",
    "Creates spanning shards that a purger finished because their request stopped before every shard had them.",
)
FEED_ENTRIES = Counter(
    "notifier_core_feed_entries_total",
    "Feed entries handed out to devices, by the change they show (NEW, UPDATED, DELETED).",
    ["status"],
)

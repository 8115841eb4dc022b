"""Prometheus metrics of the monitor (DESIGN section 13: gauges labelled by stream)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STALE_USERS = Gauge(
    "notifier_monitor_stale_users", "Users whose oldest pending entry is older than staleAfter.", ["stream"]
)
INVALID_USERS = Gauge("notifier_monitor_invalid_users", "Users holding data who belong to no brand.", ["stream"])
BACKLOG_ENTRIES = Gauge("notifier_monitor_backlog_entries", "Pending entries over all users.", ["stream"])
OLDEST_PENDING = Gauge(
    "notifier_monitor_oldest_pending_seconds", "Age of the oldest pending entry of any user.", ["stream"]
)
CYCLES = Counter("notifier_monitor_cycles_total", "Monitor cycles, by outcome.", ["stream", "outcome"])

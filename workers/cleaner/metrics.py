"""Prometheus metrics of the cleaner."""

from __future__ import annotations

from prometheus_client import Counter

USERS_REMOVED = Counter("notifier_cleaner_users_removed_total", "Invalid users removed by the periodic cleaner.")
ENTRIES_REMOVED = Counter("notifier_cleaner_entries_removed_total", "Entries removed by the periodic cleaner.")

"""Prometheus metrics of the controller room (labels from closed sets, never stream names)."""

from __future__ import annotations

from prometheus_client import Counter

RECONCILES = Counter(
    "notifier_controller_reconciles_total",
    "NotificationStream reconciles by outcome: synced, invalid, conflict, unavailable.",
    ["outcome"],
)
RELEASES = Counter(
    "notifier_controller_releases_total",
    "Deleted NotificationStreams whose mapping was released, by outcome: removed, not_owned, unavailable.",
    ["outcome"],
)
ORPHANS_REMOVED = Counter(
    "notifier_controller_orphans_removed_total",
    "Mappings removed at startup because their NotificationStream was deleted while the controller was down.",
)
STATUS_REFRESHES = Counter(
    "notifier_controller_status_refreshes_total",
    "Refreshes of status.staleUsers/invalidUsers from the monitor's findings, by outcome: patched, same, "
    "not_owned (another object owns the stream), unavailable.",
    ["outcome"],
)

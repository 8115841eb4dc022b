"""One sample of Prometheus metrics, from a scraped /metrics page or from this process's own registry.

    sample("notifier_ws_connections", text=await room.metrics())         # a room running as a process
    sample("notifier_core_confirmations_total", {"outcome": "unknown"})  # a room running in the test's loop

A sample that is not there reads as 0, as a counter that has not counted yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def sample(name: str, labels: Mapping[str, str] | None = None, *, text: str | None = None) -> float:
    """The value of sample `name` with exactly `labels`: in `text` (Prometheus text format) or, without it, in
    the registry of this process; 0 when absent."""
    wanted = dict(labels or {})
    if text is None:
        return REGISTRY.get_sample_value(name, wanted) or 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == wanted:
                return float(found.value)
    return 0.0

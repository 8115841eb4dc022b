"""`faults.HEALTH` as Prometheus metrics, read from its record each time /metrics is scraped.

    notifier_dependency_errors_total{dependency, room}   counter: calls that failed, counted on after an outage
    notifier_dependency_up{dependency}                   gauge: 1 while the dependency answers, 0 during an outage

A dependency this process never called has no sample. The record lives in `faults`, which imports no
metrics library, so a command that only connects does not pay for prometheus_client; every process that
serves /metrics exports it through `workers.common.runtime.ops`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from workers.common.runtime.faults import HEALTH, Health

ERRORS = "notifier_dependency_errors_total"
UP = "notifier_dependency_up"


class HealthCollector(Collector):
    """The dependency metrics of one `Health` record."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            ERRORS, "Calls that failed because a dependency could not be reached", labels=["dependency", "room"]
        )
        for (dependency, room), failures in self.health.failures().items():
            errors.add_metric([dependency, room], failures.count, created=failures.first_at)
        yield errors
        up = GaugeMetricFamily(UP, "1 while the dependency answers, 0 during an outage", labels=["dependency"])
        for dependency, answers in self.health.answering().items():
            up.add_metric([dependency], 1 if answers else 0)
        yield up


_exported: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def export_health(registry: CollectorRegistry = REGISTRY) -> None:
    """Serve `HEALTH`'s metrics from `registry`: once per registry, however often called."""
    if registry not in _exported:
        registry.register(HealthCollector(HEALTH))
        _exported.add(registry)

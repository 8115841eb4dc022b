"""The dependency metrics every room serves, read from the outage record at scrape time."""

from __future__ import annotations

import importlib
import time

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.metrics import sample
from workers.common.contract.errors import ServiceUnavailable
from workers.common.runtime import ops
from workers.common.runtime.faults import HEALTH, Health
from workers.common.runtime.healthmetrics import HealthCollector, export_health


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def registry(health: Health) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(HealthCollector(health))
    return registry


def away(dependency: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{dependency} unavailable", dependency=dependency)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (found.name, tuple(sorted(found.labels.items()))): found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
    }


def test_a_dependency_never_called_has_no_sample(health: Health, registry: CollectorRegistry) -> None:
    assert samples(registry) == {}
    health.ok("redis")
    assert registry.get_sample_value("notifier_dependency_up", {"dependency": "redis"}) == 1
    assert registry.get_sample_value("notifier_dependency_up", {"dependency": "rabbitmq"}) is None
    assert (
        registry.get_sample_value("notifier_dependency_errors_total", {"dependency": "redis", "room": "notifier"})
        is None
    )


def test_failures_count_per_dependency_and_room_and_go_on_after_the_outage(
    health: Health, registry: CollectorRegistry
) -> None:
    health.room = "monitor"
    before = time.time()
    for _ in range(3):
        health.failed(away("redis"))
    assert registry.get_sample_value("notifier_dependency_up", {"dependency": "redis"}) == 0
    health.ok("redis")
    assert registry.get_sample_value("notifier_dependency_up", {"dependency": "redis"}) == 1
    health.failed(away("redis"))
    health.failed(ServiceUnavailable("away", dependency=""))
    health.room = "pusher"
    health.failed(away("redis"))

    redis_in_monitor = (("dependency", "redis"), ("room", "monitor"))
    found = samples(registry)
    created = found.pop(("notifier_dependency_errors_created", redis_in_monitor))
    assert before <= created <= time.time()
    assert {key: value for key, value in found.items() if not key[0].endswith("_created")} == {
        ("notifier_dependency_errors_total", redis_in_monitor): 4,
        ("notifier_dependency_errors_total", (("dependency", "unknown"), ("room", "monitor"))): 1,
        ("notifier_dependency_errors_total", (("dependency", "redis"), ("room", "pusher"))): 1,
        ("notifier_dependency_up", (("dependency", "redis"),)): 0,
        ("notifier_dependency_up", (("dependency", "unknown"),)): 0,
    }


def test_names_types_and_help_are_those_of_the_dashboards(health: Health, registry: CollectorRegistry) -> None:
    health.failed(away("rabbitmq"))
    text = generate_latest(registry).decode()
    assert (
        "# HELP notifier_dependency_errors_total Calls that failed because a dependency could not be reached\n" in text
    )
    assert "# TYPE notifier_dependency_errors_total counter\n" in text
    assert "# HELP notifier_dependency_up 1 while the dependency answers, 0 during an outage\n" in text
    assert "# TYPE notifier_dependency_up gauge\n" in text


def test_the_default_registry_serves_the_process_record_once_however_often_exported() -> None:
    export_health()
    export_health(REGISTRY)
    importlib.reload(ops)  # what ops does on import, done again
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        REGISTRY.register(HealthCollector(HEALTH))
    HEALTH.ok("test-health-metrics")
    assert sample("notifier_dependency_up", {"dependency": "test-health-metrics"}) == 1

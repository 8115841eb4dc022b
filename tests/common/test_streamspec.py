"""Parsing NotificationStream files and the prototype's JSON mapping."""

from __future__ import annotations

import pytest

from workers.common.contract.errors import InvalidMapping
from workers.common.contract.streamspec import parse_document, parse_spec

STREAM_YAML = """
apiVersion: notifier.io/v1alpha1
kind: NotificationStream
metadata: {name: reviews}
spec:
  brands:
    Brand1: ["1", "2"]
    Brand2: ["4"]
  digest: {windowSeconds: 5, maxItems: 50}
  monitor: {staleAfterSeconds: 20, intervalSeconds: 10}
"""


def test_notification_stream_yaml_gives_name_brands_and_settings() -> None:
    name, spec = parse_document(STREAM_YAML)
    assert name == "reviews"
    assert spec.brands == {"Brand1": ["1", "2"], "Brand2": ["4"]}
    assert spec.digest.window_seconds == 5
    assert spec.digest.max_items == 50
    assert spec.user_brands == {"1": ["Brand1"], "2": ["Brand1"], "4": ["Brand2"]}


def test_prototype_json_with_integer_user_ids_is_accepted() -> None:
    name, spec = parse_document('{"Brand1": [1, 2], "Brand2": [4]}')
    assert name is None
    assert spec.brands == {"Brand1": ["1", "2"], "Brand2": ["4"]}
    assert spec.digest.window_seconds == 30


def test_defaults_apply_when_digest_and_monitor_are_absent() -> None:
    spec = parse_spec({"brands": {"B": ["u"]}})
    assert (spec.digest.window_seconds, spec.digest.max_items) == (30, 100)
    assert (spec.monitor.stale_after_seconds, spec.monitor.interval_seconds) == (20, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Brand1": []}', "has no users"),
        ('{"Brand1": ["1", "1"]}', "appears twice"),
        ('{"bad brand": ["1"]}', "does not match"),
        ('{"Brand1": ["no spaces"]}', "does not match"),
        ('{"Brand1": "1"}', "brands.Brand1"),
        ("[1, 2]", "expected a NotificationStream"),
        ("a: [", "not valid YAML"),
        ("", "exactly one document"),
        ("a: 1\n---\nb: 2\n", "exactly one document"),
        ("kind: Deployment\napiVersion: apps/v1\n", "expected kind NotificationStream"),
        (STREAM_YAML.replace("windowSeconds: 5", "windowSeconds: -1"), "digest.windowSeconds"),
        (STREAM_YAML.replace("maxItems: 50", "maxItems: 0"), "digest.maxItems"),
        (STREAM_YAML.replace("monitor:", "surprise: 1\n  monitor:"), "surprise"),
    ],
)
def test_bad_documents_are_refused_with_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidMapping, match=message):
        parse_document(text)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidMapping) as caught:
        parse_document('{"A": [], "B": ["x", "x"], "C D": ["1"]}')
    text = str(caught.value)
    assert "'A' has no users" in text
    assert "'x' appears twice" in text
    assert "'C D' does not match" in text

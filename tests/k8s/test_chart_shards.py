"""The chart's `shards` value: one NOTIFIER_SHARDS for every container that runs a room, and only counts the
rooms accept (1 to MAX_SHARDS)."""

from __future__ import annotations

import pytest

from tools.chart import CHART, ROOMS, helm, of_kind, render
from workers.common.contract.keys import DEFAULT_SHARDS, MAX_SHARDS


def shards_by_container(*options: str) -> dict[str, str | None]:
    """NOTIFIER_SHARDS of every container of every Deployment and CronJob (None: not set)."""
    objects = render("--set", "cleanerCronJob.enabled=true", *options)
    found: dict[str, str | None] = {}
    for obj in of_kind(objects, "Deployment") + of_kind(objects, "CronJob"):
        spec = obj["spec"].get("jobTemplate", obj)["spec"]["template"]["spec"]
        for container in spec["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            found[f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"] = env.get("NOTIFIER_SHARDS")
    return found


@pytest.mark.parametrize(("options", "expected"), [((), str(DEFAULT_SHARDS)), (("--set", "shards=4"), "4")])
def test_every_room_gets_the_same_shard_count(options: tuple[str, ...], expected: str) -> None:
    found = shards_by_container(*options)
    assert len(found) == len(ROOMS) + 1, found  # every room's Deployment and the cleaner's CronJob
    assert set(found.values()) == {expected}, found


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("1", True), (str(MAX_SHARDS), True), ("0", False), (str(MAX_SHARDS + 1), False), ("four", False)],
)
def test_values_schema_takes_exactly_the_counts_the_rooms_take(value: str, accepted: bool) -> None:
    result = helm("lint", "--strict", str(CHART), "--set", f"shards={value}")
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr

"""The benchmark table shows a value to the precision its target needs, a job's ratios per round, and the bounds
that say what no command could beat."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.bench.harness import figure
from tests.bench.prototype import ENTRY, least_write, speed_ups


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.296, "0.296"), (0.3014, "0.301"), (1.14, "1.14"), (74.51, "74.5"), (115.8, "116"), (39749.7, "39,750")],
)
def test_a_value_keeps_three_significant_digits_below_a_hundred(value: float, shown: str) -> None:
    assert figure(value) == shown


def test_ratios_compare_each_round_with_its_own_reference_run() -> None:
    ratios = speed_ups([20.0, 30.0, 12.0], [2.0, 1.5, 2.0], label="naive loop", least=0.5)
    assert ratios == {"naive loop (median)": 10.0, "min": 6.0, "max": 20.0, "bound (loop over the floor)": 40.0}


def test_a_job_with_a_least_work_has_a_bound_over_the_floor_and_that_work() -> None:
    ratios = speed_ups([20.0, 30.0, 12.0], [2.0, 1.5, 2.0], label="naive loop", least=0.5, work=0.3)
    assert ratios["bound (loop over the floor)"] == 40.0
    assert ratios["bound (loop over the floor + least Redis work)"] == pytest.approx(25.0)


async def test_the_least_write_is_measured_in_redis_and_leaves_nothing_behind(redis: aioredis.Redis) -> None:
    spent = await least_write(redis, [f"u{i}" for i in range(5000)], entry=ENTRY)
    assert spent > 0
    assert [key async for key in redis.scan_iter(match="{bench-least-*")] == []

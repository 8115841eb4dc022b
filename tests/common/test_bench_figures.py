"""The benchmark table shows a value to the precision its target needs, and a job's ratios per round."""

from __future__ import annotations

import pytest

from tests.bench.harness import figure
from tests.bench.prototype import speed_ups


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.296, "0.296"), (0.3014, "0.301"), (1.14, "1.14"), (74.51, "74.5"), (115.8, "116"), (39749.7, "39,750")],
)
def test_a_value_keeps_three_significant_digits_below_a_hundred(value: float, shown: str) -> None:
    assert figure(value) == shown


def test_ratios_compare_each_round_with_its_own_reference_run() -> None:
    ratios = speed_ups([20.0, 30.0, 12.0], [2.0, 1.5, 2.0], label="naive loop", least=0.5)
    assert ratios == {"naive loop (median)": 10.0, "min": 6.0, "max": 20.0, "bound (loop over the floor)": 40.0}

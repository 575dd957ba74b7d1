"""A venue's rounding of reported figures (models/rounding.py)."""

from __future__ import annotations

import numpy as np
import pytest

from marginkit.models.rounding import round_to_step


def test_toward_mark_rounds_a_long_liquidation_price_up_and_a_short_down() -> None:
    # long LP 5739.08 below mark 8000 → up to the 0.5 tick: 5739.5; short LP 8100.3 above the mark → 8100.0
    prices = np.array([5739.08, 8100.3])

    rounded = round_to_step(prices, 0.5, "toward_mark", np.array([8000.0, 8000.0]))

    np.testing.assert_array_equal(rounded, [5739.5, 8100.0])


def test_a_value_on_the_grid_stays_put_and_zero_step_leaves_values() -> None:
    # 0.1 × 3 = 0.30000000000000004 is on the 0.1 grid: rounding up must give 0.3, not 0.4
    assert round_to_step(np.array([0.1 * 3]), 0.1, "up")[0] == pytest.approx(0.3, abs=1e-15)
    np.testing.assert_array_equal(round_to_step(np.array([1.234]), 0.0, "up"), [1.234])


def test_nearest_rounds_half_away_from_zero() -> None:
    np.testing.assert_array_equal(round_to_step(np.array([2.5, -2.5, 2.49]), 1.0, "nearest"), [3.0, -3.0, 2.0])

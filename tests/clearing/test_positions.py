"""The cell book: merging legs into sorted (account, instrument) cells, exact net lots, settling drops flat cells."""

from __future__ import annotations

import numpy as np

from marginkit.clearing.positions import PositionCells


def test_legs_merge_into_sorted_cells_and_repeated_cells_sum() -> None:
    cells = PositionCells(3)
    cells.add(np.array([1, 0]), np.array([2, 1]), np.array([5, -5]), np.array([0.5, -0.5]))

    # Account 2 buys 3 of instrument 1 from account 0 twice; account 1 adds to its cell (1, 2).
    cells.add(np.array([2, 0, 2, 0, 1]), np.array([1, 1, 1, 1, 2]), np.array([3, -3, 3, -3, 1]),
              np.array([1.0, -1.0, 1.0, -1.0, 0.25]))

    # Keys: account × 3 + instrument: (0, 1) → 1, (1, 2) → 5, (2, 1) → 7.
    assert cells.key.tolist() == [1, 5, 7]
    assert cells.lots.tolist() == [-11, 6, 6]  # −5 − 3 − 3; 5 + 1; 3 + 3
    assert cells.adjustment.tolist() == [-2.5, 0.75, 2.0]
    assert cells.account.tolist() == [0, 1, 2]
    assert cells.instrument.tolist() == [1, 2, 1]
    assert cells.net_lots().tolist() == [0, -5, 6]  # instrument 1: −11 + 6; instrument 2: 6
    assert cells.lots_of(np.array([0, 2, 2]), np.array([1, 1, 0])).tolist() == [-11, 6, 0]


def test_settling_drops_flat_cells_and_clears_adjustments() -> None:
    cells = PositionCells(2)
    cells.add(np.array([0, 1, 0]), np.array([0, 0, 1]), np.array([4, -4, 7]), np.array([1.0, -1.0, 2.0]))
    cells.add(np.array([0]), np.array([1]), np.array([-7]), np.array([3.0]))

    cells.settled()

    assert cells.key.tolist() == [0, 2]  # (0, 0) and (1, 0); (0, 1) closed
    assert cells.lots.tolist() == [4, -4]
    assert cells.adjustment.tolist() == [0.0, 0.0]

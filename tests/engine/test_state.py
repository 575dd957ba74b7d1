"""The engine's compiled status pass against the array formulas of `RiskState.scope_status`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from marginkit.engine import RiskState
from marginkit.models.tiered import margin

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import monitor_throughput


def test_the_compiled_status_pass_equals_the_array_formulas_after_random_price_moves() -> None:
    # Arrange: 2,000 accounts (cross and isolated) over 100 perpetuals, marks moved ±20 %
    book = monitor_throughput.build_book(2_000, 100, 5, seed=3)
    state = RiskState.from_book(book, margin(book, monitor_throughput.profile(5)))
    rng = np.random.default_rng(7)
    state.mark *= rng.uniform(0.8, 1.2, state.mark.size)
    everyone = np.arange(state.account_count, dtype=np.int64)

    # Act
    compiled = state.account_status(everyone)

    # Assert: each account's worst scope status by the array formulas; every status occurs
    scopes = np.arange(state.scope_account.size, dtype=np.int64)
    expected = np.zeros(state.account_count, dtype=np.int8)
    np.maximum.at(expected, state.scope_account, state.scope_status(scopes))
    assert np.array_equal(compiled, expected)
    assert set(np.unique(compiled).tolist()) == {0, 1, 2}


def test_accounts_of_instruments_are_the_sorted_holders() -> None:
    # Arrange
    book = monitor_throughput.build_book(2_000, 100, 5, seed=3)
    state = RiskState.from_book(book, margin(book, monitor_throughput.profile(5)))
    moved = np.array([3, 40, 3, 99], dtype=np.int64)

    # Act
    holders = state.accounts_of_instruments(moved)
    again = state.accounts_of_instruments(moved[:1])

    # Assert: np.unique of the holders' accounts; the scratch is clean for the next call
    expected = np.unique(state.position_account[np.isin(state.position_instrument, moved)])
    assert np.array_equal(holders, expected)
    assert np.array_equal(again, np.unique(state.position_account[state.position_instrument == 3]))

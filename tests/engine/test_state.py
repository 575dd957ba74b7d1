"""The engine's compiled status pass against the array formulas of `RiskState.scope_status`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marginkit.book import resolve
from marginkit.engine import RiskState
from marginkit.io.book_file import parse_book
from marginkit.models.tiered import margin
from marginkit.profiles import shipped_profile

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


def _btc_book(mark: float) -> Any:
    return resolve(parse_book({
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [{"id": "BTCUSDT", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "USDT", "inverse": False, "contract_size": 1}],
        "market": {"index": {"BTC": mark, "USDT": 1.0}, "marks": {"BTCUSDT": mark}},
        "accounts": [{"id": "short", "mode": "cross", "collateral": {"USDT": 100000},
                      "positions": [{"instrument": "BTCUSDT", "quantity": -3, "entry_price": 90000}]}]}))


def test_a_position_growing_into_the_next_bracket_is_margined_at_its_rate() -> None:
    # Arrange: binance-usdm BTC, short 3 BTC at 90,000: notional 270,000 in the first bracket (MM 0.4 %, cum 0)
    profile = shipped_profile("binance-usdm")
    book = _btc_book(90000.0)
    state = RiskState.from_book(book, margin(book, profile), profile)
    everyone = np.arange(1, dtype=np.int64)
    _, _, at_start = state.position_figures(everyone)

    # Act: the mark rallies to 110,000: notional 330,000, the second bracket (MM 0.5 %, cum 300)
    state.mark[0] = 110000.0
    _, initial, maintenance = state.position_figures(everyone)

    # Assert: 270,000 × 0.004 = 1,080 at the start; 330,000 × 0.005 − 300 = 1,350 after (a fixed 0.4 % rate
    # would say 1,320); both as the model gives at that mark (IM: 330,000 / 100, the bracket's maximum leverage)
    assert at_start[0] == pytest.approx(1080.0, rel=1e-12)
    assert maintenance[0] == pytest.approx(1350.0, rel=1e-12)
    model = margin(_btc_book(110000.0), profile)
    assert model.positions is not None
    assert maintenance[0] == pytest.approx(model.positions.maintenance_margin[0], rel=1e-12)
    assert initial[0] == pytest.approx(model.positions.initial_margin[0], rel=1e-12)
    assert initial[0] == pytest.approx(3300.0, rel=1e-12)

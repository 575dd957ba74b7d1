"""Implied volatility: round trips over a wide grid and with hypothesis, invalid prices (pricing/implied.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from marginkit.pricing import black76_greeks, black76_price, implied_volatility, implied_volatility_with_mask

EPSILON = float(np.finfo(np.float64).eps)


def test_out_of_the_money_round_trip_over_a_wide_grid() -> None:
    # Out-of-the-money calls and puts, |ln K/F| ≤ 10 and σ√T from 1e-4 to 6: the price is pure time value, so σ
    # is well conditioned and comes back to 1e-12 relative wherever the price is a normal float (≥ 1e-300·F).
    log_moneyness = np.concatenate([-np.geomspace(1e-8, 10.0, 60), [0.0], np.geomspace(1e-8, 10.0, 60)])
    std = np.geomspace(1e-4, 6.0, 60)
    k, s = (a.ravel() for a in np.meshgrid(log_moneyness, std))
    forward, years = 95400.0, 0.5
    strike = forward * np.exp(k)
    volatility = s / math.sqrt(years)
    is_call = k >= 0.0
    discount = math.exp(-0.03 * years)
    prices = black76_price(forward, strike, years, volatility, is_call, discount)
    representable = prices >= 1e-300 * forward

    recovered = implied_volatility(prices[representable], forward, strike[representable], years,
                                   is_call[representable], discount)

    assert representable.sum() > 5000
    np.testing.assert_allclose(recovered, volatility[representable], rtol=1e-12)


def test_in_the_money_and_at_the_money_round_trip() -> None:
    # In the money the time value is the price less D·intrinsic; with a time value well above the price's
    # rounding the volatility still comes back to 1e-10.
    strike = np.array([50.0, 80.0, 100.0, 120.0, 200.0])
    volatility = np.array([0.9, 0.4, 0.25, 0.4, 0.9])

    calls = black76_price(100.0, strike, 1.0, volatility, True, 0.96)
    puts = black76_price(100.0, strike, 1.0, volatility, False, 0.96)

    np.testing.assert_allclose(implied_volatility(calls, 100.0, strike, 1.0, True, 0.96), volatility, rtol=1e-10)
    np.testing.assert_allclose(implied_volatility(puts, 100.0, strike, 1.0, False, 0.96), volatility, rtol=1e-10)


def test_coin_settled_premium_round_trip() -> None:
    # A coin premium (the USD price over F) inverts to the same vol: 0.021 BTC is multiplied back by F first.
    coin = black76_greeks(95400.0, 100000.0, 0.0876, 0.55, True, 1.0, inverse=True).price

    volatility = implied_volatility(coin, 95400.0, 100000.0, 0.0876, True, 1.0, inverse=True)

    assert float(volatility) == pytest.approx(0.55, rel=1e-13)


@settings(max_examples=400, deadline=None)
@given(
    log_moneyness=st.floats(-8.0, 8.0),
    std=st.floats(1e-3, 5.0),
    years=st.floats(1e-3, 10.0),
    forward=st.floats(1e-3, 1e6),
    rate=st.floats(-0.02, 0.15),
    is_call=st.booleans(),
)
def test_round_trip_recovers_volatility(log_moneyness: float, std: float, years: float, forward: float, rate: float,
                                        is_call: bool) -> None:
    # σ back to 1e-10 relative, plus what the price's own rounding allows: a price known to ~4 ulps moves σ by
    # 4ε·price/vega, which matters only in the money, where the time value is a small part of the price. Deep in
    # the money a time value below about 1e-10 of the price is mostly rounding and pins down no volatility.
    strike = forward * math.exp(log_moneyness)
    volatility = std / math.sqrt(years)
    discount = math.exp(-rate * years)
    result = black76_greeks(forward, strike, years, volatility, is_call, discount)
    price = float(result.price)
    time_value = price - discount * max(forward - strike if is_call else strike - forward, 0.0)
    assume(price >= 1e-300 * forward and time_value >= 1e-10 * price)

    recovered = float(implied_volatility(price, forward, strike, years, is_call, discount))

    tolerance = 1e-10 * volatility + 4.0 * EPSILON * price / float(result.vega) if result.vega > 0 else math.inf
    assert abs(recovered - volatility) <= tolerance


def test_prices_outside_the_arbitrage_bounds_are_masked_not_nan() -> None:
    # F = K = 100, D = 0.9, call: intrinsic 0, upper bound D·F = 90. A put with K = 120: D·intrinsic = 18.
    prices = np.array([-1.0, 0.0, 5.0, 90.0, 95.0, 17.9, 18.0])
    strike = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 120.0, 120.0])
    is_call = np.array([True, True, True, True, True, False, False])

    result = implied_volatility_with_mask(prices, 100.0, strike, 1.0, is_call, 0.9)

    np.testing.assert_array_equal(result.valid, [False, True, True, False, False, False, True])
    assert np.all(np.isfinite(result.volatility))
    np.testing.assert_array_equal(result.volatility[[0, 1, 3, 4, 5, 6]], 0.0)
    assert result.volatility[2] > 0.0


def test_bad_inputs_are_masked() -> None:
    # Non-finite price, non-positive forward, zero years: no volatility.
    result = implied_volatility_with_mask(np.array([np.nan, 5.0, 5.0]), np.array([100.0, -1.0, 100.0]), 100.0,
                                          np.array([1.0, 1.0, 0.0]), True, 1.0)

    np.testing.assert_array_equal(result.valid, [False, False, False])
    np.testing.assert_array_equal(result.volatility, [0.0, 0.0, 0.0])


def test_implied_volatility_names_the_first_price_without_one() -> None:
    prices = np.array([[5.0, 5.0], [5.0, 120.0]])

    with pytest.raises(ValueError, match=r"price\[1, 1\] = 120.0: the price is at or above its upper bound"):
        implied_volatility(prices, 100.0, 100.0, 1.0, True, 1.0)
    with pytest.raises(ValueError, match=r"price = -1.0: the price is below the discounted intrinsic value"):
        implied_volatility(-1.0, 100.0, 100.0, 1.0, True, 1.0)

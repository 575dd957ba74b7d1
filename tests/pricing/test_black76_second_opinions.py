"""Black-76 and implied volatility against QuantLib's BlackCalculator and vollib (pricing/).

Second opinions at 1e-7 relative on prices above 1e-6 × F (both libraries use the textbook formula, which
loses digits further out of the money, where mpmath is the oracle: test_black76_exact.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginkit.pricing import black76_greeks, implied_volatility

ql = pytest.importorskip("QuantLib", reason="QuantLib is a test-only dependency (pip install -e '.[dev]')")
vollib_black = pytest.importorskip("vollib.black", reason="vollib is a test-only dependency (pip install -e '.[dev]')")
vollib_greeks = pytest.importorskip("vollib.black.greeks.analytical", reason="vollib is a test-only dependency")
vollib_implied = pytest.importorskip("vollib.black.implied_volatility", reason="vollib is a test-only dependency")

TOLERANCE = 1e-7
PRICE_FLOOR = 1e-6  # × F


def option_grid() -> tuple[np.ndarray, ...]:
    """(F, K, T, σ, is_call, D): 21 strikes with |ln K/F| ≤ 2 × 7 vols × 5 expiries × call/put, r = 4 %."""
    rows = []
    for forward in (95400.0, 3300.0):
        for log_moneyness in np.linspace(-2.0, 2.0, 21):
            for volatility in (0.05, 0.15, 0.3, 0.5, 0.8, 1.2, 2.0):
                for years in (1 / 365, 0.02, 0.25, 1.0, 3.0):
                    for is_call in (True, False):
                        rows.append((forward, forward * math.exp(log_moneyness), years, volatility, is_call,
                                     math.exp(-0.04 * years)))
    return tuple(np.array(column) for column in zip(*rows, strict=True))


def test_price_and_greeks_match_quantlib_black_calculator() -> None:
    forward, strike, years, volatility, is_call, discount = option_grid()

    ours = black76_greeks(forward, strike, years, volatility, is_call, discount)

    checked = 0
    for i in range(forward.size):
        option_type = ql.Option.Call if is_call[i] else ql.Option.Put
        payoff = ql.PlainVanillaPayoff(option_type, float(strike[i]))
        calculator = ql.BlackCalculator(payoff, float(forward[i]), float(volatility[i] * math.sqrt(years[i])),
                                        float(discount[i]))
        if calculator.value() < PRICE_FLOOR * forward[i]:
            continue
        checked += 1
        # QuantLib's theta(spot, T) with spot = forward is −∂V/∂T at fixed forward and rate, per year.
        expected = (calculator.value(), calculator.deltaForward(), calculator.gammaForward(),
                    calculator.vega(float(years[i])), calculator.theta(float(forward[i]), float(years[i])))
        computed = (ours.price[i], ours.delta[i], ours.gamma[i], ours.vega[i], ours.theta[i])
        for name, value, reference in zip(("price", "delta", "gamma", "vega", "theta"), computed, expected,
                                          strict=True):
            scale = max(abs(reference), 1e-9 * forward[i])  # Greeks that are ~0 are compared absolutely
            assert abs(value - reference) <= TOLERANCE * scale, (name, i, value, reference)
    assert checked > 1500


def test_price_and_greeks_match_vollib() -> None:
    forward, strike, years, volatility, is_call, discount = option_grid()

    ours = black76_greeks(forward, strike, years, volatility, is_call, discount)

    checked = 0
    for i in range(forward.size):
        flag = "c" if is_call[i] else "p"
        arguments = (flag, float(forward[i]), float(strike[i]), float(years[i]), -math.log(discount[i]) / years[i],
                     float(volatility[i]))
        price = vollib_black.black(*arguments)
        if price < PRICE_FLOOR * forward[i]:
            continue
        checked += 1
        # vollib quotes vega per vol point (× 0.01) and theta per calendar day (÷ 365).
        expected = (price, vollib_greeks.delta(*arguments), vollib_greeks.gamma(*arguments),
                    vollib_greeks.vega(*arguments) / 0.01, vollib_greeks.theta(*arguments) * 365.0)
        computed = (ours.price[i], ours.delta[i], ours.gamma[i], ours.vega[i], ours.theta[i])
        for name, value, reference in zip(("price", "delta", "gamma", "vega", "theta"), computed, expected,
                                          strict=True):
            scale = max(abs(reference), 1e-9 * forward[i])
            assert abs(value - reference) <= TOLERANCE * scale, (name, i, value, reference)
    assert checked > 1500


def test_implied_volatility_matches_vollib_lets_be_rational() -> None:
    # vollib wraps Jäckel's "Let's Be Rational"; both invert the same out-of-the-money prices (in the money,
    # the time value is a difference of the price and the intrinsic value, which vollib rejects when rounding
    # puts it a hair below zero).
    forward, strike, years, volatility, is_call, discount = option_grid()
    prices = black76_greeks(forward, strike, years, volatility, is_call, discount).price
    out_of_the_money = np.where(is_call, strike >= forward, strike <= forward)
    keep = (prices >= PRICE_FLOOR * forward) & out_of_the_money

    ours = implied_volatility(prices[keep], forward[keep], strike[keep], years[keep], is_call[keep], discount[keep])

    theirs = np.array([
        vollib_implied.implied_volatility(float(p), float(f), float(k), -math.log(d) / t, float(t), "c" if c else "p")
        for p, f, k, t, c, d in zip(prices[keep], forward[keep], strike[keep], years[keep], is_call[keep],
                                    discount[keep], strict=True)
    ])
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE)
    np.testing.assert_allclose(ours, volatility[keep], rtol=TOLERANCE)

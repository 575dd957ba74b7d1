"""Black-76 against an exact oracle: mpmath at 50 significant digits (pricing/black76.py).

The oracle evaluates the textbook formula at the float inputs themselves, so any difference is ours:
the price to 1e-12 relative over |ln K/F| ≤ 2 and σ√T in [0.005, 3] (and beyond), and every Greek,
linear and coin-settled, against mpmath's own derivatives of the exact price.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from marginkit.pricing import black76_greeks, black76_price

DIGITS = 50
PRICE_TOLERANCE = 1e-12
GREEK_TOLERANCE = 1e-10
SMALLEST_NORMAL_PRICE = 1e-300  # × F: below this, float64 cannot hold a price to relative accuracy


def exact_price(forward: float, strike: float, years: float, volatility: float, is_call: bool,
                discount: float) -> mp.mpf:
    """D·(F·N(d1) − K·N(d2)) or D·(K·N(−d2) − F·N(−d1)) in mpmath at the current precision."""
    F, K, T, sigma, D = (mp.mpf(v) for v in (forward, strike, years, volatility, discount))
    s = sigma * mp.sqrt(T)
    d1 = (mp.log(F / K) + s * s / 2) / s
    d2 = d1 - s
    if is_call:
        return D * (F * mp.ncdf(d1) - K * mp.ncdf(d2))
    return D * (K * mp.ncdf(-d2) - F * mp.ncdf(-d1))


def grid(log_moneyness_limit: float, smallest_std: float, largest_std: float,
         points: int) -> list[tuple[float, float, float, float, bool, float]]:
    """(F, K, T, σ, is_call, D) over ln(K/F) × σ√T, calls and puts, three forward levels and T = 0.3."""
    years = 0.3
    discount = math.exp(-0.05 * years)
    cases = []
    for log_moneyness in np.linspace(-log_moneyness_limit, log_moneyness_limit, points):
        for std in np.geomspace(smallest_std, largest_std, points):
            for forward in (95400.0, 1.0, 3.3e-4):
                for is_call in (True, False):
                    cases.append((forward, forward * math.exp(log_moneyness), years, std / math.sqrt(years),
                                  is_call, discount))
    return cases


def assert_prices_exact(cases: list[tuple[float, float, float, float, bool, float]]) -> None:
    forward, strike, years, volatility, is_call, discount = (np.array(column) for column in zip(*cases, strict=True))

    prices = black76_price(forward, strike, years, volatility, is_call, discount)

    worst = 0.0
    with mp.workdps(DIGITS):
        for case, price in zip(cases, prices, strict=True):
            exact = exact_price(*case)
            if exact < SMALLEST_NORMAL_PRICE * case[0]:
                # Beyond float64's normal range the price can only be tiny, not accurate.
                assert price <= 1e3 * SMALLEST_NORMAL_PRICE * case[0]
                continue
            worst = max(worst, float(abs(price / exact - 1)))
    assert worst <= PRICE_TOLERANCE


def test_prices_match_mpmath_to_1e_12_over_the_stated_domain() -> None:
    # |ln K/F| ≤ 2, σ√T in [0.005, 3]: 41 × 41 points × 3 forwards × call/put, far out of the money included
    # (the textbook formula would lose up to 5 digits there to cancellation).
    assert_prices_exact(grid(2.0, 0.005, 3.0, 41))


def test_prices_match_mpmath_beyond_the_stated_domain() -> None:
    # |ln K/F| ≤ 10 with σ√T in [0.001, 10], and a fine grid very near the money with σ√T down to 1e-4.
    assert_prices_exact(grid(10.0, 0.001, 10.0, 21))
    assert_prices_exact(grid(0.01, 1e-4, 0.01, 21))


def test_prices_are_accurate_in_every_region_of_the_normalised_black_function() -> None:
    # One option per branch (Jäckel 2015): h = ln(F/K)/(σ√T), t = σ√T/2.
    # region 1 (h < −10): K = 2F, σ√T = 0.05 → h = −13.9; region 2 (t < 0.21): K = 1.1F, σ√T = 0.2;
    # region 3 (h + t > 0.85): K = F, σ√T = 2; region 4: K = 1.2F, σ√T = 0.6.
    cases = [(100.0, 200.0, 1.0, 0.05, True, 0.99), (100.0, 110.0, 1.0, 0.2, True, 0.99),
             (100.0, 100.0, 1.0, 2.0, False, 0.99), (100.0, 120.0, 1.0, 0.6, True, 0.99)]

    assert_prices_exact(cases)


GREEK_CASES = [
    # (F, K, T, σ, is_call, D): near and far from the money, short and long dated, with discounting.
    (100.0, 100.0, 1.0, 0.2, True, 0.95),
    (100.0, 100.0, 1.0, 0.2, False, 0.95),
    (95400.0, 120000.0, 0.0876, 0.55, True, 1.0),
    (95400.0, 70000.0, 0.0876, 0.55, False, 0.999),
    (3300.0, 3000.0, 2.0, 0.8, True, 0.9),
    (3300.0, 3000.0, 2.0, 0.8, False, 0.9),
    (1.0, 1.5, 0.25, 0.3, True, 0.98),
    (1.0, 0.6, 0.01, 0.9, False, 1.0),
    (50.0, 80.0, 0.5, 0.05, True, 0.97),
]


def exact_greeks(forward: float, strike: float, years: float, volatility: float, is_call: bool, discount: float,
                 inverse: bool) -> tuple[mp.mpf, ...]:
    """Price, ∂/∂F, ∂²/∂F², ∂/∂σ, −∂/∂T (r = −ln(D)/T held) of the exact (coin) price; coin delta is F·∂V/∂F."""
    rate = -mp.log(mp.mpf(discount)) / mp.mpf(years)

    def value(F: mp.mpf, T: mp.mpf, sigma: mp.mpf) -> mp.mpf:
        price = exact_price(F, strike, T, sigma, is_call, mp.exp(-rate * T))
        return price / F if inverse else price

    F, T, sigma = mp.mpf(forward), mp.mpf(years), mp.mpf(volatility)
    first = mp.diff(lambda f: value(f, T, sigma), F)
    delta = F * first if inverse else first
    return (value(F, T, sigma), delta, mp.diff(lambda f: value(f, T, sigma), F, 2),
            mp.diff(lambda s: value(F, T, s), sigma), -mp.diff(lambda t: value(F, t, sigma), T))


@pytest.mark.parametrize("inverse", [False, True], ids=["linear", "coin-settled"])
def test_greeks_match_mpmath_derivatives(inverse: bool) -> None:
    forward, strike, years, volatility, is_call, discount = (np.array(c) for c in zip(*GREEK_CASES, strict=True))

    result = black76_greeks(forward, strike, years, volatility, is_call, discount, inverse=inverse)

    with mp.workdps(DIGITS):
        for i, case in enumerate(GREEK_CASES):
            expected = exact_greeks(*case, inverse=inverse)
            computed = (result.price[i], result.delta[i], result.gamma[i], result.vega[i], result.theta[i])
            for name, ours, exact in zip(("price", "delta", "gamma", "vega", "theta"), computed, expected,
                                         strict=True):
                assert float(abs(ours - exact)) <= GREEK_TOLERANCE * float(abs(exact)) + 1e-300, (name, case)

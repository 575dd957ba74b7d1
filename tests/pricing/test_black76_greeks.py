"""Black-76 Greeks: hand-computed values, central finite differences, the coin-settled (inverse) variant,
expiry, broadcasting and bad input (pricing/black76.py)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from marginkit.pricing import black76_greeks, black76_price

N = NormalDist().cdf
PDF = NormalDist().pdf


def test_at_the_money_call_by_hand() -> None:
    # F = K = 100, T = 1, σ = 0.2, D = 1: d1 = (0 + 0.02)/0.2 = 0.1, d2 = −0.1, N(0.1) = 0.5398278, φ(0.1) = 0.3969525.
    # price = 100·(N(0.1) − N(−0.1)) = 7.9655675; delta = N(0.1) = 0.5398278; gamma = φ(0.1)/(100 × 0.2) = 0.0198476;
    # vega = 100·φ(0.1)·√1 = 39.695255; theta = −100·φ(0.1)·0.2/(2√1) = −3.9695255 (r = 0).
    result = black76_greeks(100.0, 100.0, 1.0, 0.2, True, 1.0)

    assert float(result.price) == pytest.approx(100.0 * (N(0.1) - N(-0.1)), rel=1e-14)
    assert float(result.delta) == pytest.approx(N(0.1), rel=1e-14)
    assert float(result.gamma) == pytest.approx(PDF(0.1) / 20.0, rel=1e-14)
    assert float(result.vega) == pytest.approx(100.0 * PDF(0.1), rel=1e-14)
    assert float(result.theta) == pytest.approx(-100.0 * PDF(0.1) * 0.2 / 2.0, rel=1e-14)


def test_discounted_put_by_hand() -> None:
    # F = 95400, K = 100000, T = 0.25, σ = 0.6, r = 5 %: D = e^(−0.0125); s = 0.3, d1 = (ln(0.954) + 0.045)/0.3.
    # put = D·(K·N(−d2) − F·N(−d1)); delta = −D·N(−d1); theta = r·put − D·F·φ(d1)·σ/(2√T).
    discount = math.exp(-0.05 * 0.25)
    d1 = (math.log(95400.0 / 100000.0) + 0.5 * 0.3**2) / 0.3
    d2 = d1 - 0.3
    put = discount * (100000.0 * N(-d2) - 95400.0 * N(-d1))
    theta = 0.05 * put - discount * 95400.0 * PDF(d1) * 0.6 / (2.0 * 0.5)

    result = black76_greeks(95400.0, 100000.0, 0.25, 0.6, False, discount)

    assert float(result.price) == pytest.approx(put, rel=1e-13)
    assert float(result.delta) == pytest.approx(-discount * N(-d1), rel=1e-13)
    assert float(result.theta) == pytest.approx(theta, rel=1e-12)


def test_coin_settled_call_premium_and_premium_adjusted_delta() -> None:
    # Deribit-style BTC call: F = 95400, K = 100000, T = 0.0876, σ = 0.55, D = 1. The coin premium is the USD
    # price over F, V = (F·N(d1) − K·N(d2))/F; the premium-adjusted delta is N(d1) − V (book-format.md).
    s = 0.55 * math.sqrt(0.0876)
    d1 = (math.log(95400.0 / 100000.0) + 0.5 * s * s) / s
    coin_premium = (95400.0 * N(d1) - 100000.0 * N(d1 - s)) / 95400.0

    result = black76_greeks(95400.0, 100000.0, 0.0876, 0.55, True, 1.0, inverse=True)

    assert float(result.price) == pytest.approx(coin_premium, rel=1e-12)
    assert float(result.delta) == pytest.approx(N(d1) - coin_premium, rel=1e-12)


def test_coin_settled_put_delta_is_linear_delta_less_coin_premium() -> None:
    # D·(N(d1) − 1) − V for a put, V the coin premium; vega and theta are the linear ones over F.
    arguments = (np.array([3300.0, 3300.0]), np.array([3000.0, 3600.0]), 0.5, 0.7, False, 0.98)

    linear = black76_greeks(*arguments)
    coin = black76_greeks(*arguments, inverse=True)

    np.testing.assert_allclose(coin.price, linear.price / 3300.0, rtol=1e-15)
    np.testing.assert_allclose(coin.delta, linear.delta - linear.price / 3300.0, rtol=1e-14)
    np.testing.assert_allclose(coin.vega, linear.vega / 3300.0, rtol=1e-15)
    np.testing.assert_allclose(coin.theta, linear.theta / 3300.0, rtol=1e-15)


CASES = [
    # (F, K, T, σ, is_call, r)
    (100.0, 100.0, 1.0, 0.2, True, 0.03),
    (100.0, 130.0, 0.5, 0.35, True, 0.0),
    (100.0, 70.0, 0.5, 0.35, False, 0.05),
    (95400.0, 80000.0, 0.02, 0.6, True, 0.01),
    (95400.0, 120000.0, 1.5, 0.9, False, 0.04),
    (3300.0, 3300.0, 0.003, 1.1, False, 0.0),
]


def value(forward: float, strike: float, years: float, volatility: float, is_call: bool, rate: float,
          inverse: bool) -> float:
    return float(black76_greeks(forward, strike, years, volatility, is_call, math.exp(-rate * years),
                                inverse=inverse).price)


@pytest.mark.parametrize("inverse", [False, True], ids=["linear", "coin-settled"])
@pytest.mark.parametrize("case", CASES)
def test_greeks_match_central_finite_differences(case: tuple[float, float, float, float, bool, float],
                                                 inverse: bool) -> None:
    # delta ≈ (V(F+h) − V(F−h))/2h (× F for the coin delta, F·∂V/∂F), gamma ≈ (V(F+h) − 2V + V(F−h))/h²,
    # vega ≈ ∂V/∂σ, theta ≈ −∂V/∂T with the rate r held (D = e^(−rT) moves with T).
    forward, strike, years, volatility, is_call, rate = case
    bump_f, bump_sigma, bump_t = 1e-4 * forward, 1e-5, 1e-6 * years

    def at(f: float = forward, t: float = years, s: float = volatility) -> float:
        return value(f, strike, t, s, is_call, rate, inverse)

    slope = (at(f=forward + bump_f) - at(f=forward - bump_f)) / (2 * bump_f)
    delta = forward * slope if inverse else slope
    gamma = (at(f=forward + 10 * bump_f) - 2 * at() + at(f=forward - 10 * bump_f)) / (10 * bump_f) ** 2
    vega = (at(s=volatility + bump_sigma) - at(s=volatility - bump_sigma)) / (2 * bump_sigma)
    theta = -(at(t=years + bump_t) - at(t=years - bump_t)) / (2 * bump_t)

    result = black76_greeks(forward, strike, years, volatility, is_call, math.exp(-rate * years), inverse=inverse)

    scale = 1.0 / forward if inverse else 1.0  # size of a coin-settled option's values
    assert float(result.delta) == pytest.approx(delta, rel=1e-6, abs=1e-9)
    assert float(result.gamma) == pytest.approx(gamma, rel=1e-4, abs=1e-9 * scale / forward)
    assert float(result.vega) == pytest.approx(vega, rel=1e-6, abs=1e-9 * forward * scale)
    assert float(result.theta) == pytest.approx(theta, rel=1e-6, abs=1e-9 * forward * scale)


def test_expiry_and_zero_volatility_give_intrinsic_value_and_its_slope() -> None:
    # T = 0 (and T < 0): D·max(F − K, 0), delta 1 in the money, ½ at the money, 0 out of it; gamma = vega = 0,
    # theta 0. σ = 0 with T = 1, r = 5 %: price D·(F − K) = e^(−0.05)·10, theta = r·price.
    forward = np.array([110.0, 100.0, 90.0])

    at_expiry = black76_greeks(forward, 100.0, np.array([0.0, 0.0, -0.1]), 0.5, True, 1.0)
    zero_vol = black76_greeks(110.0, 100.0, 1.0, 0.0, True, math.exp(-0.05))

    np.testing.assert_array_equal(at_expiry.price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(at_expiry.delta, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(at_expiry.gamma, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(at_expiry.vega, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(at_expiry.theta, [0.0, 0.0, 0.0])
    assert float(zero_vol.price) == pytest.approx(math.exp(-0.05) * 10.0, rel=1e-15)
    assert float(zero_vol.theta) == pytest.approx(0.05 * math.exp(-0.05) * 10.0, rel=1e-12)


def test_arguments_broadcast_and_price_agrees_with_greeks() -> None:
    # A 3 × 4 grid from a column of strikes and a row of vols; call/put and inverse per row.
    strikes = np.array([[80.0], [100.0], [120.0]])
    vols = np.array([0.1, 0.3, 0.6, 1.0])
    is_call = np.array([[True], [False], [True]])

    prices = black76_price(100.0, strikes, 0.5, vols, is_call, 0.99)
    result = black76_greeks(100.0, strikes, 0.5, vols, is_call, 0.99, inverse=np.array([[False], [True], [False]]))

    assert prices.shape == (3, 4)
    assert result.theta.shape == (3, 4)
    np.testing.assert_array_equal(result.price[[0, 2]], prices[[0, 2]])
    np.testing.assert_allclose(result.price[1], prices[1] / 100.0, rtol=1e-15)
    assert np.ndim(black76_price(100.0, 100.0, 1.0, 0.2, True, 1.0)) == 0


def test_many_options_agree_with_one_at_a_time() -> None:
    # The vectorised pass (blocks of 256 options) and the one-option path give the same numbers.
    rng = np.random.default_rng(7)
    n = 1000
    forward = rng.uniform(50.0, 150.0, n)
    strike = forward * np.exp(rng.uniform(-1.0, 1.0, n))
    years = rng.choice([0.0, 0.001, 0.1, 1.0, 5.0], n)
    volatility = rng.choice([0.0, 0.01, 0.3, 2.0], n)
    is_call = rng.random(n) < 0.5

    together = black76_greeks(forward, strike, years, volatility, is_call, 0.97)

    for i in range(0, n, 37):
        alone = black76_greeks(forward[i], strike[i], years[i], volatility[i], is_call[i], 0.97)
        for name in ("price", "delta", "gamma", "vega", "theta"):
            assert getattr(together, name)[i] == pytest.approx(float(getattr(alone, name)), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize(("field", "bad", "message"), [
    ("forward", np.nan, r"black76_greeks: forward\[1\] = nan: must be positive and finite"),
    ("strike", -5.0, r"strike\[1\] = -5.0: must be positive and finite"),
    ("years", np.inf, r"years\[1\] = inf: must be finite"),
    ("volatility", -0.2, r"volatility\[1\] = -0.2: must be non-negative and finite"),
    ("discount", 0.0, r"discount\[1\] = 0.0: must be positive and finite"),
])
def test_bad_input_is_refused_naming_the_element(field: str, bad: float, message: str) -> None:
    arguments = {"forward": 100.0, "strike": 100.0, "years": 1.0, "volatility": 0.2, "discount": 1.0}
    arguments[field] = np.array([arguments[field], bad])

    with pytest.raises(ValueError, match=message):
        black76_greeks(is_call=True, **arguments)

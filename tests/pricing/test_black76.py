"""Black-76 prices and the raw SVI smile (pricing/)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginkit.pricing import black76_price, svi_volatility


def test_black76_put_on_futures_matches_hull() -> None:
    # Hull, "Options, Futures, and Other Derivatives", Black's model example: European put on a futures
    # price F = 20, K = 20, r = 9 %, T = 4/12, σ = 25 % → p = 1.12.
    # d1 = (0 + 0.25²/2·(1/3))/(0.25·√(1/3)) = 0.07216, d2 = −0.07216; p = e^(−0.03)·20·(N(0.07216) − N(−0.07216))
    discount = math.exp(-0.09 * 4 / 12)

    price = black76_price(20.0, 20.0, 4 / 12, 0.25, False, discount)

    assert float(price) == pytest.approx(1.12, abs=0.005)


def test_black76_put_call_parity() -> None:
    # C − P = D·(F − K) for every strike.
    strikes = np.array([60.0, 90.0, 100.0, 140.0])
    discount = math.exp(-0.05 * 0.5)

    calls = black76_price(100.0, strikes, 0.5, 0.3, True, discount)
    puts = black76_price(100.0, strikes, 0.5, 0.3, False, discount)

    np.testing.assert_allclose(calls - puts, discount * (100.0 - strikes), rtol=0, atol=1e-12)


def test_black76_at_expiry_is_intrinsic() -> None:
    # T = 0: call = max(F − K, 0) = 10, put = max(K − F, 0) = 0.
    assert float(black76_price(110.0, 100.0, 0.0, 0.5, True, 1.0)) == 10.0
    assert float(black76_price(110.0, 100.0, 0.0, 0.5, False, 1.0)) == 0.0


def test_svi_at_the_money_total_variance() -> None:
    # k = ln(K/F) = 0, m = 0: w = a + b·σ = 0.004 + 0.05 × 0.15 = 0.0115; T = 0.0876 → vol = √(0.0115/0.0876)
    vol = svi_volatility(95400.0, 95400.0, 0.0876, 0.004, 0.05, -0.1, 0.0, 0.15)

    assert float(vol) == pytest.approx(math.sqrt(0.0115 / 0.0876), rel=1e-12)

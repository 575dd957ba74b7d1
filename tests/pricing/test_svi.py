"""The raw SVI smile away from the money (pricing/svi.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginkit.pricing import svi_volatility


def test_raw_svi_off_the_money_by_hand() -> None:
    # K = 110, F = 100, T = 0.5; a = 0.04, b = 0.4, ρ = −0.4, m = 0.1, σ = 0.2.
    # k = ln(1.1) = 0.0953102, k − m = −0.0046898, √((k − m)² + σ²) = √(0.0000220 + 0.04) = 0.2000550,
    # ρ(k − m) = 0.0018759; w = 0.04 + 0.4 × (0.0018759 + 0.2000550) = 0.1207724; vol = √(w/0.5) = 0.4914720.
    k = math.log(1.1) - 0.1
    total_variance = 0.04 + 0.4 * (-0.4 * k + math.sqrt(k * k + 0.2**2))

    vol = svi_volatility(110.0, 100.0, 0.5, 0.04, 0.4, -0.4, 0.1, 0.2)

    assert float(vol) == pytest.approx(math.sqrt(total_variance / 0.5), rel=1e-14)
    assert float(vol) == pytest.approx(0.4914720, abs=5e-8)


def test_raw_svi_smile_is_skewed_by_rho() -> None:
    # ρ = −0.5, m = 0: w(k) = 0.01 + 0.1·(−0.5k + √(k² + 0.01)); at k = ±ln(1.25) the put wing is higher.
    strikes = np.array([80.0, 100.0, 125.0])

    vols = svi_volatility(strikes, 100.0, 0.25, 0.01, 0.1, -0.5, 0.0, 0.1)

    k = np.log(strikes / 100.0)
    np.testing.assert_allclose(vols, np.sqrt((0.01 + 0.1 * (-0.5 * k + np.sqrt(k * k + 0.01))) / 0.25), rtol=1e-14)
    assert vols[0] > vols[2] > vols[1]

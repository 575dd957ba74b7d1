"""Raw SVI implied volatility (Gatheral 2004, "A parsimonious arbitrage-free implied volatility parameterization")."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]


def svi_volatility(
    strike: ArrayLike, forward: ArrayLike, years: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike,
    m: ArrayLike, sigma: ArrayLike,
) -> F64:
    """Annualised vol from raw SVI total variance w(k) = a + b(ρ(k−m) + √((k−m)² + σ²)), k = ln(K/F).

    vol = √(w/T); a non-positive total variance is an error of the smile, reported by the caller.
    """
    k = np.log(np.asarray(strike) / np.asarray(forward))
    a_, b_, rho_, m_, sigma_ = (np.asarray(x, dtype=np.float64) for x in (a, b, rho, m, sigma))
    total_variance = a_ + b_ * (rho_ * (k - m_) + np.sqrt((k - m_) ** 2 + sigma_ * sigma_))
    result: F64 = np.sqrt(np.maximum(total_variance, 0.0) / np.asarray(years))
    return result

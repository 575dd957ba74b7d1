"""Black-76 option prices on arrays (Black 1976, "The pricing of commodity contracts")."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

F64 = NDArray[np.float64]


def black76_price(
    forward: ArrayLike, strike: ArrayLike, years: ArrayLike, volatility: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike,
) -> F64:
    """Black-76 premium per unit of underlying, in the forward's currency, discounted by `discount`.

    call = D·(F·N(d1) − K·N(d2)), put = D·(K·N(−d2) − F·N(−d1)),
    d1 = (ln(F/K) + σ²T/2)/(σ√T), d2 = d1 − σ√T; at T = 0 or σ = 0 the discounted intrinsic value.
    """
    forward_a, strike_a, years_a, volatility_a, discount_a = np.broadcast_arrays(
        np.asarray(forward, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(years, dtype=np.float64),
        np.asarray(volatility, dtype=np.float64),
        np.asarray(discount, dtype=np.float64),
    )
    calls = np.broadcast_to(np.asarray(is_call, dtype=bool), forward_a.shape)
    std = volatility_a * np.sqrt(np.maximum(years_a, 0.0))
    live = std > 0
    safe_std = np.where(live, std, 1.0)
    d1 = (np.log(forward_a / strike_a) + 0.5 * std * std) / safe_std
    d2 = d1 - std
    call = forward_a * ndtr(d1) - strike_a * ndtr(d2)
    put = strike_a * ndtr(-d2) - forward_a * ndtr(-d1)
    value = np.where(calls, call, put)
    intrinsic = np.where(calls, np.maximum(forward_a - strike_a, 0.0), np.maximum(strike_a - forward_a, 0.0))
    result: F64 = discount_a * np.where(live, np.maximum(value, 0.0), intrinsic)
    return result

"""Vectorised option maths on NumPy arrays: Black-76 prices and Greeks, implied volatility, the raw SVI smile."""

from marginkit.pricing.black76 import Black76Result, black76_greeks, black76_price
from marginkit.pricing.implied import ImpliedVolatilityResult, implied_volatility, implied_volatility_with_mask
from marginkit.pricing.svi import svi_volatility

__all__ = [
    "Black76Result",
    "ImpliedVolatilityResult",
    "black76_greeks",
    "black76_price",
    "implied_volatility",
    "implied_volatility_with_mask",
    "svi_volatility",
]

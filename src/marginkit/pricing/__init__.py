"""Vectorised option maths on NumPy arrays: Black-76 and the raw SVI smile."""

from marginkit.pricing.black76 import black76_price
from marginkit.pricing.svi import svi_volatility

__all__ = ["black76_price", "svi_volatility"]

"""dYdX v4 margin in its exact integer arithmetic on quote quantums (x/perpetuals liquidity tiers).

1 USDC = 10⁶ quote quantums; ppm = parts per million. Functions take Python ints or NumPy
object arrays of Python ints, so every step is exact (source: dydxprotocol/v4-chain,
protocol/x/perpetuals/types/liquidity_tier.go, as digested in reference/crypto-venues.md (f)).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

ONE_MILLION = 1_000_000


def ceil_div(numerator: Any, denominator: int) -> Any:
    """⌈numerator / denominator⌉ for non-negative Python ints (or object arrays of them)."""
    return -((-numerator) // denominator)


def maintenance_fraction_ppm(initial_margin_ppm: int, maintenance_fraction_ppm: int) -> int:
    """MMF in ppm = ⌊IMF_ppm × maintenance_fraction_ppm / 10⁶⌋."""
    return (initial_margin_ppm * maintenance_fraction_ppm) // ONE_MILLION


def adjusted_initial_margin_fraction(
    initial_margin_ppm: int, open_interest_notional: int, lower_cap: int, upper_cap: int
) -> Fraction:
    """The open-interest-scaled IMF as an exact fraction of 1.

    upper_cap = 0 or OI ≤ lower: IMF; OI ≥ upper: 1; else IMF + (OI − lower)/(upper − lower) × (1 − IMF).
    """
    base = Fraction(initial_margin_ppm, ONE_MILLION)
    if upper_cap == 0 or open_interest_notional <= lower_cap:
        return base
    if open_interest_notional >= upper_cap:
        return Fraction(1)
    return base + Fraction(open_interest_notional - lower_cap, upper_cap - lower_cap) * (1 - base)


def adjusted_initial_margin_ppm(
    initial_margin_ppm: int, open_interest_notional: int, lower_cap: int, upper_cap: int
) -> int:
    """The OI-adjusted IMF as the ppm reporter gives it: rounded down to an integer ppm."""
    fraction = adjusted_initial_margin_fraction(initial_margin_ppm, open_interest_notional, lower_cap, upper_cap)
    return int(fraction * ONE_MILLION // 1)


def initial_margin_quote_quantums(
    notional: Any, initial_margin_ppm: int, open_interest_notional: int = 0, lower_cap: int = 0, upper_cap: int = 0
) -> Any:
    """IMR = min(⌈IMF_eff × notional⌉, notional) in quote quantums (notional ≥ 0)."""
    fraction = adjusted_initial_margin_fraction(initial_margin_ppm, open_interest_notional, lower_cap, upper_cap)
    required = ceil_div(notional * fraction.numerator, fraction.denominator)
    if isinstance(required, int):
        return min(required, notional)
    return _elementwise_min(required, notional)


def base_initial_margin_quote_quantums(notional: Any, initial_margin_ppm: int) -> Any:
    """The base IMR without open-interest scaling: ⌈notional × IMF_ppm / 10⁶⌉."""
    return ceil_div(notional * initial_margin_ppm, ONE_MILLION)


def maintenance_margin_quote_quantums(notional: Any, initial_margin_ppm: int, maintenance_fraction: int) -> Any:
    """MMR = ⌈base IMR × maintenance_fraction_ppm / 10⁶⌉: the base IMR, no open-interest scaling."""
    return ceil_div(base_initial_margin_quote_quantums(notional, initial_margin_ppm) * maintenance_fraction,
                    ONE_MILLION)


def _elementwise_min(left: Any, right: Any) -> Any:
    import numpy as np

    return np.where(left < right, left, right)

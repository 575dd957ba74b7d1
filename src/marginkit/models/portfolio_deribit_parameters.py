"""Parameters of the `portfolio` model for Deribit Portfolio Margin, by Deribit's own names.

Accepts Deribit's `public/pme/get_params` response as returned (`general`, `currency_pair.<pair>`,
`currency.<coin>`) and the flat form of spec/profiles.md (`defaults`, `underlyings.<COIN>`) with the same
names. Used: mm_factor, buckets_count, price_range, volatility_range_up/down, min_volatility_for_shock_up,
short_term_vega_power, long_term_vega_power, extended_table_factor, max_delta_shock,
delta_total_liq_shock_threshold, pnl_offset, max_offsetable_pnl, annualised_move_risk, min_annualised_move,
extended_dampener, haircut. Unused (accepted, listed in the profile's notes): vol_scenarios_count (always 3),
timestamp, m_inc (meaning unpublished), equity_side_impact (application unpublished), correlation_set
(the correlation contingency is unpublished and 0 in every published figure).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from marginkit.errors import InputError
from marginkit.io.profile_file import Profile, StrictParameters, parse_parameters

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]

GENERAL_KEYS = ("mm_factor", "buckets_count", "vol_scenarios_count", "timestamp")
PAIR_KEYS = ("price_range", "volatility_range_up", "volatility_range_down", "min_volatility_for_shock_up",
             "short_term_vega_power", "long_term_vega_power", "extended_table_factor", "max_delta_shock",
             "delta_total_liq_shock_threshold", "m_inc")
CURRENCY_KEYS = ("pnl_offset", "max_offsetable_pnl", "annualised_move_risk", "min_annualised_move",
                 "extended_dampener", "haircut", "equity_side_impact", "correlation_set")


_Strict = StrictParameters


class General(_Strict):
    mm_factor: Fraction | None = None
    buckets_count: Annotated[int, Field(strict=True, ge=1, le=100)] | None = None
    vol_scenarios_count: Literal[3] | None = None
    timestamp: Annotated[int, Field(strict=True, ge=0)] | None = None


class CurrencyPair(_Strict):
    price_range: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)] | None = None
    volatility_range_up: NonNegative | None = None
    volatility_range_down: Fraction | None = None
    min_volatility_for_shock_up: NonNegative | None = None
    short_term_vega_power: NonNegative | None = None
    long_term_vega_power: NonNegative | None = None
    extended_table_factor: NonNegative | None = None
    max_delta_shock: NonNegative | None = None
    delta_total_liq_shock_threshold: NonNegative | None = None
    m_inc: NonNegative | None = None


class Currency(_Strict):
    pnl_offset: Fraction | None = None
    max_offsetable_pnl: NonNegative | None = None
    annualised_move_risk: NonNegative | None = None
    min_annualised_move: NonNegative | None = None
    extended_dampener: NonNegative | None = None
    haircut: Fraction | None = None
    equity_side_impact: Literal["both", "none", "positive", "negative"] | None = None
    correlation_set: bool | None = Field(default=None, strict=True)


class Flat(General, CurrencyPair, Currency):
    """Any Deribit key, for `defaults` and `underlyings.<COIN>`."""


class Rounding(_Strict):
    decimals: Annotated[int, Field(strict=True, ge=0, le=18)] = 9


class DeribitPmParameters(_Strict):
    method: Literal["deribit-pme"]
    general: General = General()
    currency_pair: dict[str, CurrencyPair] = Field(default_factory=dict)
    currency: dict[str, Currency] = Field(default_factory=dict)
    defaults: Flat = Flat()
    underlyings: dict[str, Flat] = Field(default_factory=dict)
    rounding: Rounding = Rounding()


REQUIRED = ("mm_factor", "buckets_count", "price_range", "volatility_range_up", "volatility_range_down",
            "min_volatility_for_shock_up", "short_term_vega_power", "long_term_vega_power",
            "extended_table_factor", "max_delta_shock", "delta_total_liq_shock_threshold", "pnl_offset",
            "max_offsetable_pnl", "annualised_move_risk", "min_annualised_move", "extended_dampener", "haircut")


def parse_deribit_pm_parameters(profile: Profile) -> DeribitPmParameters:
    """Validate a deribit-pm profile's `parameters`; InputError names the key path and the file."""
    return parse_parameters(profile, DeribitPmParameters)


def coin_settings(parameters: DeribitPmParameters, coin: str) -> dict[str, Any] | None:
    """Every used key for one coin (BTC → currency_pair.btc_usd, currency.btc, underlyings.BTC), or None."""
    merged: dict[str, Any] = {}
    layers: list[BaseModel] = [parameters.general, parameters.defaults]
    pair = parameters.currency_pair.get(f"{coin.lower()}_usd")
    currency = parameters.currency.get(coin.lower())
    layers += [m for m in (pair, currency, parameters.underlyings.get(coin)) if m is not None]
    for layer in layers:
        merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
    if pair is None and coin not in parameters.underlyings:
        return None
    missing = [k for k in REQUIRED if k not in merged]
    if missing:
        raise InputError(f"missing {', '.join(missing)} for {coin}",
                         field=f"parameters.currency_pair.{coin.lower()}_usd")
    return merged

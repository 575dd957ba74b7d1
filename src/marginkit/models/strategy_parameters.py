"""Parameters of the `strategy-based` model (CBOE Margin Manual, FINRA Rule 4210)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from marginkit.io.profile_file import Profile, StrictParameters, parse_parameters

Rate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=10)]
Money = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


_Strict = StrictParameters


class ShortOptionRates(_Strict):
    """Short option: premium + max(rate·U − OTM, minimum·(U for a call, X for a put)); rate by index class."""

    equity: Rate
    narrow: Rate
    broad: Rate
    minimum_call: Rate
    minimum_put: Rate


class RequirementLevel(_Strict):
    """One level's rates (initial under Reg T / CBOE, maintenance under FINRA 4210)."""

    long_stock: Rate
    short_stock: Rate
    short_stock_minimum_per_share: Money = 0.0
    low_price_threshold: Money = 0.0
    low_price_short_stock_rate: Rate = 0.0
    low_price_short_stock_minimum_per_share: Money = 0.0
    short_option: ShortOptionRates


class StrategyParameters(_Strict):
    """The `parameters` of a strategy-based profile; `house_multiplier` scales maintenance (a firm's house rule)."""

    initial: RequirementLevel
    maintenance: RequirementLevel
    house_multiplier: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=1)] = 1.0


def parse_strategy_parameters(profile: Profile) -> StrategyParameters:
    """Validate a strategy-based profile's `parameters`; InputError names the key path and the file."""
    return parse_parameters(profile, StrategyParameters)

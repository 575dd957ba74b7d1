"""The `var` model's profile parameters (spec/profiles.md): method, level, conventions, MPOR, APC and add-ons."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from marginkit.io.profile_file import Profile, StrictParameters, parse_parameters

Rate = float


class StressedPeriod(StrictParameters):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> StressedPeriod:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class AntiProcyclicality(StrictParameters):
    """EMIR RTS 153/2013 Art. 28: (a) buffer, (b) stressed-observation weight, (c) 10-year lookback floor."""

    buffer: float = Field(default=0.0, ge=0.0, le=1.0)  # (a) 0.25 = a 25 % buffer
    stressed_weight: float = Field(default=0.0, ge=0.0, le=1.0)  # (b) 0.25 = 25 % weight on the stressed period
    stressed_period: StressedPeriod | None = None
    floor_lookback_years: float = Field(default=0.0, ge=0.0, le=50.0)  # (c) 10 = a 10-year lookback floor

    @model_validator(mode="after")
    def _period(self) -> AntiProcyclicality:
        if self.stressed_weight > 0 and self.stressed_period is None:
            raise ValueError("stressed_weight needs stressed_period")
        return self


class Liquidity(StrictParameters):
    """Close-out cost: spread_fraction × bid-ask spread × |quantity| × contract size (½ spread by default)."""

    spread_fraction: float = Field(default=0.5, ge=0.0, le=10.0)
    # per instrument id or underlying: the spread as a fraction of the mark
    relative_spreads: dict[str, float] = Field(default_factory=dict)


class Concentration(StrictParameters):
    """Size beyond adv_fraction × ADV, charged at rate × its underlying notional."""

    adv_fraction: float = Field(default=0.1, gt=0.0, le=100.0)
    rate: float = Field(default=0.05, ge=0.0, le=10.0)
    adv_days: int = Field(default=20, ge=1, le=1000)
    # per instrument id or underlying, in contracts, where the history has no volume series
    average_daily_volume: dict[str, float] = Field(default_factory=dict)


class VarParameters(StrictParameters):
    method: Literal["historical", "filtered_historical", "delta_normal", "delta_gamma_vega"] = "filtered_historical"
    measure: Literal["var", "es"] = "var"
    confidence: float = Field(default=0.99, gt=0.5, lt=1.0)
    quantile: Literal["ceiling", "interpolated"] = "ceiling"
    expected_shortfall: Literal["tail_mean", "acerbi_tasche"] = "tail_mean"
    margin_period_days: int = Field(default=2, ge=1, le=60)
    horizon_scaling: Literal["overlapping", "square_root"] = "overlapping"
    lookback_days: int = Field(default=1000, ge=2, le=20000)
    ewma_decay: float = Field(default=0.97, gt=0.0, lt=1.0)
    price_returns: Literal["log", "relative"] = "log"
    volatility_changes: Literal["relative", "absolute"] = "relative"
    volatility_floor: float = Field(default=0.01, gt=0.0, le=5.0)
    maintenance_ratio: float = Field(default=1.0, gt=0.0, le=1.0)  # MM = ratio × IM
    minimum_scenarios: int = Field(default=100, ge=1)
    apc: AntiProcyclicality = AntiProcyclicality()
    liquidity: Liquidity | None = None
    concentration: Concentration | None = None
    history: str | None = None  # a market-history file (CSV/Parquet) used when none is passed in


def parse_var_parameters(profile: Profile) -> VarParameters:
    """Validate a `var` profile's parameters; InputError names the key path and the file."""
    return parse_parameters(profile, VarParameters)

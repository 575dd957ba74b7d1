"""Parameters of the `tiered` model (spec/profiles.md): notional brackets or dYdX liquidity tiers, and settings."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.io.validation_errors import from_validation_error

Rate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Ppm = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
Quantums = Annotated[int, Field(strict=True, ge=0)]
Decimals = Annotated[int, Field(strict=True, ge=0, le=18)]

PriceMode = Literal["toward_mark", "away_from_mark", "nearest", "up", "down", "none"]

# Bybit's published inverse formula versions (crypto-venues.md (b)) as presets of the explicit settings.
FORMULA_VERSIONS: dict[str, dict[str, Any]] = {
    "bybit-inverse-uta-2026": {"mm_basis": "liquidation_price", "closing_fee": "none", "extra_margin_net_of_fee": True},
    "bybit-inverse-uta-2024": {"mm_basis": "entry", "closing_fee": "none", "extra_margin_net_of_fee": False},
    "bybit-inverse-legacy": {"mm_basis": "entry", "closing_fee": "at_bankruptcy_price",
                             "extra_margin_net_of_fee": False},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceRounding(_Strict):
    """How a reported price rounds: `mode`, to the instrument's tick or to `decimals` places."""

    mode: PriceMode = "none"
    decimals: Decimals | None = None


class Rounding(_Strict):
    """A venue's rounding of reported figures: amounts to `decimals` (mode `amounts`), prices by rule."""

    decimals: Decimals | None = None
    amounts: Literal["up", "down", "nearest"] = "up"
    liquidation_price: PriceRounding = PriceRounding()
    bankruptcy_price: PriceRounding = PriceRounding()

    @field_validator("liquidation_price", "bankruptcy_price", mode="before")
    @classmethod
    def _mode_or_mapping(cls, value: Any) -> Any:
        """A bare mode (`toward_mark`) is short for {mode: toward_mark}; errors keep the key path (no union tags)."""
        if isinstance(value, dict | PriceRounding):
            return value
        if isinstance(value, str) and value in get_args(PriceMode):
            return {"mode": value}
        raise ValueError(f"must be one of {', '.join(get_args(PriceMode))}, or a mapping with mode and decimals")

    def price_rule(self, which: str) -> PriceRounding:
        rule = getattr(self, which)
        return rule if isinstance(rule, PriceRounding) else PriceRounding(mode=rule)


class Settings(_Strict):
    """How maintenance margin, fees and liquidation prices are measured (per profile or per underlying)."""

    formula_version: Literal["bybit-inverse-uta-2026", "bybit-inverse-uta-2024", "bybit-inverse-legacy"] | None = None
    mm_basis: Literal["liquidation_price", "entry", "mark"] | None = None
    taker_fee_rate: Rate | None = None
    closing_fee: Literal["none", "at_bankruptcy_price"] | None = None
    extra_margin_net_of_fee: bool | None = Field(default=None, strict=True)
    rounding: Rounding | None = None
    position_modes: list[Literal["one-way", "hedge"]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _version_agrees(self) -> Settings:
        if self.formula_version is not None:
            for key, value in FORMULA_VERSIONS[self.formula_version].items():
                stated = getattr(self, key)
                if stated is not None and stated != value:
                    raise ValueError(f"{key} {stated!r} contradicts formula_version {self.formula_version}")
        return self


class Bracket(_Strict):
    """One notional bracket: (previous max_notional, max_notional], its maintenance rate and maximum leverage."""

    max_notional: Positive | None = None
    maintenance_rate: Rate
    max_leverage: Positive
    maintenance_amount: NonNegative | None = None


class LiquidityTier(_Strict):
    """A dYdX v4 liquidity tier (x/perpetuals), caps and impact notional in quote quantums (1 USDC = 10⁶)."""

    id: Annotated[int, Field(strict=True, ge=0)]
    name: str = ""
    initial_margin_ppm: Annotated[int, Field(strict=True, gt=0, le=1_000_000)]
    maintenance_fraction_ppm: Ppm
    impact_notional: Quantums = 0
    open_interest_lower_cap: Quantums = 0
    open_interest_upper_cap: Quantums = 0

    @model_validator(mode="after")
    def _caps_ordered(self) -> LiquidityTier:
        if self.open_interest_upper_cap != 0 and self.open_interest_upper_cap < self.open_interest_lower_cap:
            raise ValueError("open_interest_upper_cap is below open_interest_lower_cap")
        return self


class UnderlyingTable(Settings):
    """The table for one underlying (or one instrument id): brackets, or a dYdX liquidity tier."""

    notional_unit: Literal["quote", "coin"] | None = None
    brackets: list[Bracket] | None = None
    liquidity_tier: Annotated[int, Field(strict=True, ge=0)] | None = None
    atomic_resolution: Annotated[int, Field(strict=True, ge=-18, le=18)] | None = None
    price_exponent: Annotated[int, Field(strict=True, ge=-18, le=0)] = -9

    @model_validator(mode="after")
    def _one_kind(self) -> UnderlyingTable:
        if (self.brackets is None) == (self.liquidity_tier is None):
            raise ValueError("give either brackets or liquidity_tier")
        if self.brackets is not None:
            if not self.brackets:
                raise ValueError("brackets must not be empty")
            if self.notional_unit is None:
                raise ValueError("notional_unit (quote | coin) is required with brackets")
        if self.liquidity_tier is not None and self.atomic_resolution is None:
            raise ValueError("atomic_resolution is required with liquidity_tier")
        return self


class TieredParameters(_Strict):
    """The `parameters` of a tiered profile."""

    defaults: Settings = Settings()
    underlyings: dict[str, UnderlyingTable]
    liquidity_tiers: list[LiquidityTier] = []


def _check_brackets(key: str, brackets: list[Bracket]) -> None:
    """Caps ascend, rates do not fall, mmr < 1/leverage, and stated amounts follow the recursion exactly."""
    amount = Fraction(0)
    previous_cap: Fraction | None = None
    previous_rate = Fraction(0)
    for n, bracket in enumerate(brackets):
        where = f"parameters.underlyings.{key}.brackets[{n}]"
        last = n == len(brackets) - 1
        if bracket.max_notional is None and not last:
            raise InputError("only the last bracket may leave max_notional open", field=f"{where}.max_notional")
        rate = Fraction(bracket.maintenance_rate)
        if n > 0:
            assert previous_cap is not None
            if bracket.max_notional is not None and Fraction(bracket.max_notional) <= previous_cap:
                raise InputError("caps must ascend", field=f"{where}.max_notional")
            if rate < previous_rate:
                raise InputError("a maintenance rate may not fall in a higher bracket",
                                 field=f"{where}.maintenance_rate")
            amount += previous_cap * (rate - previous_rate)
        if bracket.maintenance_rate * bracket.max_leverage >= 1:
            raise InputError(
                f"maintenance_rate {bracket.maintenance_rate} is not below the initial rate 1/{bracket.max_leverage:g}",
                field=f"{where}.maintenance_rate",
            )
        if bracket.maintenance_amount is not None:
            stated = Fraction(bracket.maintenance_amount)
            if abs(stated - amount) > max(Fraction(1, 10**9), abs(amount) * Fraction(1, 10**12)):
                raise InputError(
                    f"{bracket.maintenance_amount:g} breaks the recursion amount_n = amount_(n-1) + "
                    f"max_notional_(n-1) × (rate_n − rate_(n-1)), which gives {float(amount):.10g}",
                    field=f"{where}.maintenance_amount",
                )
        previous_cap = Fraction(bracket.max_notional) if bracket.max_notional is not None else None
        previous_rate = rate


def maintenance_amounts(brackets: list[Bracket]) -> list[float]:
    """Each bracket's maintenance amount (Binance `cum`, Bybit `mmDeduction`) from the recursion, exactly.

    amount_1 = 0; amount_n = amount_(n-1) + max_notional_(n-1) × (rate_n − rate_(n-1)).
    """
    amounts = [Fraction(0)]
    for previous, current in itertools.pairwise(brackets):
        assert previous.max_notional is not None
        rate_step = Fraction(current.maintenance_rate) - Fraction(previous.maintenance_rate)
        amounts.append(amounts[-1] + Fraction(previous.max_notional) * rate_step)
    return [float(a) for a in amounts]


def parse_tiered_parameters(profile: Profile) -> TieredParameters:
    """Validate a tiered profile's `parameters`; InputError names the key path and the profile file."""
    where = profile.path or profile.name
    try:
        parameters = TieredParameters.model_validate(profile.parameters)
    except ValidationError as error:
        raise from_validation_error(error, prefix="parameters").in_file(where) from None
    tier_ids = {tier.id for tier in parameters.liquidity_tiers}
    try:
        for key, table in parameters.underlyings.items():
            if table.brackets is not None:
                _check_brackets(key, table.brackets)
            if table.liquidity_tier is not None and table.liquidity_tier not in tier_ids:
                raise InputError(f"no liquidity tier {table.liquidity_tier} in parameters.liquidity_tiers",
                                 field=f"parameters.underlyings.{key}.liquidity_tier")
    except InputError as error:
        raise error.in_file(where) from None
    return parameters


def effective_settings(defaults: Settings, table: UnderlyingTable) -> dict[str, Any]:
    """Settings for one table: the table's own, else the profile's defaults, else the model's defaults."""
    merged: dict[str, Any] = {
        "mm_basis": "liquidation_price",
        "taker_fee_rate": 0.0,
        "closing_fee": "none",
        "extra_margin_net_of_fee": False,
        "rounding": Rounding(),
        "position_modes": ["one-way", "hedge"],
    }
    for source in (defaults, table):
        if source.formula_version is not None:
            merged.update(FORMULA_VERSIONS[source.formula_version])
        for key in ("mm_basis", "taker_fee_rate", "closing_fee", "extra_margin_net_of_fee", "rounding",
                    "position_modes"):
            value = getattr(source, key)
            if value is not None:
                merged[key] = value
    return merged

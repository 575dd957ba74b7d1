"""Parameters of Derive's Portfolio Margin Risk Manager 2.1 under Derive's own names (the case files' `Parameters`).

The `portfolio` model with `method: derive-pmrm` reads these from a profile's `parameters`; the conformance runner
reads the same block from each case file. Python attributes are whole words; the input keys are Derive's
(`VolShock.VOLRANGEUP`, `Margin.MM_LOSS_FACTOR`, …), so a user can paste a case file's `Parameters` block.
Numbers may be JSON numbers or numeric strings (the case files mix both). Method: derive-pmrm-method.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from marginkit.io.derive_cases import NonNegative, Number, Positive
from marginkit.io.profile_file import Profile
from marginkit.io.validation_errors import from_validation_error

MAXIMUM_SCENARIOS = 40  # the engine's limit on Parameters.Scenarios


class _Derive(BaseModel):
    """Derive's names on input (aliases), whole words in Python; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class VolShock(_Derive):
    """Vol-shock multipliers (method §3): f = (30 days / max(t, floor days))^power, up = 1 + range_up·f."""

    volatility_range_up: NonNegative = Field(alias="VOLRANGEUP")
    minimum_shocked_volatility: NonNegative = Field(alias="MIN_VOL_EVAL_SHOCKED")
    volatility_range_down: NonNegative = Field(alias="VOLRANGEDOWN")
    short_term_power: Number = Field(alias="SHORTTERMPOWER")
    long_term_power: Number = Field(alias="LONGTERMPOWER")
    days_to_expiry_floor: NonNegative = Field(alias="DTE_FLOOR")


class MarginFactors(_Derive):
    """Loss factors on the worst loss and the static discounts' constants (method §3 and §7)."""

    maintenance_loss_factor: NonNegative = Field(alias="MM_LOSS_FACTOR")
    initial_loss_factor: NonNegative = Field(alias="IM_LOSS_FACTOR")
    short_rate_multiplier: Number = Field(alias="SHORT_RATE_MULTSCALE")
    long_rate_multiplier: Number = Field(alias="LONG_RATE_MULTSCALE")
    short_rate_addend: Number = Field(alias="SHORT_RATE_ADDSCALE")
    long_rate_addend: Number = Field(alias="LONG_RATE_ADDSCALE")
    base_static_discount: Positive = Field(alias="BASE_STATIC_DISCOUNT")
    base_static_discount_negative: Positive = Field(alias="BASE_STATIC_DISCOUNT_NEG")


class BasisContingency(_Derive):
    """Forward (basis) contingency: the worse of two spot moves, scaled by add + mult·T (method §3)."""

    spot_up: Positive = Field(alias="SCENARIO_SPOT_UP")
    spot_down: Positive = Field(alias="SCENARIO_SPOT_DOWN")
    add_factor: NonNegative = Field(alias="BASIS_CONT_ADD_FACTOR")
    multiplier_factor: NonNegative = Field(alias="BASIS_CONT_MULT_FACTOR")


class OtherContingency(_Derive):
    """Depeg, oracle-confidence, perp and option contingencies (method §6); IM_* are increments on MM_*."""

    peg_loss_threshold: NonNegative = Field(alias="PEG_LOSS_THRESHOLD")
    peg_loss_factor: NonNegative = Field(alias="PEG_LOSS_FACTOR")
    confidence_threshold: NonNegative = Field(alias="CONF_THRESHOLD")
    confidence_margin: NonNegative = Field(alias="CONF_MARGIN")
    maintenance_perp_rate: NonNegative = Field(alias="MM_PERP_PERCENT")
    initial_perp_rate: NonNegative = Field(alias="IM_PERP_PERCENT")
    initial_perp_rate_total: NonNegative | None = Field(default=None, alias="IM_PERP_PERCENT_NORMAL")  # unused
    maintenance_option_rate: NonNegative = Field(alias="MM_OPTION_PERCENT")
    initial_option_rate: NonNegative = Field(alias="IM_OPTION_PERCENT")
    initial_option_rate_total: NonNegative | None = Field(default=None, alias="IM_OPTION_PERCENT_NORMAL")  # unused


class SkewShock(_Derive):
    """Skew scenarios (method §5): cap = CBASE·√T + SCALE_CAP, k* = max(MIN_K_STAR, √T·width·(static + √T·scale))."""

    linear_scale_cap: Number = Field(alias="LINEAR_SCALE_CAP")
    linear_cap_base: Number = Field(alias="LINEAR_CBASE")
    absolute_scale_cap: Number = Field(alias="ABS_SCALE_CAP")
    absolute_cap_base: Number = Field(alias="ABS_CBASE")
    minimum_width: NonNegative = Field(alias="MIN_K_STAR")
    minimum_width_scale: Number = Field(alias="MIN_WIDTH_SCALE")
    volatility_static: Number = Field(alias="VOL_PARAM_STATIC")
    volatility_scale: Number = Field(alias="VOL_PARAM_SCALE")


Direction = Literal["Up", "Down", "None", "LINEAR", "ABS"]


class Scenario(_Derive):
    """One scenario: spot multiplier x, vol rule (Up, Down, None) or skew (LINEAR, ABS), dampening λ (method §4)."""

    spot_shock: Positive = Field(alias="SpotShock")
    direction: Direction = Field(alias="VolShockDirection")
    dampening: NonNegative = Field(alias="DampeningFactor")


class DerivePmrmParameters(_Derive):
    """Derive PMRM 2.1 parameters as in a case file's `Parameters` block.

    Scenarios: at most 40, at most one LINEAR and one ABS. The engine also requires x = 1 for the skew
    scenarios; Derive's generator does not (public case 67), and a skew scenario's x moves nothing here
    (method §5), so it is accepted.
    """

    scenarios: tuple[Scenario, ...] = Field(alias="Scenarios", min_length=1, max_length=MAXIMUM_SCENARIOS)
    vol_shock: VolShock = Field(alias="VolShock")
    margin: MarginFactors = Field(alias="Margin")
    basis_contingency: BasisContingency = Field(alias="BasisContingency")
    other_contingency: OtherContingency = Field(alias="OtherContingency")
    skew_shock: SkewShock = Field(alias="SkewShock")

    @model_validator(mode="after")
    def _one_skew_of_each(self) -> DerivePmrmParameters:
        for kind in ("LINEAR", "ABS"):
            if sum(s.direction == kind for s in self.scenarios) > 1:
                raise ValueError(f"at most one {kind} scenario (Scenarios)")
        return self


class Haircuts(_Derive):
    """Derive's per-collateral base-contingency rates: MM part and IM-only increment."""

    maintenance_haircut: NonNegative = Field(alias="MMHaircut")
    initial_haircut: NonNegative = Field(alias="IMHaircut")


class CollateralSettings(_Derive):
    """A collateral asset for books: the underlying it follows and its haircuts when risk-cancelling or not.

    A balance is risk-cancelling (it moves with spot in the scenarios) in an account whose options and perps
    are on `underlying`; `risk_cancelling` haircuts apply there and `other` haircuts elsewhere.
    """

    underlying: str | None = None
    risk_cancelling: Haircuts | None = None
    other: Haircuts

    @model_validator(mode="after")
    def _rates_for_underlying(self) -> CollateralSettings:
        if self.underlying is not None and self.risk_cancelling is None:
            raise ValueError("a collateral that follows an underlying needs risk_cancelling haircuts")
        return self


class DeriveProfileParameters(DerivePmrmParameters):
    """A `derive-pmrm-2.1` profile's `parameters`: Derive's block plus how a book maps onto it.

    `method` selects this method in the `portfolio` model; `cash_asset` is Derive's cash (counted at face
    value; its index price is the stable price s); `collaterals` gives every other collateral asset's haircuts.
    """

    method: Literal["derive-pmrm"]
    cash_asset: str = "USDC"
    collaterals: dict[str, CollateralSettings] = {}


def parse_derive_parameters(data: Any, prefix: str = "Parameters") -> DerivePmrmParameters:
    """Validate a case file's `Parameters` block; InputError names the key path under `prefix`."""
    try:
        return DerivePmrmParameters.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error, prefix=prefix) from None


def parse_derive_profile_parameters(profile: Profile) -> DeriveProfileParameters:
    """Validate a derive-pmrm profile's `parameters`; InputError names the key path and the file."""
    try:
        return DeriveProfileParameters.model_validate(profile.parameters)
    except ValidationError as error:
        raise from_validation_error(error, prefix="parameters").in_file(profile.path or profile.name) from None


__all__ = [
    "CollateralSettings",
    "DerivePmrmParameters",
    "DeriveProfileParameters",
    "Scenario",
    "parse_derive_parameters",
    "parse_derive_profile_parameters",
]

"""Derive PMRM 2.1 portfolio case files (derivexyz/v2-core PMRM_2 `portfolio_cases`): inputs and expected figures.

A case file is a JSON object with `Scenario` (the portfolio and market), `Parameters` (the risk manager's
parameters) and `Result` (Derive's figures). The inputs are read from `Scenario` and `Parameters` only: the
per-option diagnostic outputs (`MarkVol`, `MarkDiscount`, `k`, `k_star`, `*_mult_cap`, `*_multiplier`,
`ExiryTs`) and the informational perp fields are ignored by construction (the records below do not declare
them), and `Result` is read by `case_expected` alone, for comparison. Numbers may be JSON numbers or numeric
strings. Field meanings: shared/reference/derive-pmrm-method.md §9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from marginkit.errors import InputError
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error


def derive_number(value: Any) -> float:
    """A finite number given as a JSON number or a numeric string (Derive's case files use both)."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not math.isfinite(number):
        raise ValueError("must be finite")
    return number


def _flag(value: Any) -> bool:
    """0/1 or false/true (IsCall, IsRiskCancelling)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be 0, 1, false or true")


Number = Annotated[float, BeforeValidator(derive_number)]
NonNegative = Annotated[float, BeforeValidator(derive_number), Field(ge=0)]
Positive = Annotated[float, BeforeValidator(derive_number), Field(gt=0)]
Confidence = Annotated[float, BeforeValidator(derive_number), Field(ge=0, le=1)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class _Inputs(BaseModel):
    """Only the declared input fields are read; anything else in the row (diagnostic outputs) is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CaseOption(_Inputs):
    """An option line: seconds to expiry, strike, call (1) or put (0), signed amount (+ long)."""

    expiry: Number = Field(alias="Expiry")
    strike: Positive = Field(alias="Strike")
    is_call: Flag = Field(alias="IsCall")
    amount: Number = Field(alias="Amount")


class CaseFeed(_Inputs):
    """One expiry's feeds: forward, rate, SVI (a, b, ρ, m, σ, F_svi, τ years) and their confidences."""

    expiry: Number = Field(alias="FeedExpiry")
    forward: Positive = Field(alias="Forward")
    forward_confidence: Confidence = Field(alias="ForwardConfidence")
    rate: Number = Field(alias="Rate")
    rate_confidence: Confidence = Field(alias="RateConfidence")
    svi: tuple[Number, Number, Number, Number, Number, Positive, Positive] = Field(alias="SVIparam")
    volatility_confidence: Confidence = Field(alias="OptionVolConfidences")


class CaseCollateral(_Inputs):
    """A collateral balance: amount, USD price, confidence, whether it moves with spot, and its haircuts."""

    name: str = Field(default="", alias="Name")
    amount: Number = Field(alias="Amount")
    price: NonNegative = Field(alias="Price")
    confidence: Confidence = Field(alias="Confidence")
    risk_cancelling: Flag = Field(alias="IsRiskCancelling")
    maintenance_haircut: NonNegative = Field(alias="MMHaircut")
    initial_haircut: NonNegative = Field(alias="IMHaircut")


class CaseScenario(_Inputs):
    """A case's `Scenario` block: cash, spot, perp, stable price, collaterals, options and option feeds."""

    cash: Number = Field(alias="Cash")
    spot_price: Positive = Field(alias="SpotPrice")
    spot_confidence: Confidence = Field(alias="SpotConfidence")
    perps: Number = Field(alias="NumPerps")
    perp_price: NonNegative = Field(alias="PerpPrice")
    perp_confidence: Confidence = Field(alias="PerpConfidence")
    unrealised_perp_pnl: Number = Field(alias="UnrealisedPerpPNL")
    unrealised_funding: Number = Field(alias="UnrealisedFunding")
    stable_price: Positive = Field(alias="StablePrice")
    collaterals: tuple[CaseCollateral, ...] = Field(alias="Collaterals")
    options: tuple[CaseOption, ...] = Field(alias="Options")
    feeds: tuple[CaseFeed, ...] = Field(alias="OptionFeeds")

    @model_validator(mode="after")
    def _every_expiry_has_a_feed(self) -> CaseScenario:
        seen: set[float] = set()
        for i, feed in enumerate(self.feeds):
            if feed.expiry in seen:
                raise InputError("a second feed for this expiry", field=f"Scenario.OptionFeeds[{i}].FeedExpiry")
            seen.add(feed.expiry)
        for i, option in enumerate(self.options):
            if option.expiry not in seen:
                raise InputError("no OptionFeeds entry has this FeedExpiry", field=f"Scenario.Options[{i}].Expiry")
        return self


@dataclass(frozen=True)
class CaseInputs:
    """What a case gives the calculation: its `Scenario` (validated here) and `Parameters` (validated by the model)."""

    name: str
    scenario: CaseScenario
    parameters: dict[str, Any]


class CaseExpected(BaseModel):
    """Derive's figures from `Result`, for comparison only: IM and MM (asserted) and the components that explain them.

    Scenario P&Ls are in `Parameters.Scenarios` order: `reg_losses` then `tail_losses` for the spot/vol
    scenarios and `skew_losses` for the skew ones (method §8).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    initial_margin: Number = Field(alias="IM")
    maintenance_margin: Number = Field(alias="MM")
    collateral_mtm: Number | None = Field(default=None, alias="CollateralMTM")
    option_mtm: Number | None = Field(default=None, alias="OptionMTM")
    portfolio_mtm: Number | None = Field(default=None, alias="PortfolioMTM")
    forward_contingency: Number | None = Field(default=None, alias="ForwardContingency")
    regular_losses: tuple[tuple[Any, ...], ...] = Field(default=(), alias="reg_losses")
    tail_losses: tuple[tuple[Any, ...], ...] = Field(default=(), alias="tail_losses")
    skew_losses: tuple[tuple[Any, ...], ...] = Field(default=(), alias="skew_losses")

    def scenario_pnls(self) -> tuple[list[float], list[float]]:
        """(spot/vol scenario P&Ls, skew P&Ls), each in `Parameters.Scenarios` order."""
        regular = [derive_number(row[-1]) for row in (*self.regular_losses, *self.tail_losses)]
        skew = [derive_number(row[-1]) for row in self.skew_losses]
        return regular, skew


def load_case_document(path: str | Path) -> dict[str, Any]:
    """Read a case file as a mapping; errors name the file."""
    data = load_structured(path)
    if not isinstance(data, dict):
        raise InputError("a case is a JSON object with Scenario, Parameters and Result", file=str(path))
    return data


def case_inputs(document: dict[str, Any], name: str) -> CaseInputs:
    """Validate a case's `Scenario`; take its `Parameters` as given. `Result` is not looked at."""
    if "Scenario" not in document:
        raise InputError("required field is missing", field="Scenario")
    parameters = document.get("Parameters")
    if not isinstance(parameters, dict):
        raise InputError("required field is missing" if parameters is None else "must be a mapping",
                         field="Parameters")
    try:
        scenario = CaseScenario.model_validate(document["Scenario"])  # an InputError of a validator passes through
    except ValidationError as error:
        raise from_validation_error(error, prefix="Scenario") from None
    return CaseInputs(name=name, scenario=scenario, parameters=dict(parameters))


def case_expected(document: dict[str, Any]) -> CaseExpected:
    """Derive's expected figures from `Result` (IM and MM required)."""
    result = document.get("Result")
    if not isinstance(result, dict):
        raise InputError("required field is missing" if result is None else "must be a mapping", field="Result")
    try:
        return CaseExpected.model_validate(result)
    except ValidationError as error:
        raise from_validation_error(error, prefix="Result") from None


def case_name(path: Path) -> str:
    """A case's name: its file name without `.json`."""
    return path.stem


def case_files(path: Path) -> list[Path]:
    """The case files of a directory in case-number order (test_1, test_3, …, test_139), or the one file given."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or directory", file=str(path))
    files = [p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file()]
    if not files:
        raise InputError("no case files (*.json) in this directory", file=str(path))

    def order(p: Path) -> tuple[int, str]:
        digits = "".join(c if c.isdigit() else " " for c in p.stem).split()
        return (int(digits[0]) if digits else -1, p.name)

    return sorted(files, key=order)

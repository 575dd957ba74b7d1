"""Parameters of the `span` model: scan points, combined commodities, tiers, spreads and account-class ratios.

The shape follows classic SPAN (shared/reference/span.md; CME "SPAN components" and spread-calculation pages):
per combined commodity, scan-rate tiers (each with its price and volatility scan ranges), intra-commodity
tiers and spreads (FLAT method, in priority order), delivery-month charges, short-option-minimum tiers and the
weighted-futures-price-risk method; across combined commodities, inter-commodity spreads in priority order.
A profile may instead point at a CME XML SPAN file (`span_file`), read by `marginkit.io.span_xml`.

Units: money amounts (rates per spread, per delta unit, per short option, given risk arrays) are in the
performance-bond currency, USD; `price_scan_rate` is a fraction of the instrument's price, `price_scan_range`
quote currency per unit of underlying; `volatility_scan_range` is an absolute change of annualised volatility
(0.2 = 20 vol points); days are ACT/365 days to expiry; periods are contract months written YYYYMM.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.io.span_xml import read_span_xml
from marginkit.io.validation_errors import from_validation_error

Money = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Ratio = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=1, le=10)]
Period = Annotated[str, Field(strict=True, pattern=r"^[0-9]{4}(0[1-9]|1[0-2])$")]
Name = Annotated[str, Field(strict=True, min_length=1)]
AccountClass = Literal["speculator", "hedger", "member"]
ACCOUNT_CLASSES: tuple[AccountClass, ...] = ("speculator", "hedger", "member")
SCENARIO_COUNT = 16

# The 16 classic scan points (span.md "Risk arrays"): price as a multiple of the price scan range, volatility as a
# multiple of the volatility scan range; points 15 and 16 are the extreme moves ±X, weighted c.
CLASSIC_PRICE_MOVES = (0.0, 0.0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1.0, 1.0, -1.0, -1.0)
CLASSIC_VOLATILITY_MOVES = (1.0, -1.0) * 7


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScanPoint(_Strict):
    """One scenario: price move in price scan ranges, volatility move in volatility scan ranges, loss weight."""

    price: Finite
    volatility: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1, le=1)]
    weight: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=1)]


class DeltaPoint(_Strict):
    """One composite-delta point: price move in price scan ranges (volatility unchanged) and its weight."""

    price: Finite
    weight: Positive


class ExpiryRange(_Strict):
    """Which contracts a tier holds: every condition given must hold (none given: all contracts).

    start_period ≤ contract month ≤ end_period (YYYYMM); min_days < days to expiry ≤ max_days.
    """

    start_period: Period | None = None
    end_period: Period | None = None
    min_days: Money | None = None
    max_days: Money | None = None


class ScanTier(ExpiryRange):
    """A scan-rate tier, scanned separately as if uncorrelated with the others (span.md "Scan risk").

    The price scan range is `price_scan_rate` × the instrument's price or `price_scan_range` (quote per unit of
    underlying); either is needed only to compute risk arrays (not for arrays a profile or SPAN file gives).
    """

    price_scan_rate: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, lt=1)] | None = None
    price_scan_range: Positive | None = None
    volatility_scan_range: Money = 0.0

    @model_validator(mode="after")
    def _one_scan_range(self) -> ScanTier:
        if self.price_scan_rate is not None and self.price_scan_range is not None:
            raise ValueError("give price_scan_rate or price_scan_range, not both")
        return self


class IntraTier(ExpiryRange):
    """An intra-commodity tier (or one contract month: start_period = end_period), numbered within its commodity."""

    tier: Annotated[int, Field(strict=True, ge=1)]


class SpreadLeg(_Strict):
    """A leg of an intra-commodity spread: a tier, the delta per spread (ratio) and the relative side A or B."""

    tier: Annotated[int, Field(strict=True, ge=1)]
    ratio: Positive
    side: Literal["A", "B"]


class IntraSpread(_Strict):
    """FLAT method: charge = rate × number of spreads formed (span.md "Intra-commodity spread charge")."""

    priority: Annotated[int, Field(strict=True, ge=1)]
    rate: Money
    legs: Annotated[list[SpreadLeg], Field(min_length=2)]


class DeliveryCharge(_Strict):
    """Delivery (spot) month charge per delta unit: `spread_rate` on delta consumed by intra-commodity spreads,
    `outright_rate` on the rest. The delivery month is `period` (YYYYMM) or the last `within_days` days."""

    period: Period | None = None
    within_days: Money | None = None
    spread_rate: Money = 0.0
    outright_rate: Money = 0.0

    @model_validator(mode="after")
    def _one_selector(self) -> DeliveryCharge:
        if (self.period is None) == (self.within_days is None):
            raise ValueError("give period or within_days (exactly one)")
        return self


class ShortOptionMinimumTier(ExpiryRange):
    """SOM = rate × max(short calls, short puts), counted in delta units, per tier (span.md "Short option minimum")."""

    rate: Money


class GivenRiskArray(_Strict):
    """A published risk array: 16 losses (+ loss) for one long contract in USD, c already applied, its composite
    delta in delta units per contract, and optionally the price scan range per delta unit in USD and the contract
    value factor (units of underlying per contract, checked against the book's contract_size)."""

    losses: list[Finite]
    composite_delta: Finite
    price_scan_range: Money | None = None
    contract_value_factor: Positive | None = None

    @field_validator("losses")
    @classmethod
    def _sixteen(cls, losses: list[float]) -> list[float]:
        if len(losses) != SCENARIO_COUNT:
            raise ValueError(f"a risk array has {SCENARIO_COUNT} losses, not {len(losses)}")
        return losses


class CombinedCommodity(_Strict):
    """All products on one ultimate underlying: by underlying name, or by instrument id (which wins)."""

    underlyings: list[Name] = []
    instruments: list[Name] = []
    delta_unit: Positive = 1.0
    scan_tiers: Annotated[list[ScanTier], Field(min_length=1)] = [ScanTier()]
    intra_tiers: list[IntraTier] = []
    intra_spreads: list[IntraSpread] = []
    delivery: list[DeliveryCharge] = []
    short_option_minimum: list[ShortOptionMinimumTier] = []
    weighted_futures_price_risk: Literal["price_risk", "scan_range", "capped"] = "price_risk"
    account_class_ratios: dict[AccountClass, Ratio] | None = None
    risk_arrays: dict[Name, GivenRiskArray] = {}

    @model_validator(mode="after")
    def _tiers_known(self) -> CombinedCommodity:
        numbers = [t.tier for t in self.intra_tiers]
        if len(set(numbers)) != len(numbers):
            raise ValueError("intra_tiers: a tier number appears twice")
        for s, spread in enumerate(self.intra_spreads):
            for leg in spread.legs:
                if leg.tier not in numbers:
                    raise ValueError(f"intra_spreads[{s}]: tier {leg.tier} is not in intra_tiers")
        priorities = [s.priority for s in self.intra_spreads]
        if len(set(priorities)) != len(priorities):
            raise ValueError("intra_spreads: a priority appears twice")
        return self


class InterLeg(_Strict):
    """A leg of an inter-commodity spread: a combined commodity, the delta per spread and the relative side."""

    combined_commodity: Name
    ratio: Positive
    side: Literal["A", "B"]


class InterSpread(_Strict):
    """Credit per leg = rate × weighted futures price risk × leg delta per spread × spreads formed."""

    priority: Annotated[int, Field(strict=True, ge=1)]
    rate: Fraction
    legs: Annotated[list[InterLeg], Field(min_length=2)]


class SpanParameters(_Strict):
    """The `parameters` of a span profile (after a `span_file`, if any, has been read into this shape).

    `scan_points` default to the classic table with the extreme moves ±`extreme_move` weighted
    `extreme_weight`; `delta_points` to marginkit's seven-point composite delta (models/span.py).
    """

    extreme_move: Positive = 2.0
    extreme_weight: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=1)] = 0.35
    scan_points: list[ScanPoint] | None = None
    delta_points: Annotated[list[DeltaPoint], Field(min_length=1)] | None = None
    look_ahead_days: Money = 1.0
    account_class_ratios: dict[AccountClass, Ratio] = {}
    default_account_class: AccountClass = "speculator"
    combined_commodities: Annotated[dict[Name, CombinedCommodity], Field(min_length=1)]
    inter_spreads: list[InterSpread] = []

    @field_validator("scan_points")
    @classmethod
    def _sixteen_points(cls, points: list[ScanPoint] | None) -> list[ScanPoint] | None:
        if points is not None and len(points) != SCENARIO_COUNT:
            raise ValueError(f"SPAN has {SCENARIO_COUNT} scan points, not {len(points)}")
        return points

    @model_validator(mode="after")
    def _consistent(self) -> SpanParameters:
        for name, commodity in self.combined_commodities.items():
            own = commodity.account_class_ratios or {}
            missing = [c for c in ACCOUNT_CLASSES if c not in own and c not in self.account_class_ratios]
            if missing:
                raise ValueError(f"account_class_ratios: no ratio for {', '.join(missing)} "
                                 f"(combined commodity {name!r})")
        priorities = [s.priority for s in self.inter_spreads]
        if len(set(priorities)) != len(priorities):
            raise ValueError("inter_spreads: a priority appears twice")
        for s, spread in enumerate(self.inter_spreads):
            for leg in spread.legs:
                if leg.combined_commodity not in self.combined_commodities:
                    raise ValueError(f"inter_spreads[{s}]: unknown combined commodity {leg.combined_commodity!r}")
        claimed: dict[str, str] = {}
        for name, commodity in self.combined_commodities.items():
            for key in [*commodity.instruments, *commodity.risk_arrays]:
                if claimed.setdefault(key, name) != name:
                    raise ValueError(f"instrument {key!r} is in combined commodities {claimed[key]!r} and {name!r}")
        return self

    def account_class_ratio(self, commodity: str, account_class: AccountClass) -> float:
        """Initial ÷ maintenance for one class in one combined commodity (its own ratio, else the profile's)."""
        own = self.combined_commodities[commodity].account_class_ratios or {}
        return own.get(account_class, self.account_class_ratios.get(account_class, 1.0))

    def points(self) -> list[ScanPoint]:
        """The 16 scan points in scenario order."""
        if self.scan_points is not None:
            return list(self.scan_points)
        classic = [ScanPoint(price=p, volatility=v, weight=1.0)
                   for p, v in zip(CLASSIC_PRICE_MOVES, CLASSIC_VOLATILITY_MOVES, strict=True)]
        extremes = [ScanPoint(price=sign * self.extreme_move, volatility=0.0, weight=self.extreme_weight)
                    for sign in (1.0, -1.0)]
        return classic + extremes

    def composite_delta_points(self) -> list[DeltaPoint]:
        """The composite-delta points; weights are used normalised to sum 1."""
        if self.delta_points is not None:
            return list(self.delta_points)
        return list(DEFAULT_DELTA_POINTS)


def _normal_density(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# marginkit's composite delta (span.md leaves the weights to the clearing house's file): the deltas one day ahead at
# the seven price points 0, ±1/3, ±2/3, ±1 of the price scan range, volatility unchanged, weighted by the normal
# density with the price scan range taken as three standard deviations (points at 0, ±1σ, ±2σ, ±3σ).
DEFAULT_DELTA_POINTS: tuple[DeltaPoint, ...] = tuple(
    DeltaPoint(price=k / 3.0, weight=_normal_density(float(k))) for k in (0, 1, -1, 2, -2, 3, -3)
)


class SpanFileReference(_Strict):
    """A profile whose parameters come from a CME XML SPAN file (path relative to the profile file).

    `instrument_ids` maps book instrument ids to the file's contract keys (io/span_xml.py); the other keys
    override or complete what the file gives.
    """

    span_file: Name
    instrument_ids: dict[Name, Name] = {}
    account_class_ratios: dict[AccountClass, Ratio] | None = None
    default_account_class: AccountClass | None = None
    look_ahead_days: Money | None = None


def validate_span_parameters(data: Any, source: str) -> SpanParameters:
    """Validate a parameters mapping; InputError names the key path (prefixed `parameters`) and `source`."""
    try:
        return SpanParameters.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error, prefix="parameters").in_file(source) from None


def span_parameters_from_file(path: Path, instrument_ids: dict[str, str] | None = None,
                              overrides: dict[str, Any] | None = None) -> SpanParameters:
    """Read a CME XML SPAN file into SpanParameters: file contract keys renamed to book ids, `overrides` applied.

    `instrument_ids` maps a book instrument id to the file's contract key (`EXCH:PF:YYYYMM` or
    `EXCH:PF:YYYYMM:C:STRIKE`, io/span_xml.py); contracts not named keep their file key as id. Without
    `account_class_ratios` in the file or the overrides, validation names what is missing.
    """
    data = read_span_xml(path)
    renamed = {file_key: book_id for book_id, file_key in (instrument_ids or {}).items()}
    known = {key for commodity in data["combined_commodities"].values() for key in commodity["risk_arrays"]}
    for book_id, file_key in (instrument_ids or {}).items():
        if file_key not in known:
            raise InputError(f"{file_key!r} is not a contract of {path.name}",
                             field=f"parameters.instrument_ids.{book_id}")
    for commodity in data["combined_commodities"].values():
        commodity["risk_arrays"] = {renamed.get(k, k): v for k, v in commodity["risk_arrays"].items()}
        commodity["instruments"] = [renamed.get(k, k) for k in commodity["instruments"]]
    data.update(overrides or {})
    return validate_span_parameters(data, str(path))


def parse_span_parameters(profile: Profile) -> SpanParameters:
    """Validate a span profile's `parameters`, reading its `span_file` (CME XML SPAN) if it names one."""
    source = profile.path or profile.name
    if "span_file" not in profile.parameters:
        return validate_span_parameters(profile.parameters, source)
    try:
        reference = SpanFileReference.model_validate(profile.parameters)
    except ValidationError as error:
        raise from_validation_error(error, prefix="parameters").in_file(source) from None
    path = Path(reference.span_file)
    if not path.is_absolute() and profile.path is not None:
        path = Path(profile.path).parent / path
    if not path.is_file():
        raise InputError(f"SPAN file {str(path)!r} not found", field="parameters.span_file", file=source)
    overrides = reference.model_dump(exclude={"span_file", "instrument_ids"}, exclude_none=True)
    try:
        return span_parameters_from_file(path, reference.instrument_ids, overrides)
    except InputError as error:
        raise error.in_file(source) from None

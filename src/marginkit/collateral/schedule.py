"""Collateral profiles (`model: collateral`, docs/collateral.md): haircut schedules, chains and credit tiers.

A schedule per asset is `flat` (one haircut), `tiered` (bands by coin quantity, Bybit UTA, MEXC) or `banded`
(bands by USD value, Bitget), with separate initial and maintenance ratios; a band schedule is a tax bracket:
value = Σ_bands (min(x, up_to_b) − from_b)⁺ × ratio_b (crypto-venues.md (g)). Above the last stated cap
nothing counts. Compiled into padded per-asset band arrays with the cumulative value at each band's start.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from marginkit.errors import InputError
from marginkit.io.profile_file import Profile, load_profile_file
from marginkit.io.validation_errors import from_validation_error

F64 = NDArray[np.float64]
B = NDArray[np.bool_]

MODEL = "collateral"
QUANTITY, USD_VALUE = 0, 1

Fraction01 = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Name = Annotated[str, Field(strict=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BandRecord(_Strict):
    """One band: covers (previous up_to, up_to]; `ratio` for both, or `initial_ratio` and `maintenance_ratio`."""

    up_to: Positive | None = None
    ratio: Fraction01 | None = None
    initial_ratio: Fraction01 | None = None
    maintenance_ratio: Fraction01 | None = None

    @model_validator(mode="after")
    def _one_way_of_stating(self) -> BandRecord:
        separate = (self.initial_ratio is not None, self.maintenance_ratio is not None)
        if self.ratio is not None and any(separate):
            raise ValueError("give ratio, or initial_ratio and maintenance_ratio, not both")
        if self.ratio is None and not all(separate):
            raise ValueError("needs ratio, or both initial_ratio and maintenance_ratio")
        if self.initial() > self.maintenance():
            raise ValueError("initial_ratio must not exceed maintenance_ratio (initial is the stricter)")
        return self

    def initial(self) -> float:
        value = self.ratio if self.ratio is not None else self.initial_ratio
        assert value is not None
        return value

    def maintenance(self) -> float:
        value = self.ratio if self.ratio is not None else self.maintenance_ratio
        assert value is not None
        return value


class AssetScheduleRecord(_Strict):
    """`flat` with `haircut` (or `initial_haircut` and `maintenance_haircut`); `tiered`/`banded` with `bands`."""

    schedule: Literal["flat", "tiered", "banded"]
    haircut: Fraction01 | None = None
    initial_haircut: Fraction01 | None = None
    maintenance_haircut: Fraction01 | None = None
    bands: list[BandRecord] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AssetScheduleRecord:
        separate = (self.initial_haircut is not None, self.maintenance_haircut is not None)
        if self.schedule == "flat":
            if self.bands is not None:
                raise ValueError("a flat schedule has a haircut, not bands")
            if self.haircut is not None and any(separate):
                raise ValueError("give haircut, or initial_haircut and maintenance_haircut, not both")
            if self.haircut is None and not all(separate):
                raise ValueError("a flat schedule needs haircut, or initial_haircut and maintenance_haircut")
            if (self.initial_haircut or 0.0) < (self.maintenance_haircut or 0.0):
                raise ValueError("initial_haircut must be at least maintenance_haircut (initial is the stricter)")
            return self
        if self.haircut is not None or any(separate):
            raise ValueError(f"a {self.schedule} schedule has bands, not haircuts")
        if not self.bands:
            raise ValueError(f"a {self.schedule} schedule needs bands")
        caps = [b.up_to for b in self.bands]
        if any(cap is None for cap in caps[:-1]):
            raise ValueError("only the last band may be unbounded (up_to: null)")
        bounded = [cap for cap in caps if cap is not None]
        if any(b <= a for a, b in itertools.pairwise(bounded)):
            raise ValueError("bands' up_to must increase")
        return self

    def compiled_bands(self) -> list[tuple[float, float, float]]:
        """(up_to or inf, initial ratio, maintenance ratio) per band, flat as one unbounded band."""
        if self.schedule == "flat":
            if self.haircut is not None:
                return [(np.inf, 1.0 - self.haircut, 1.0 - self.haircut)]
            assert self.initial_haircut is not None and self.maintenance_haircut is not None
            return [(np.inf, 1.0 - self.initial_haircut, 1.0 - self.maintenance_haircut)]
        assert self.bands is not None
        return [(b.up_to if b.up_to is not None else np.inf, b.initial(), b.maintenance()) for b in self.bands]


class ChainRecord(_Strict):
    """A chain: haircut add-on (a further fraction off its balances), finality delay, and default status."""

    haircut_add_on: Fraction01 = 0.0
    finality_seconds: NonNegative = 0.0
    status: Literal["active", "halted"] = "active"


class TierRecord(_Strict):
    """A credit tier: multiplier of the model's initial margin and the largest share one asset may contribute."""

    initial_margin_multiplier: Positive = 1.0
    concentration_limit: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=1)] = 1.0


class CreditTiersRecord(_Strict):
    default: Name | None = None  # the tier of an account that states none (absent: multiplier 1, no limit)
    exempt_assets: list[Name] = []  # never cut by a concentration limit (e.g. USD, USDT), still in the total
    tiers: dict[Name, TierRecord]

    @model_validator(mode="after")
    def _default_known(self) -> CreditTiersRecord:
        if self.default is not None and self.default not in self.tiers:
            raise ValueError(f"default tier {self.default!r} is not in tiers")
        return self


class CollateralParametersRecord(_Strict):
    default: AssetScheduleRecord | None = None  # assets not listed (absent: full value)
    assets: dict[Name, AssetScheduleRecord] = {}
    chains: dict[Name, ChainRecord] | None = None  # absent: every chain active, no add-on, final at once
    credit_tiers: CreditTiersRecord | None = None  # absent: every account multiplier 1, no limit


@dataclass(frozen=True)
class CollateralSchedule:
    """A validated collateral profile; `name`/`version` None for the no-haircut schedule (no profile)."""

    parameters: CollateralParametersRecord
    name: str | None = None
    version: str | None = None
    honour_chain_status: bool = True

    @staticmethod
    def none() -> CollateralSchedule:
        """No collateral profile: every balance at index value, chains and credit tiers without effect."""
        return CollateralSchedule(CollateralParametersRecord(), honour_chain_status=False)


def parse_collateral_profile(profile: Profile) -> CollateralSchedule:
    """Validate a `model: collateral` profile's parameters; InputError names the file and `parameters.…` path."""
    if profile.model != MODEL:
        raise InputError(f"profile {profile.name!r} is for model {profile.model!r}, not a collateral profile",
                         field="model", file=profile.path or profile.name)
    try:
        record = CollateralParametersRecord.model_validate(profile.parameters)
    except ValidationError as error:
        raise from_validation_error(error, "parameters").in_file(profile.path or profile.name) from None
    return CollateralSchedule(record, profile.name, profile.version)


def shipped_collateral_profiles() -> dict[str, Profile]:
    """The shipped profiles of model `collateral`, by name."""
    from marginkit.profiles import shipped_profiles

    return {name: p for name, p in shipped_profiles().items() if p.model == MODEL}


def load_collateral_schedule(name_or_path: str) -> CollateralSchedule:
    """`--collateral`: a shipped collateral profile by name, else a profile file (.yaml, .yml, .json)."""
    from marginkit.profiles import shipped_profiles

    every = shipped_profiles()
    if name_or_path in every:
        if every[name_or_path].model != MODEL:
            raise InputError(f"profile {name_or_path!r} is for model {every[name_or_path].model!r}, "
                             "not a collateral profile", field="--collateral")
        return parse_collateral_profile(every[name_or_path])
    shipped = shipped_collateral_profiles()
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        return parse_collateral_profile(load_profile_file(path))
    raise InputError(f"unknown collateral profile {name_or_path!r} (shipped: {', '.join(sorted(shipped))}; "
                     "or a profile file)", field="--collateral")


@dataclass(frozen=True, eq=False)
class BandArrays:
    """Per asset (rows) padded band arrays: start, end (inf), initial and maintenance ratios, the cumulative
    value at each band's start, and the basis (QUANTITY or USD_VALUE)."""

    start: F64
    end: F64
    initial_ratio: F64
    maintenance_ratio: F64
    initial_cumulative: F64
    maintenance_cumulative: F64
    basis: NDArray[np.int8]
    kind: tuple[str, ...]  # per asset: flat | tiered | banded | none (full value)


def compile_bands(schedule: CollateralSchedule, assets: tuple[str, ...]) -> BandArrays:
    """Band arrays for the book's assets (a loop over assets, not accounts); above the last cap the ratio is 0."""
    rows: list[list[tuple[float, float, float]]] = []
    basis: list[int] = []
    kinds: list[str] = []
    params = schedule.parameters
    for asset in assets:
        record = params.assets.get(asset, params.default)
        if record is None:
            rows.append([(np.inf, 1.0, 1.0)])
            basis.append(QUANTITY)
            kinds.append("none")
            continue
        bands = record.compiled_bands()
        if np.isfinite(bands[-1][0]):
            bands.append((np.inf, 0.0, 0.0))
        rows.append(bands)
        basis.append(USD_VALUE if record.schedule == "banded" else QUANTITY)
        kinds.append(record.schedule)
    width = max((len(r) for r in rows), default=1)
    count = len(assets)
    end = np.full((count, width), np.inf)
    initial = np.zeros((count, width))
    maintenance = np.zeros((count, width))
    for i, bands in enumerate(rows):
        end[i, :len(bands)] = [b[0] for b in bands]
        initial[i, :len(bands)] = [b[1] for b in bands]
        maintenance[i, :len(bands)] = [b[2] for b in bands]
    start = np.zeros((count, width))
    start[:, 1:] = np.minimum(end[:, :-1], np.finfo(np.float64).max)
    width_of = np.where(np.isfinite(end), end - start, 0.0)
    initial_cumulative = np.zeros((count, width))
    maintenance_cumulative = np.zeros((count, width))
    initial_cumulative[:, 1:] = np.cumsum(width_of * initial, axis=1)[:, :-1]
    maintenance_cumulative[:, 1:] = np.cumsum(width_of * maintenance, axis=1)[:, :-1]
    return BandArrays(start, end, initial, maintenance, initial_cumulative, maintenance_cumulative,
                      np.array(basis, dtype=np.int8), tuple(kinds))


def band_value(x: F64, asset: NDArray[np.int32], start: F64, end: F64, ratio: F64, cumulative: F64) -> F64:
    """Tax-bracket value of amounts `x` ≥ 0 (in each asset's basis): cumulative at the band x falls in + the slice.

    The band is the count of bands whose end x has reached; padded bands end at inf, so never reached.
    """
    band = (x[:, None] >= end[asset]).sum(axis=1)
    band = np.minimum(band, end.shape[1] - 1)
    result: F64 = cumulative[asset, band] + (x - start[asset, band]) * ratio[asset, band]
    return result

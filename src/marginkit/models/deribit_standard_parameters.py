"""Parameters of the `deribit-standard` model: size-scaled futures rates and per-option constants."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, ConfigDict, Field

from marginkit.io.profile_file import Profile, StrictParameters, parse_parameters

Rate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)]
Slope = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


_Strict = StrictParameters


class FutureRates(_Strict):
    """rate = base + slope × s with s the position size in coin; margin = rate × size (Deribit futures page)."""

    initial_base: Rate
    initial_slope: Slope
    maintenance_base: Rate
    maintenance_slope: Slope


def _alias(ours: str, derive: str) -> AliasChoices:
    return AliasChoices(ours, derive)


class OptionConstants(_Strict):
    """Short-option constants per unit of underlying; Derive's own names (v2-core config) are accepted too.

    short call IM = max(initial_rate − OTM/S, minimum_initial_rate)·S + mark, MM = call_maintenance_rate·S + mark;
    short put MM = max(put_maintenance_rate·S, put_maintenance_mark_rate·mark) + mark,
    IM = max(max(initial_rate − OTM/S, minimum_initial_rate)·S + mark, put_initial_floor_scale × MM);
    S is one coin for coin-settled options.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    initial_rate: Rate = Field(validation_alias=_alias("initial_rate", "maxSpotReq"))
    minimum_initial_rate: Rate = Field(validation_alias=_alias("minimum_initial_rate", "minSpotReq"))
    call_maintenance_rate: Rate = Field(validation_alias=_alias("call_maintenance_rate", "mmCallSpotReq"))
    put_maintenance_rate: Rate = Field(validation_alias=_alias("put_maintenance_rate", "mmPutSpotReq"))
    put_maintenance_mark_rate: Slope = Field(validation_alias=_alias("put_maintenance_mark_rate", "MMPutMtMReq"))
    put_initial_floor_scale: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)] = Field(
        default=1.0, validation_alias=_alias("put_initial_floor_scale", "mmOffsetScale"))


class UnderlyingParameters(_Strict):
    """What one underlying's contracts need: futures and perpetual rates, option constants (either may be absent)."""

    futures: FutureRates | None = None
    options: OptionConstants | None = None


class Settings(_Strict):
    """long_option_loan_value: whether a long option's mark value counts toward equity (else it is required)."""

    long_option_loan_value: bool = Field(default=True, strict=True)


class DeribitStandardParameters(_Strict):
    """The `parameters` of a deribit-standard profile."""

    defaults: Settings = Settings()
    underlyings: dict[str, UnderlyingParameters]


def parse_deribit_standard_parameters(profile: Profile) -> DeribitStandardParameters:
    """Validate a deribit-standard profile's `parameters`; InputError names the key path and the file."""
    return parse_parameters(profile, DeribitStandardParameters)

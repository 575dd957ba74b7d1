"""The live engine's settings from a profile's optional `engine` section (validated, field paths on error).

```yaml
engine:
  liquidation_fee_rate: 0.005    # of the notional closed, into the insurance fund
  clip_fraction: 0.25            # of a position per liquidation step
  min_clip_notional: 1000        # below this notional (margin currency) a position closes whole
  margin_call_seconds: 3600      # deadline of a margin call
  stale_after_seconds: 60        # a price older than this freezes liquidation
  coalesce_seconds: 0            # window in which one instrument's burst of prices counts once
```

A profile without the section runs on these marginkit defaults (stated as such, not as any venue's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marginkit.engine.liquidation import LiquidationSettings
from marginkit.engine.monitor import MonitorSettings
from marginkit.io.profile_file import Profile
from marginkit.io.validation_errors import from_validation_error

NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0)]


class EngineRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    liquidation_fee_rate: Annotated[float, Field(allow_inf_nan=False, ge=0, lt=1)] = 0.005
    clip_fraction: Annotated[float, Field(allow_inf_nan=False, gt=0, le=1)] = 0.25
    min_clip_notional: NonNegative = 1_000.0
    margin_call_seconds: NonNegative = 3_600.0
    stale_after_seconds: Annotated[float, Field(gt=0)] = 60.0  # may be .inf in code, not in a file
    coalesce_seconds: NonNegative = 0.0


@dataclass(frozen=True)
class EngineSettings:
    """The liquidation engine's and the monitor's settings together."""

    liquidation: LiquidationSettings
    monitor: MonitorSettings


def engine_settings(profile: Profile) -> EngineSettings:
    """The profile's `engine` section as settings (marginkit's defaults where it has none)."""
    try:
        record = EngineRecord.model_validate(profile.engine or {})
    except ValidationError as error:
        raise from_validation_error(error, prefix="engine").in_file(profile.path or profile.name) from None
    return EngineSettings(
        LiquidationSettings(fee_rate=record.liquidation_fee_rate, clip_fraction=record.clip_fraction,
                            min_clip_notional=record.min_clip_notional),
        MonitorSettings(margin_call_seconds=record.margin_call_seconds,
                        stale_after_seconds=record.stale_after_seconds, coalesce_seconds=record.coalesce_seconds))

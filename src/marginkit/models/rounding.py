"""A venue's own rounding of reported figures: amounts to decimals, prices to the tick (profile settings)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

# A relative guard so that a value a few ulps past a grid point is not pushed one step further.
_GUARD = 1e-9


def round_to_step(values: F64, step: F64 | float, mode: str, reference: F64 | None = None) -> F64:
    """Round `values` to multiples of `step` (> 0; 0 leaves a value as it is).

    mode: up | down | nearest (half away from zero) | toward_mark / away_from_mark (relative to
    `reference`: a long's liquidation price below the mark rounds up toward it) | none.
    """
    values = np.asarray(values, dtype=np.float64)
    step_array = np.broadcast_to(np.asarray(step, dtype=np.float64), values.shape)
    if mode == "none":
        return values
    active = step_array > 0
    safe_step = np.where(active, step_array, 1.0)
    scaled = values / safe_step
    if mode in ("toward_mark", "away_from_mark"):
        assert reference is not None
        below = values < reference
        go_up = below if mode == "toward_mark" else ~below
        rounded = np.where(go_up, np.ceil(scaled - _GUARD), np.floor(scaled + _GUARD))
    elif mode == "up":
        rounded = np.ceil(scaled - _GUARD)
    elif mode == "down":
        rounded = np.floor(scaled + _GUARD)
    elif mode == "nearest":
        rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    else:
        raise ValueError(f"unknown rounding mode {mode!r}")
    result: F64 = np.where(active, rounded * safe_step, values)
    return result

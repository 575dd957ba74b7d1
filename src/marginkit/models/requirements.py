"""What a model returns: per-account requirements and, where the model defines them, per-position figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]
B = NDArray[np.bool_]


class LazyRows(Sequence[Mapping[str, Any]]):
    """Per-account explanation rows built only when read (a million accounts need not build a million dicts)."""

    def __init__(self, count: int, build: Callable[[int], Mapping[str, Any]]) -> None:
        self._count = count
        self._build = build

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Mapping[str, Any]:  # type: ignore[override]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        return self._build(index % self._count)


@dataclass(frozen=True, eq=False)
class PositionFigures:
    """Per-position results aligned with the Book's position arrays; a False in `*_defined` means null."""

    initial_margin: F64
    maintenance_margin: F64
    liquidation_price: F64
    liquidation_price_defined: B
    bankruptcy_price: F64
    bankruptcy_price_defined: B
    details: Mapping[str, NDArray[np.generic]] = field(default_factory=dict)
    isolated_wallet: F64 | None = None


@dataclass(frozen=True, eq=False)
class Requirements:
    """Initial and maintenance margin per account in its margin currency, on the equity footing.

    `margin_asset` indexes Book.assets; `components` are per-account arrays that explain the total
    (and carry a venue's own figure where it differs in footing); amounts are never NaN.
    """

    model: str
    profile: str
    profile_version: str
    margin_asset: I32
    initial_margin: F64
    maintenance_margin: F64
    components: Mapping[str, F64] = field(default_factory=dict)
    positions: PositionFigures | None = None
    explanations: Sequence[Mapping[str, Any]] | None = None  # per account, JSON-ready (e.g. the pairing chosen)

    def __post_init__(self) -> None:
        for name in ("initial_margin", "maintenance_margin"):
            values = getattr(self, name)
            if not np.all(np.isfinite(values)):
                raise ArithmeticError(f"{self.model}: a non-finite {name} left the model")

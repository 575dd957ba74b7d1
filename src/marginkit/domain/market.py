"""A market snapshot at one moment: index prices, marks, forwards, vols, smiles, rates, open interest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class SviSlice:
    """Raw SVI total variance w(k) = a + b·(rho·(k − m) + √((k − m)² + sigma²)), k = ln(K/F) (Gatheral 2004)."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float


def _proxy(mapping: Mapping[Any, Any] | None) -> MappingProxyType[Any, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Market state passed to resolve; USD value of each asset in `index`, rates continuously compounded."""

    index: Mapping[str, float]
    marks: Mapping[str, float] = field(default_factory=dict)
    forwards: Mapping[tuple[str, datetime], float] = field(default_factory=dict)
    vols: Mapping[str, float] = field(default_factory=dict)
    surfaces: Mapping[str, Mapping[datetime, SviSlice]] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    open_interest: Mapping[str, float] = field(default_factory=dict)
    chain_status: Mapping[str, str] = field(default_factory=dict)  # chain -> active | halted (absent: active)

    def __post_init__(self) -> None:
        for name in ("index", "marks", "forwards", "vols", "rates", "open_interest", "chain_status"):
            object.__setattr__(self, name, _proxy(getattr(self, name)))
        object.__setattr__(
            self, "surfaces", MappingProxyType({k: _proxy(v) for k, v in self.surfaces.items()})
        )

    def usd_price(self, asset: str) -> float | None:
        """USD value of one unit of `asset` (USD itself is 1), or None if the market lacks it."""
        if asset in self.index:
            return self.index[asset]
        return 1.0 if asset == "USD" else None

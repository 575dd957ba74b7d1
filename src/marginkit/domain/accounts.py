"""Accounts, their collateral balances and positions (spec/book-format.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class MarginMode(StrEnum):
    """How an account's collateral backs its positions."""

    ISOLATED = "isolated"
    CROSS = "cross"
    PORTFOLIO = "portfolio"


class PositionMode(StrEnum):
    """One-way (one net position per instrument) or hedge (separate long and short legs)."""

    ONE_WAY = "one-way"
    HEDGE = "hedge"


class PositionSide(StrEnum):
    """The leg a position is: `both` in one-way mode, `long` or `short` in hedge mode."""

    BOTH = "both"
    LONG = "long"
    SHORT = "short"


def _frozen(mapping: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Position:
    """A holding: signed contracts (+ long) at an average entry price (quote per unit, or premium)."""

    instrument: str
    quantity: float
    entry_price: float | None = None
    leverage: float | None = None
    position_side: PositionSide = PositionSide.BOTH


@dataclass(frozen=True, slots=True)
class Deposit:
    """A deposit of `amount` of `asset` on `chain` received at `time` (UTC); part of that chain's balance.

    It counts as collateral only once final: `time` + the chain's finality delay ≤ as_of (docs/collateral.md).
    """

    asset: str
    chain: str
    amount: float
    time: datetime


@dataclass(frozen=True, slots=True)
class Account:
    """An account: margin mode, collateral balances per asset (negative = loan) and positions.

    `isolated_margin` maps an instrument id to the collateral assigned to it in isolated mode,
    taken out of `collateral`.
    """

    id: str
    mode: MarginMode
    position_mode: PositionMode = PositionMode.ONE_WAY
    account_class: str | None = None
    collateral: Mapping[str, float] = field(default_factory=lambda: _frozen(None))
    isolated_margin: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    positions: tuple[Position, ...] = ()
    credit_tier: str | None = None  # a collateral profile maps it to an IM multiplier and a concentration limit
    # per asset, the part of `collateral` held on each chain ({asset: {chain: amount}}); the rest is on no chain
    collateral_chains: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    deposits: tuple[Deposit, ...] = ()  # recent deposits, part of their chain's balance (finality)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collateral", _frozen(self.collateral))
        object.__setattr__(
            self,
            "collateral_chains",
            MappingProxyType({k: _frozen(v) for k, v in self.collateral_chains.items()}),
        )
        object.__setattr__(
            self,
            "isolated_margin",
            MappingProxyType({k: _frozen(v) for k, v in self.isolated_margin.items()}),
        )

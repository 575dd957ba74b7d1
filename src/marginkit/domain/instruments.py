"""Instrument contract terms: spot, futures, perpetuals and options, linear or inverse (spec/book-format.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class InstrumentType(StrEnum):
    """What kind of contract an instrument is."""

    SPOT = "spot"
    FUTURE = "future"
    PERPETUAL = "perpetual"
    OPTION = "option"


class OptionType(StrEnum):
    """Call or put."""

    CALL = "call"
    PUT = "put"


@dataclass(frozen=True, slots=True)
class Instrument:
    """Contract terms of one instrument; prices are quote currency per unit of underlying.

    `contract_size` is units of underlying for linear contracts and options, and quote currency
    (USD) per contract for inverse futures and perpetuals, which settle in the underlying coin.
    """

    id: str
    type: InstrumentType
    underlying: str
    quote: str
    settlement: str
    inverse: bool
    contract_size: float
    tick_size: float | None = None
    expiry: datetime | None = None
    option_type: OptionType | None = None
    strike: float | None = None
    index_class: str | None = None
    leverage_factor: float = 1.0

    @property
    def is_delta_one_derivative(self) -> bool:
        """True for futures and perpetuals (valued by unrealised P&L against entry)."""
        return self.type in (InstrumentType.FUTURE, InstrumentType.PERPETUAL)

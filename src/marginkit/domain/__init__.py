"""Contract terms and holdings as frozen, validated value objects (no market, no model)."""

from marginkit.domain.accounts import Account, Deposit, MarginMode, Position, PositionMode, PositionSide
from marginkit.domain.book_spec import BookSpec
from marginkit.domain.instruments import Instrument, InstrumentType, OptionType
from marginkit.domain.market import MarketSnapshot, SviSlice

__all__ = [
    "Account",
    "BookSpec",
    "Deposit",
    "Instrument",
    "InstrumentType",
    "MarginMode",
    "MarketSnapshot",
    "OptionType",
    "Position",
    "PositionMode",
    "PositionSide",
    "SviSlice",
]

"""What a book file describes: instruments, one market snapshot and accounts, before resolve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marginkit.domain.accounts import Account
from marginkit.domain.instruments import Instrument
from marginkit.domain.market import MarketSnapshot


@dataclass(frozen=True, slots=True)
class BookSpec:
    """The validated contents of a book file (spec/book-format.md); `resolve` turns it into a Book."""

    as_of: datetime
    instruments: tuple[Instrument, ...]
    market: MarketSnapshot
    accounts: tuple[Account, ...]

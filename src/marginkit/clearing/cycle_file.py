"""A settlement-cycle file: the cycle's time, settlement prices, funding rates, index prices and trades.

```yaml
time: "2026-11-24T16:00:00Z"       # the cycle (UTC); its variation-margin entry's key is derived from it
prices: {BTC-FUT-DEC26: 96100, BTC-PERP: 95630}   # settlement price per instrument (quote per unit)
funding_rates: {BTC-PERP: 0.0001}  # this cycle's rate per perpetual (+: longs pay); default none
index: {BTC: 95600}                # USD value per unit of assets that moved; default unchanged
trades:                            # bilateral trades novated before the cycle; default none
  - {id: T1, buyer: M1.C1, seller: M2.house, instrument: BTC-PERP, quantity: 2, price: 95100.5}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marginkit.clearing.novation import Trade
from marginkit.errors import InputError
from marginkit.io.book_file import UtcTime
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TradeRecord(_Strict):
    id: Name
    buyer: Name
    seller: Name
    instrument: Name
    quantity: Positive
    price: Positive


class CycleRecord(_Strict):
    time: UtcTime
    prices: dict[Name, NonNegative] = Field(min_length=1)
    funding_rates: dict[Name, Finite] = {}
    index: dict[Name, Positive] = {}
    trades: list[TradeRecord] = []


@dataclass(frozen=True)
class CycleInput:
    """One cycle's inputs: time (UTC), settlement prices, funding rates, index prices and trades to novate first."""

    time: datetime
    prices: dict[str, float]
    funding_rates: dict[str, float]
    index: dict[str, float]
    trades: tuple[Trade, ...]


def parse_cycle(data: Any) -> CycleInput:
    """Validate a parsed cycle file; InputError names the field."""
    if not isinstance(data, dict):
        raise InputError("a cycle file is a mapping with time and prices (and funding_rates, index, trades)")
    try:
        record = CycleRecord.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error) from None
    trades = tuple(Trade(t.id, t.buyer, t.seller, t.instrument, t.quantity, t.price) for t in record.trades)
    return CycleInput(record.time, dict(record.prices), dict(record.funding_rates), dict(record.index), trades)


def load_cycle(path: str | Path) -> CycleInput:
    """Read and validate a cycle file (JSON or YAML); errors name the file and the field."""
    try:
        return parse_cycle(load_structured(path))
    except InputError as error:
        raise error.in_file(str(path)) from None

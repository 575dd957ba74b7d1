"""Novation: a bilateral trade between two members' accounts becomes two legs facing the clearing house.

A trade of `quantity` contracts (> 0) bought by `buyer` from `seller` at `price` is booked as the buyer
long `quantity` against the clearing house and the seller short `quantity` against it: two ledger trades,
buyer ← clearing house and clearing house ← seller, so the clearing house's own position in the instrument
moves by −quantity + quantity = 0 (risk-models.md, "Clearing house mechanics"). A batch is validated whole
before anything is written: a bad trade raises InputError naming `trades[i].<field>` and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.clearing.positions import MAX_LOTS, QUANTITY_DECIMALS
from marginkit.errors import InputError
from marginkit.ledger import Operation, make_operation

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TRADE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
MAX_KEY = 128


@dataclass(frozen=True, slots=True)
class Trade:
    """A bilateral trade: `quantity` contracts (> 0) bought by account `buyer` from account `seller` at `price`.

    `id` is unique per clearing house (printable, no spaces, at most 64 characters); novating the same trade
    again is a no-op. `price` is in the instrument's price units (quote per unit of underlying; options: premium).
    Amounts may be given as Decimal, int, decimal string or float (read by its shortest repr).
    """

    id: str
    buyer: str
    seller: str
    instrument: str
    quantity: Decimal | int | str | float
    price: Decimal | int | str | float


@dataclass(frozen=True, eq=False)
class TradeBatch:
    """A validated batch: the trades new to the clearing house as arrays (account and instrument indices)."""

    trades: tuple[Trade, ...]
    quantities: tuple[Decimal, ...]
    prices: tuple[Decimal, ...]
    buyer: I64
    seller: I64
    instrument: I64
    lots: I64
    price: F64
    duplicates: int


@dataclass(frozen=True)
class NovationResult:
    """What a `novate` call did: the trades booked now, and the ones skipped as booked before.

    `duplicates` counts trades this clearing house had already booked (skipped); `replayed` counts trades booked
    now whose ledger entries were already journalled by an earlier run with the same inputs.
    """

    novated: tuple[str, ...]
    duplicates: int
    replayed: int = 0


def operation_key(*parts: str) -> str:
    """An idempotency key from its parts ('a:b:c'); one longer than the ledger allows keeps a hash of the rest."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return f"{parts[0][:48]}:{hashlib.sha256(key.encode()).hexdigest()}"


def exact_decimal(value: Any, field: str) -> Decimal:
    """A finite Decimal from a Decimal, int, decimal string or float (by its shortest repr); else InputError."""
    if isinstance(value, bool):
        raise InputError("must be a number", field=field)
    if isinstance(value, float):
        number = Decimal(repr(value)) if np.isfinite(value) else Decimal("NaN")
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise InputError(f"{value!r} is not a decimal number", field=field) from None
    else:
        raise InputError("must be a number", field=field)
    if not number.is_finite():
        raise InputError("must be finite", field=field)
    return number


def _same(trade: Trade, other: Trade) -> bool:
    return (trade.buyer, trade.seller, trade.instrument) == (other.buyer, other.seller, other.instrument) and \
        exact_decimal(trade.quantity, "quantity") == exact_decimal(other.quantity, "quantity") and \
        exact_decimal(trade.price, "price") == exact_decimal(other.price, "price")


def validate_trades(trades: Sequence[Trade], account_index: Mapping[str, int], instrument_index: Mapping[str, int],
                    booked: Mapping[str, Trade], refused_accounts: Mapping[str, str]) -> TradeBatch:
    """Check every trade (ids, accounts, instrument, quantity, price) and keep those not booked before.

    `refused_accounts` maps an account to the reason it cannot trade (its member is in default); a trade
    booked before under the same id must be the same trade. Errors name `trades[i].<field>`.
    """
    new: list[Trade] = []
    quantities: list[Decimal] = []
    prices: list[Decimal] = []
    rows: list[tuple[int, int, int, int, float]] = []
    seen: set[str] = set()
    duplicates = 0
    for n, trade in enumerate(trades):
        where = f"trades[{n}]"
        if not isinstance(trade, Trade):
            raise InputError("must be a Trade", field=where)
        if not isinstance(trade.id, str) or not TRADE_ID.match(trade.id):
            raise InputError("must be 1 to 64 printable characters without spaces", field=f"{where}.id")
        if trade.id in seen:
            raise InputError(f"trade {trade.id!r} appears twice in the batch", field=f"{where}.id")
        seen.add(trade.id)
        for side in ("buyer", "seller"):
            account = getattr(trade, side)
            if not isinstance(account, str) or account not in account_index:
                raise InputError(f"unknown clearing account {account!r}", field=f"{where}.{side}")
            if account in refused_accounts:
                raise InputError(refused_accounts[account], field=f"{where}.{side}")
        if trade.buyer == trade.seller:
            raise InputError("buyer and seller are the same account", field=f"{where}.seller")
        if not isinstance(trade.instrument, str) or trade.instrument not in instrument_index:
            raise InputError(f"unknown instrument {trade.instrument!r}", field=f"{where}.instrument")
        quantity = exact_decimal(trade.quantity, f"{where}.quantity")
        if quantity <= 0:
            raise InputError("must be positive (the buyer buys from the seller)", field=f"{where}.quantity")
        scaled = quantity.scaleb(QUANTITY_DECIMALS)
        if scaled != scaled.to_integral_value():
            raise InputError(f"has more than {QUANTITY_DECIMALS} decimals", field=f"{where}.quantity")
        if scaled > MAX_LOTS:
            raise InputError("is too large", field=f"{where}.quantity")
        price = exact_decimal(trade.price, f"{where}.price")
        if price <= 0 or not np.isfinite(float(price)):
            raise InputError("must be positive", field=f"{where}.price")
        if trade.id in booked:
            if not _same(trade, booked[trade.id]):
                raise InputError(f"trade {trade.id!r} was novated before with other terms", field=f"{where}.id")
            duplicates += 1
            continue
        new.append(trade)
        quantities.append(quantity)
        prices.append(price)
        rows.append((account_index[trade.buyer], account_index[trade.seller], instrument_index[trade.instrument],
                     int(scaled), float(price)))
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    return TradeBatch(tuple(new), tuple(quantities), tuple(prices), np.array(columns[0], dtype=np.int64),
                      np.array(columns[1], dtype=np.int64), np.array(columns[2], dtype=np.int64),
                      np.array(columns[3], dtype=np.int64), np.array(columns[4], dtype=np.float64), duplicates)


def novation_operations(batch: TradeBatch, clearing_house: str, key_prefix: str) -> list[Operation]:
    """Two ledger trades per trade: buyer ← clearing house, and clearing house ← seller, at the trade's price."""
    operations = []
    for trade, quantity, price in zip(batch.trades, batch.quantities, batch.prices, strict=True):
        common = {"instrument": trade.instrument, "quantity": quantity, "price": price}
        operations.append(make_operation("trade", operation_key(key_prefix, trade.id, "buyer"),
                                         {"buyer": trade.buyer, "seller": clearing_house, **common}))
        operations.append(make_operation("trade", operation_key(key_prefix, trade.id, "seller"),
                                         {"buyer": clearing_house, "seller": trade.seller, **common}))
    return operations


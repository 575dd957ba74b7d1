"""Collateral and position values in each account's margin currency (book format, "Equity and currency")."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from marginkit.book import Book

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]


def collateral_value(book: Book, margin_asset: I32) -> F64:
    """Σ balance × index price of each account's collateral, in its margin asset (negative balances count in full)."""
    usd: F64 = book.collateral @ book.asset_price
    result: F64 = usd / book.asset_price[margin_asset]
    return result


def position_value_in(book: Book, margin_asset: I32) -> F64:
    """Each position's value (book.position_value, settlement currency) converted to its account's margin asset."""
    usd = book.position_value * book.usd_per_settlement()
    result: F64 = usd / book.asset_price[margin_asset[book.position_account]]
    return result

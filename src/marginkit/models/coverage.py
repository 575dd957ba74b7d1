"""What every model checks before margining: coverage refusals naming the position, and the margin currency."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from marginkit.book import Book
from marginkit.errors import ModelRefusal


def position_field(book: Book, position: int) -> str:
    """The book-file path of a position: accounts[a].positions[j]."""
    account = int(book.position_account[position])
    first = int(np.searchsorted(book.position_account, account, side="left"))
    return f"accounts[{account}].positions[{position - first}]"


def refuse_positions(book: Book, model: str, bad: NDArray[np.bool_], reason: str) -> None:
    """Raise ModelRefusal naming the first position where `bad` is True."""
    if bad.any():
        p = int(np.argmax(bad))
        instrument = book.instruments[int(book.position_instrument[p])].id
        raise ModelRefusal(f"{model}: {reason} ({instrument})", field=position_field(book, p))


def settlement_margin_assets(book: Book, model: str) -> NDArray[np.int32]:
    """Each account's margin asset: the settlement coin if all its contracts are coin-settled on it, else USD.

    Book format, "Equity and currency": coin-margined accounts in the settlement coin, USD otherwise;
    an account mixing both is refused (a venue keeps them in separate wallets).
    """
    usd = book.asset_index["USD"]
    if not book.inverse.any():
        return np.full(book.account_count, usd, dtype=np.int32)
    instrument_asset = np.where(book.inverse, book.settlement, usd).astype(np.int32)
    position_asset = instrument_asset[book.position_instrument]
    low = np.full(book.account_count, np.iinfo(np.int32).max, dtype=np.int32)
    high = np.full(book.account_count, -1, dtype=np.int32)
    np.minimum.at(low, book.position_account, position_asset)
    np.maximum.at(high, book.position_account, position_asset)
    mixed = (high >= 0) & (low != high)
    if mixed.any():
        account = int(np.argmax(mixed))
        raise ModelRefusal(
            f"{model}: the account mixes contracts settled in different currencies; a venue keeps them in "
            "separate wallets, so give each its own account", field=f"accounts[{account}]",
        )
    result: NDArray[np.int32] = np.where(high >= 0, high, usd).astype(np.int32)
    return result

"""Equity, margin ratio and status per account (spec/book-format.md "Equity and currency", spec/cli.md).

equity = collateral valued at index prices + futures and perpetuals' unrealised P&L at the mark
+ spot and options at quantity × size × mark, all in the account's margin currency;
margin_ratio = maintenance_margin / equity when equity > 0; status: healthy (equity ≥ IM),
margin_call (MM ≤ equity < IM) or liquidation (equity < MM). An isolated position whose own
wallet plus P&L is below its maintenance margin puts its account in liquidation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from marginkit.book import ISOLATED, Book, sum_by_account
from marginkit.collateral import collateral_value, position_value_in
from marginkit.models.requirements import Requirements

F64 = NDArray[np.float64]
HEALTHY, MARGIN_CALL, LIQUIDATION = 0, 1, 2
STATUS_NAMES = ("healthy", "margin_call", "liquidation")


@dataclass(frozen=True, eq=False)
class AccountState:
    """Per-account equity (margin currency), margin ratio (valid where `margin_ratio_defined`) and status code."""

    equity: F64
    margin_ratio: F64
    margin_ratio_defined: NDArray[np.bool_]
    status: NDArray[np.int8]

    def status_name(self, account: int) -> str:
        return STATUS_NAMES[int(self.status[account])]


def account_state(book: Book, requirements: Requirements) -> AccountState:
    """Equity, margin ratio and status of every account under one model's requirements."""
    margin_asset = requirements.margin_asset
    value = position_value_in(book, margin_asset)
    equity = collateral_value(book, margin_asset) + sum_by_account(book.position_account, value, book.account_count)
    initial = requirements.initial_margin
    maintenance = requirements.maintenance_margin
    status = np.where(equity >= initial, HEALTHY, np.where(equity >= maintenance, MARGIN_CALL, LIQUIDATION))
    figures = requirements.positions
    if figures is not None and figures.isolated_wallet is not None:
        isolated = book.account_mode[book.position_account] == ISOLATED
        breached = isolated & (figures.isolated_wallet + value < figures.maintenance_margin) & (book.quantity != 0)
        if breached.any():
            status[np.unique(book.position_account[breached])] = LIQUIDATION
    positive = equity > 0
    ratio = np.where(positive, maintenance / np.where(positive, equity, 1.0), 0.0)
    return AccountState(equity=equity, margin_ratio=ratio, margin_ratio_defined=positive,
                        status=status.astype(np.int8))

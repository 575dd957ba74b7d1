"""Equity, margin ratio and status per account (spec/book-format.md "Equity and currency", spec/cli.md).

equity = collateral valued at index prices + futures and perpetuals' unrealised P&L at the mark
+ spot and options at quantity × size × mark, all in the account's margin currency;
margin_ratio = maintenance_margin / equity when equity > 0; status: healthy (equity ≥ IM),
margin_call (MM ≤ equity < IM) or liquidation (equity < MM). An isolated position whose own
wallet plus P&L is below its maintenance margin puts its account in liquidation.

Under a collateral profile (docs/collateral.md) the book carries its collateral valued with initial and
with maintenance haircuts: equity_initial (collateral at initial haircuts + positions) is compared with the
initial margin (the model's, × the credit tier's multiplier, `apply_credit_tier`) and equity_maintenance with
the maintenance margin: liquidation (equity_maintenance < MM), else healthy (equity_initial ≥ IM), else
margin_call; margin_ratio = MM / equity_maintenance. `equity` stays the value without haircuts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from marginkit.book import ISOLATED, Book, sum_by_account
from marginkit.collateral import (
    collateral_value,
    collateral_value_initial,
    market_value_of_collateral,
    position_value_in,
)
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
    equity_initial: F64 | None = None  # under a collateral profile: equity with initial haircuts
    equity_maintenance: F64 | None = None  # under a collateral profile: equity with maintenance haircuts

    def status_name(self, account: int) -> str:
        return STATUS_NAMES[int(self.status[account])]


def account_state(book: Book, requirements: Requirements) -> AccountState:
    """Equity, margin ratio and status of every account under one model's requirements."""
    margin_asset = requirements.margin_asset
    value = position_value_in(book, margin_asset)
    positions = sum_by_account(book.position_account, value, book.account_count)
    equity = market_value_of_collateral(book, margin_asset) + positions
    initial = requirements.initial_margin
    maintenance = requirements.maintenance_margin
    equity_initial: F64 | None = None
    equity_maintenance: F64 | None = None
    if book.collateral_maintenance_usd is None:
        status = np.where(equity >= initial, HEALTHY, np.where(equity >= maintenance, MARGIN_CALL, LIQUIDATION))
        ratio_base = equity
    else:
        equity_initial = collateral_value_initial(book, margin_asset) + positions
        equity_maintenance = collateral_value(book, margin_asset) + positions
        status = np.where(equity_maintenance < maintenance, LIQUIDATION,
                          np.where(equity_initial >= initial, HEALTHY, MARGIN_CALL))
        ratio_base = equity_maintenance
    figures = requirements.positions
    if figures is not None and figures.isolated_wallet is not None:
        isolated = book.account_mode[book.position_account] == ISOLATED
        breached = isolated & (figures.isolated_wallet + value < figures.maintenance_margin) & (book.quantity != 0)
        if breached.any():
            status[np.unique(book.position_account[breached])] = LIQUIDATION
    positive = ratio_base > 0
    ratio = np.where(positive, maintenance / np.where(positive, ratio_base, 1.0), 0.0)
    return AccountState(equity=equity, margin_ratio=ratio, margin_ratio_defined=positive,
                        status=status.astype(np.int8), equity_initial=equity_initial,
                        equity_maintenance=equity_maintenance)


def apply_credit_tier(book: Book, requirements: Requirements) -> Requirements:
    """The model's initial margin × each account's credit-tier multiplier, under a collateral profile.

    Adds the components `model_initial_margin` and `credit_tier_multiplier`; without a collateral profile the
    requirements are returned unchanged. Per-position figures stay the model's.
    """
    multiplier = book.initial_margin_multiplier
    if multiplier is None:
        return requirements
    components = {**requirements.components, "model_initial_margin": requirements.initial_margin,
                  "credit_tier_multiplier": multiplier}
    return replace(requirements, initial_margin=requirements.initial_margin * multiplier, components=components)

"""Equity, margin ratio and status (accounts/state.py, spec/cli.md)."""

from __future__ import annotations

import numpy as np

from marginkit.accounts import account_state
from marginkit.book import resolve
from marginkit.io.book_file import parse_book
from marginkit.models.requirements import Requirements


def one_account_book(collateral: float) -> dict[str, object]:
    return {
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [{"id": "P", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USDT",
                         "inverse": False, "contract_size": 1}],
        "market": {"index": {"BTC": 100.0, "USDT": 1.0}, "marks": {"P": 110.0}},
        "accounts": [{"id": "a", "mode": "cross", "collateral": {"USDT": collateral},
                      "positions": [{"instrument": "P", "quantity": 1, "entry_price": 100}]}],
    }


def requirements(book_accounts: int, initial: float, maintenance: float, usd: int) -> Requirements:
    return Requirements(model="test", profile="test", profile_version="test",
                        margin_asset=np.full(book_accounts, usd, dtype=np.int32),
                        initial_margin=np.array([initial]), maintenance_margin=np.array([maintenance]))


def test_status_levels_and_margin_ratio() -> None:
    # equity = 40 USDT + P&L 1 × (110 − 100) = 50
    book = resolve(parse_book(one_account_book(40.0)))
    usd = book.asset_index["USD"]

    healthy = account_state(book, requirements(1, 50.0, 10.0, usd))
    called = account_state(book, requirements(1, 60.0, 50.0, usd))
    liquidated = account_state(book, requirements(1, 60.0, 50.5, usd))

    assert healthy.equity[0] == 50.0
    assert healthy.status_name(0) == "healthy"          # 50 ≥ IM 50
    assert called.status_name(0) == "margin_call"       # MM 50 ≤ 50 < IM 60
    assert liquidated.status_name(0) == "liquidation"   # 50 < MM 50.5
    assert healthy.margin_ratio[0] == 10.0 / 50.0       # MM / equity


def test_margin_ratio_is_undefined_without_positive_equity() -> None:
    # equity = −20 + 10 = −10
    book = resolve(parse_book(one_account_book(-20.0)))

    state = account_state(book, requirements(1, 5.0, 1.0, book.asset_index["USD"]))

    assert not state.margin_ratio_defined[0]
    assert state.status_name(0) == "liquidation"

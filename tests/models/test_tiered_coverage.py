"""What the tiered model refuses, and the margin currency it chooses (models/tiered.py)."""

from __future__ import annotations

from typing import Any

import pytest

from marginkit.book import resolve
from marginkit.errors import ModelRefusal
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models.tiered import margin
from marginkit.profiles import shipped_profile

LINEAR = {"id": "BTCUSDT", "type": "perpetual", "underlying": "BTC", "quote": "USDT", "settlement": "USDT",
          "inverse": False, "contract_size": 1}
INVERSE = {"id": "BTCUSD", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
           "inverse": True, "contract_size": 100}
OPTION = {"id": "BTC-C", "type": "option", "option_type": "call", "strike": 100000, "underlying": "BTC",
          "quote": "USD", "settlement": "BTC", "inverse": True, "contract_size": 1,
          "expiry": "2026-12-26T08:00:00Z"}


def book(positions: list[dict[str, Any]], mode: str = "cross", position_mode: str = "one-way") -> dict[str, Any]:
    return {
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [LINEAR, INVERSE, OPTION],
        "market": {"index": {"BTC": 95000.0, "USDT": 1.0}, "marks": {"BTC-C": 0.02}},
        "accounts": [{"id": "a", "mode": mode, "position_mode": position_mode, "collateral": {"USDT": 1000},
                      "positions": positions}],
    }


def test_an_option_is_refused_naming_the_position() -> None:
    spec = parse_book(book([{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 95000},
                            {"instrument": "BTC-C", "quantity": -1, "entry_price": 0.02}]))

    with pytest.raises(ModelRefusal) as raised:
        margin(resolve(spec), shipped_profile("binance-usdm"))

    assert raised.value.field == "accounts[0].positions[1]"


def test_a_portfolio_account_is_refused() -> None:
    spec = parse_book(book([{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 95000}], mode="portfolio"))

    with pytest.raises(ModelRefusal, match="portfolio"):
        margin(resolve(spec), shipped_profile("binance-usdm"))


def test_an_account_mixing_coin_and_usd_margined_contracts_is_refused() -> None:
    # BTC brackets in quote for the linear perp, an instrument-id override in coin for the inverse one:
    # both are covered, but a venue keeps USD- and coin-margined contracts in separate wallets.
    profile = parse_profile({
        "model": "tiered", "name": "t", "version": "t", "source": "t",
        "parameters": {"underlyings": {
            "BTC": {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.004, "max_leverage": 125}]},
            "BTCUSD": {"notional_unit": "coin", "brackets": [{"maintenance_rate": 0.004, "max_leverage": 125}]},
        }},
    })
    spec = parse_book(book([{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 95000},
                            {"instrument": "BTCUSD", "quantity": 10, "entry_price": 95000}]))

    with pytest.raises(ModelRefusal, match="separate wallets") as raised:
        margin(resolve(spec), profile)

    assert raised.value.field == "accounts[0]"


def test_dydx_refuses_hedge_mode() -> None:
    spec = parse_book(book([{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 95000, "position_side": "long"}],
                           position_mode="hedge"))

    with pytest.raises(ModelRefusal, match="hedge"):
        margin(resolve(spec), shipped_profile("dydx-v4"))


def test_inverse_account_is_margined_in_its_coin() -> None:
    # 100 contracts × $100 / 95,000 = 0.10526 BTC notional, bracket 1 at 125x: IM = 0.10526/125 BTC
    spec = parse_book(book([{"instrument": "BTCUSD", "quantity": 100, "entry_price": 95000}]))
    resolved = resolve(spec)

    requirements = margin(resolved, shipped_profile("binance-coinm"))

    assert resolved.assets[int(requirements.margin_asset[0])] == "BTC"
    assert requirements.initial_margin[0] == pytest.approx(10000 / 95000 / 125, rel=1e-12)

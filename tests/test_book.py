"""resolve: arrays, marks, position values and the sparse position matrix (book.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from marginkit.book import resolve
from marginkit.errors import InputError
from marginkit.io.book_file import parse_book
from marginkit.pricing import black76_price


def base_book(**market: Any) -> dict[str, Any]:
    return {
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [
            {"id": "BTC-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USDT",
             "inverse": False, "contract_size": 0.001},
            {"id": "BTC-26DEC26", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
             "inverse": True, "contract_size": 10, "expiry": "2026-12-26T08:00:00Z"},
            {"id": "BTC-26DEC26-100000-C", "type": "option", "option_type": "call", "strike": 100000,
             "expiry": "2026-12-26T08:00:00Z", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
             "inverse": True, "contract_size": 1},
        ],
        "market": {"index": {"BTC": 95000.0, "USDT": 1.0}, **market},
        "accounts": [
            {"id": "alice", "mode": "cross", "collateral": {"USDT": 1000, "BTC": 0.5},
             "positions": [{"instrument": "BTC-PERP", "quantity": 2000, "entry_price": 94000},
                           {"instrument": "BTC-26DEC26-100000-C", "quantity": -3, "entry_price": 0.02}]},
            {"id": "bob", "mode": "cross", "collateral": {"BTC": 1},
             "positions": [{"instrument": "BTC-26DEC26", "quantity": -100, "entry_price": 96000}]},
        ],
    }


def test_resolve_builds_columnar_arrays_and_the_position_matrix() -> None:
    spec = parse_book(base_book(marks={"BTC-PERP": 95010.0, "BTC-26DEC26-100000-C": 0.021},
                                forwards={"BTC@2026-12-26T08:00:00Z": 95400.0}))

    book = resolve(spec)

    assert book.account_ids == ("alice", "bob")
    assert book.position_account.tolist() == [0, 0, 1]
    # collateral: alice 1000 USDT and 0.5 BTC in the USDT and BTC columns
    assert book.collateral[0, book.asset_index["USDT"]] == 1000
    assert book.collateral[0, book.asset_index["BTC"]] == 0.5
    # the future has no mark: its forward 95,400 is used
    np.testing.assert_allclose(book.mark, [95010.0, 95400.0, 0.021])
    assert book.position_matrix.shape == (2, 3)
    assert book.position_matrix[0, 2] == -3
    assert book.position_matrix[1, 1] == -100


def test_position_values_follow_the_book_format() -> None:
    spec = parse_book(base_book(marks={"BTC-PERP": 95010.0, "BTC-26DEC26-100000-C": 0.021},
                                forwards={"BTC@2026-12-26T08:00:00Z": 95400.0}))

    book = resolve(spec)

    # linear perp: 2000 × 0.001 × (95010 − 94000) = 2020 USDT
    assert book.position_value[0] == pytest.approx(2020.0, rel=1e-12)
    # short call: −3 × 1 × 0.021 = −0.063 BTC
    assert book.position_value[1] == pytest.approx(-0.063, rel=1e-12)
    # inverse short future: −100 × 10 × (1/96000 − 1/95400) = +6.5513e-5 BTC
    assert book.position_value[2] == pytest.approx(-1000 * (1 / 96000 - 1 / 95400), rel=1e-12)


def test_future_without_forward_uses_the_rate_differential() -> None:
    # F = 95000 × exp((0.05 − 0.01) × T), T = 32 days / 365
    spec = parse_book(base_book(marks={"BTC-26DEC26-100000-C": 0.021}, rates={"USD": 0.05, "BTC": 0.01}))

    book = resolve(spec)

    assert book.mark[1] == pytest.approx(95000 * math.exp(0.04 * 32 / 365), rel=1e-12)


def test_option_without_mark_is_priced_by_black76_in_coin() -> None:
    # coin premium = USD Black-76 price / forward
    spec = parse_book(base_book(forwards={"BTC@2026-12-26T08:00:00Z": 95400.0},
                                vols={"BTC-26DEC26-100000-C": 0.55}))

    book = resolve(spec)

    usd = float(black76_price(95400.0, 100000.0, 32 / 365, 0.55, True, 1.0))
    assert book.mark[2] == pytest.approx(usd / 95400.0, rel=1e-12)


def test_option_without_mark_or_vol_is_refused_naming_the_field() -> None:
    spec = parse_book(base_book())

    with pytest.raises(InputError) as raised:
        resolve(spec)

    assert raised.value.field == "market.marks.BTC-26DEC26-100000-C"


def test_an_option_with_only_a_mark_gets_its_implied_volatility() -> None:
    # the coin mark of a 0.55-vol call (Black-76 / F) must give back 0.55
    forward = 95400.0
    coin_mark = float(black76_price(forward, 100000.0, 32 / 365, 0.55, True, 1.0)) / forward
    spec = parse_book(base_book(forwards={"BTC@2026-12-26T08:00:00Z": forward},
                                marks={"BTC-26DEC26-100000-C": coin_mark}))

    book = resolve(spec)

    assert book.volatility is not None and book.forward is not None
    assert book.volatility[2] == pytest.approx(0.55, rel=1e-10)
    assert book.forward[2] == forward

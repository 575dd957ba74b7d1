"""Property tests of the tiered model (hypothesis).

(a) With `mm_basis: liquidation_price`, the liquidation price is where equity meets maintenance margin: move
    the position's mark to its liquidation price, margin the book again, and the account's equity equals its
    maintenance margin within what one price tick changes (linear: |q|·size·tick; inverse, in coin:
    Q·tick/LP², the derivative of Q·(1/EP − 1/P)).
(b) Maintenance margin = N·mmr_b − cum_b is continuous and non-decreasing in the notional N across every
    bracket cap (the `cum` recursion makes N·mmr_b − cum_b = N·mmr_(b+1) − cum_(b+1) at cap_b).
(c) Results do not depend on the order of positions within an account or of accounts within the book.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from marginkit.accounts.state import account_state
from marginkit.book import Book, resolve
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile
from marginkit.models.tiered import margin
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
EXPIRY = "2026-12-26T08:00:00Z"
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

USDM = shipped_profile("binance-usdm")
COINM = shipped_profile("binance-coinm")


def _linear(instrument_id: str, underlying: str, size: float, tick: float, future: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"id": instrument_id, "type": "future" if future else "perpetual",
                              "underlying": underlying, "quote": "USD", "settlement": "USDT", "inverse": False,
                              "contract_size": size, "tick_size": tick}
    if future:
        record["expiry"] = EXPIRY
    return record


def _inverse(instrument_id: str, future: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"id": instrument_id, "type": "future" if future else "perpetual", "underlying": "BTC",
                              "quote": "USD", "settlement": "BTC", "inverse": True, "contract_size": 100.0,
                              "tick_size": 0.1}
    if future:
        record["expiry"] = EXPIRY
    return record


LINEAR_INSTRUMENTS = [
    _linear("BTC-USDT", "BTC", 0.001, 0.1),
    _linear("ETH-USDT", "ETH", 0.01, 0.01),
    _linear("BTC-USDT-26DEC26", "BTC", 0.001, 0.1, future=True),
    _linear("ETH-USDT-26DEC26", "ETH", 0.01, 0.01, future=True),
]
INVERSE_INSTRUMENTS = [_inverse("BTCUSD"), _inverse("BTCUSD-26DEC26", future=True)]


# ---------------------------------------------------------------------------------------------------------------
# Strategies: a market and accounts as book dicts
# ---------------------------------------------------------------------------------------------------------------


@st.composite
def markets(draw: st.DrawFn, inverse: bool) -> dict[str, Any]:
    btc = draw(st.floats(5_000.0, 150_000.0))
    eth = draw(st.floats(300.0, 8_000.0))
    basis = st.floats(-0.01, 0.02)
    if inverse:
        marks = {"BTCUSD": btc, "BTCUSD-26DEC26": btc * (1 + draw(basis))}
        return {"index": {"BTC": btc}, "marks": marks}
    marks = {"BTC-USDT": btc, "ETH-USDT": eth, "BTC-USDT-26DEC26": btc * (1 + draw(basis)),
             "ETH-USDT-26DEC26": eth * (1 + draw(basis))}
    return {"index": {"BTC": btc, "ETH": eth, "USDT": 1.0}, "marks": marks}


@st.composite
def account_dicts(draw: st.DrawFn, market: dict[str, Any], inverse: bool, account_id: str, mode: str,
                  hedge: bool, max_positions: int) -> dict[str, Any]:
    """An account with 1..max_positions positions; notional log-uniform over every bracket of the shipped tables.

    Collateral is a fraction of the gross notional (in the margin currency), so most positions have a
    liquidation price. Isolated accounts hold one position with all their collateral assigned to it.
    """
    instruments = INVERSE_INSTRUMENTS if inverse else LINEAR_INSTRUMENTS
    ids = [i["id"] for i in instruments]
    legs = draw(st.lists(
        st.tuples(st.sampled_from(ids), st.sampled_from([1, -1])),
        min_size=1, max_size=1 if mode == "isolated" else max_positions,
        unique_by=(lambda leg: leg) if hedge else (lambda leg: leg[0]),
    ))
    positions: list[dict[str, Any]] = []
    gross = 0.0
    for instrument_id, side in legs:
        spec = next(i for i in instruments if i["id"] == instrument_id)
        mark = market["marks"][instrument_id]
        entry = mark * (1 + draw(st.floats(-0.05, 0.05)))
        usd_notional = 10 ** draw(st.floats(3.0, 8.0 if inverse else 8.8))
        if inverse:
            contracts = usd_notional / spec["contract_size"]
            gross += usd_notional / mark  # coin
        else:
            contracts = usd_notional / (mark * spec["contract_size"])
            gross += usd_notional
        record: dict[str, Any] = {"instrument": instrument_id, "quantity": side * contracts, "entry_price": entry}
        if hedge:
            record["position_side"] = "long" if side > 0 else "short"
        positions.append(record)
    asset = "BTC" if inverse else "USDT"
    wallet = gross * draw(st.floats(0.005, 0.6))
    result: dict[str, Any] = {"id": account_id, "mode": mode, "position_mode": "hedge" if hedge else "one-way",
                              "collateral": {asset: wallet}, "positions": positions}
    if mode == "isolated":
        result["isolated_margin"] = {positions[0]["instrument"]: {asset: wallet}}
    return result


def _book(data: dict[str, Any]) -> Book:
    return resolve(parse_book(data))


def _book_dict(market: dict[str, Any], accounts: list[dict[str, Any]], inverse: bool) -> dict[str, Any]:
    return {"as_of": AS_OF, "instruments": INVERSE_INSTRUMENTS if inverse else LINEAR_INSTRUMENTS,
            "market": market, "accounts": accounts}


# ---------------------------------------------------------------------------------------------------------------
# (a) equity = maintenance margin at the liquidation price
# ---------------------------------------------------------------------------------------------------------------


def _assert_equity_meets_maintenance_at_liquidation(data: dict[str, Any], profile: Profile) -> int:
    """For every position with a liquidation price: move its instrument's mark there and compare.

    Returns how many positions were checked.
    """
    book = _book(data)
    figures = margin(book, profile).positions
    assert figures is not None
    checked = 0
    for p in range(book.position_count):
        if not figures.liquidation_price_defined[p]:
            continue
        lp = float(figures.liquidation_price[p])
        a = int(book.position_account[p])
        i = int(book.position_instrument[p])
        instrument_id = book.instruments[i].id
        # Arrange: the same book with only this instrument's mark moved to the liquidation price.
        moved = copy.deepcopy(data)
        moved["market"]["marks"][instrument_id] = lp
        # Act
        moved_book = _book(moved)
        moved_requirements = margin(moved_book, profile)
        equity = float(account_state(moved_book, moved_requirements).equity[a])
        maintenance = float(moved_requirements.maintenance_margin[a])
        # Assert: one tick of this instrument moves equity − MM by at most Σ |q|·size·tick (linear) or
        # Σ Q·tick/LP² (inverse, coin) over the account's legs of this instrument.
        same = (book.position_account == a) & (book.position_instrument == i)
        exposure = float(np.sum(np.abs(book.quantity[same]))) * float(book.contract_size[i])
        tick = float(book.tick_size[i])
        one_tick = exposure * tick / lp**2 if book.inverse[i] else exposure * tick
        assert abs(equity - maintenance) <= one_tick, (
            f"{instrument_id}: LP {lp}, equity {equity}, MM {maintenance}, one tick {one_tick}")
        checked += 1
    return checked


@pytest.mark.parametrize("inverse", [False, True], ids=["linear-usdm", "inverse-coinm"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_single_position_equity_equals_maintenance_at_liquidation_price(inverse: bool, data: st.DataObject) -> None:
    # Arrange: one position, isolated (wallet = the assigned collateral) or cross.
    market = data.draw(markets(inverse))
    mode = data.draw(st.sampled_from(["isolated", "cross"]))
    account = data.draw(account_dicts(market, inverse, "a", mode, hedge=False, max_positions=1))
    book_data = _book_dict(market, [account], inverse)
    profile = COINM if inverse else USDM
    # Act / Assert
    checked = _assert_equity_meets_maintenance_at_liquidation(book_data, profile)
    assume(checked > 0)


@pytest.mark.parametrize("inverse", [False, True], ids=["linear-usdm", "inverse-coinm"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_cross_multi_position_equity_equals_maintenance_at_liquidation_price(inverse: bool,
                                                                             data: st.DataObject) -> None:
    # Arrange: a cross account with several positions (one-way, or hedge legs sharing one price per instrument);
    # for each position only its own instrument's mark moves to the liquidation price.
    market = data.draw(markets(inverse))
    hedge = data.draw(st.booleans())
    account = data.draw(account_dicts(market, inverse, "a", "cross", hedge=hedge, max_positions=4))
    book_data = _book_dict(market, [account], inverse)
    profile = COINM if inverse else USDM
    # Act / Assert
    checked = _assert_equity_meets_maintenance_at_liquidation(book_data, profile)
    assume(checked > 0)


# ---------------------------------------------------------------------------------------------------------------
# (b) maintenance margin is continuous and non-decreasing in position size
# ---------------------------------------------------------------------------------------------------------------

BRACKET_CAPS = {
    (False, "BTC"): [b["max_notional"] for b in USDM.parameters["underlyings"]["BTC"]["brackets"]
                     if "max_notional" in b],
    (False, "ETH"): [b["max_notional"] for b in USDM.parameters["underlyings"]["ETH"]["brackets"]
                     if "max_notional" in b],
    (True, "BTC"): [b["max_notional"] for b in COINM.parameters["underlyings"]["BTC"]["brackets"]
                    if "max_notional" in b],
}
STRADDLE = np.array([-1e-3, -1e-5, -1e-7, -1e-9, 0.0, 1e-9, 1e-7, 1e-5, 1e-3])


@pytest.mark.parametrize(("inverse", "underlying"), [(False, "BTC"), (False, "ETH"), (True, "BTC")],
                         ids=["usdm-BTC", "usdm-ETH", "coinm-BTC"])
@PROPERTY_SETTINGS
@given(mark=st.floats(1_000.0, 150_000.0), side=st.sampled_from([1.0, -1.0]))
def test_maintenance_margin_is_continuous_and_non_decreasing_in_size(inverse: bool, underlying: str, mark: float,
                                                                     side: float) -> None:
    # Arrange: one cross account per size, sizes on a fine grid straddling every cap (N·(1 ± 1e-9 … 1e-3)) plus
    # a log grid from 1/1000 of the first cap to twice the last one. N is in USD (USDⓈ-M) or coin (COIN-M).
    caps = np.array(BRACKET_CAPS[(inverse, underlying)], dtype=float)
    grid = np.geomspace(caps[0] / 1_000, caps[-1] * 2, 400)
    notionals = np.unique(np.concatenate([grid, (caps[:, None] * (1 + STRADDLE[None, :])).ravel()]))
    instrument = INVERSE_INSTRUMENTS[0] if inverse else next(
        i for i in LINEAR_INSTRUMENTS if i["underlying"] == underlying and i["type"] == "perpetual")
    size = instrument["contract_size"]
    # linear: N = |contracts| × size × mark; inverse: N = |contracts| × size / mark (coin)
    contracts = notionals * mark / size if inverse else notionals / (mark * size)
    asset = "BTC" if inverse else "USDT"
    index = {"BTC": mark} if inverse else {underlying: mark, "USDT": 1.0}
    accounts = [{"id": f"a{k}", "mode": "cross", "collateral": {asset: 1.0},
                 "positions": [{"instrument": instrument["id"], "quantity": side * float(c), "entry_price": mark}]}
                for k, c in enumerate(contracts)]
    book_data = {"as_of": AS_OF, "instruments": [instrument],
                 "market": {"index": index, "marks": {instrument["id"]: mark}}, "accounts": accounts}
    book = _book(book_data)
    profile = COINM if inverse else USDM
    rates = np.array([b["maintenance_rate"] for b in profile.parameters["underlyings"][underlying]["brackets"]])
    # Act
    requirements = margin(book, profile)
    assert requirements.positions is not None
    mm = requirements.positions.maintenance_margin
    n = requirements.positions.details["notional"]
    order = np.argsort(n, kind="stable")
    mm, n = mm[order], n[order]
    # Assert: non-decreasing (up to float noise) ...
    scale = np.maximum(mm, 1e-12)
    assert np.all(np.diff(mm) >= -1e-12 * scale[1:])
    # ... and Lipschitz with the top rate: MM(N₂) − MM(N₁) ≤ max mmr × (N₂ − N₁) + noise, so no step anywhere,
    # in particular at each cap, where the gap over 2·1e-9·cap is ≈ 0.
    slack = 1e-12 * scale[1:] + 1e-12
    assert np.all(np.diff(mm) <= rates.max() * np.diff(n) + slack)
    for cap in caps:
        below = (cap * (1 - 1e-9), cap)
        above = (cap, cap * (1 + 1e-9))
        mm_below = np.interp(below, n, mm)
        mm_above = np.interp(above, n, mm)
        jump = mm_above[1] - mm_below[0]
        # Expected jump across the cap: (N₊ − N₋) at the rate of the bracket above, 2e-9 × cap × mmr ≈ 0.
        assert abs(jump) <= 2e-9 * cap * rates.max() + 1e-9 * max(float(mm_above[1]), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# (c) results do not depend on the order of positions or accounts
# ---------------------------------------------------------------------------------------------------------------


def _by_key(data: dict[str, Any], profile: Profile) -> tuple[dict[tuple[str, str, int], tuple[float, ...]],
                                                              dict[str, tuple[float, float]]]:
    """Per (account, instrument, side code): IM, MM, LP (0 = none), defined, BP, defined; per account: IM, MM."""
    book = _book(data)
    requirements = margin(book, profile)
    figures = requirements.positions
    assert figures is not None
    positions: dict[tuple[str, str, int], tuple[float, ...]] = {}
    for p in range(book.position_count):
        key = (book.account_ids[int(book.position_account[p])], book.instruments[int(book.position_instrument[p])].id,
               int(book.position_side[p]))
        positions[key] = (float(figures.initial_margin[p]), float(figures.maintenance_margin[p]),
                          float(figures.liquidation_price[p]), float(figures.liquidation_price_defined[p]),
                          float(figures.bankruptcy_price[p]), float(figures.bankruptcy_price_defined[p]))
    accounts = {account_id: (float(requirements.initial_margin[a]), float(requirements.maintenance_margin[a]))
                for a, account_id in enumerate(book.account_ids)}
    return positions, accounts


@PROPERTY_SETTINGS
@given(data=st.data())
def test_results_do_not_depend_on_position_or_account_order(data: st.DataObject) -> None:
    # Arrange: 2-5 accounts of every kind (isolated/cross, one-way/hedge) on the shipped USDⓈ-M profile.
    market = data.draw(markets(False))
    count = data.draw(st.integers(2, 5))
    accounts = []
    for k in range(count):
        mode = data.draw(st.sampled_from(["isolated", "cross"]))
        hedge = data.draw(st.booleans())
        accounts.append(data.draw(account_dicts(market, False, f"acct{k}", mode, hedge=hedge, max_positions=6)))
    original = _book_dict(market, accounts, inverse=False)
    shuffled_accounts = [dict(a, positions=data.draw(st.permutations(a["positions"]))) for a in accounts]
    shuffled = _book_dict(market, data.draw(st.permutations(shuffled_accounts)), inverse=False)
    # Act
    positions_a, accounts_a = _by_key(original, USDM)
    positions_b, accounts_b = _by_key(shuffled, USDM)
    # Assert: same figures per (account, instrument, side) and per account; only summation order may differ.
    assert positions_a.keys() == positions_b.keys()
    for key, expected in positions_a.items():
        assert positions_b[key] == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    assert accounts_a.keys() == accounts_b.keys()
    for key, expected_pair in accounts_a.items():
        assert accounts_b[key] == pytest.approx(expected_pair, rel=1e-12), key

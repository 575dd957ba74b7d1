"""Stress tests of the clearing house's book (clearing/stress.py), every figure by hand.

Method: PFMI Principle 4 (stressed losses in excess of initial margin, members with affiliates). The house of
tests/clearing/data/drill-house.yaml holds one future XYZ-FUT at 100: A.house +1000, A.C1 +100 (individually
segregated: ported), B −400, C +400, D −1100; IM = |q| × 100 × 10 % (span-flat-10): 10,000, 1,000, 4,000,
4,000, 11,000.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from marginkit.book import resolve
from marginkit.clearing.margin import ClearingMargins, clearing_margins
from marginkit.clearing.spec import ClearingSpec, load_clearing
from marginkit.clearing.stress import (
    HISTORICAL,
    Shock,
    account_stress_pnl,
    combine,
    historical_scenarios,
    hypothetical_scenarios,
    instrument_stress_pnl,
    stress_test,
)
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.book_file import parse_book
from marginkit.io.market_history import read_market_history

DATA = Path(__file__).parent / "data"
# Float64 figures: 100 × (0.7 − 1) is −30.000000000000004, so amounts compare within 1e-6.
SCENARIOS = hypothetical_scenarios({"crash": {"XYZ": Shock(-0.30)}, "rally": {"XYZ": Shock(0.20)}})


def approx(expected: list[Any]) -> Any:
    return pytest.approx(np.array(expected), abs=1e-6)


@pytest.fixture(scope="module")
def house() -> tuple[ClearingSpec, ClearingMargins]:
    spec = load_clearing(DATA / "drill-house.yaml")
    return spec, clearing_margins(spec)


def test_hypothetical_pnl_per_account_and_member(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    result = stress_test(spec, SCENARIOS, margins)
    # P&L per contract: crash 100 × −0.30 = −30, rally 100 × 0.20 = +20.
    #   A.house 1000: −30,000 / +20,000; A.C1 100: −3,000 / +2,000; B −400: +12,000 / −8,000;
    #   C 400: −12,000 / +8,000; D −1100: +33,000 / −22,000
    assert result.account_pnl == approx([[-30000.0, 20000.0], [-3000.0, 2000.0], [12000.0, -8000.0],
                                        [-12000.0, 8000.0], [33000.0, -22000.0]])
    assert result.counted.tolist() == [True, False, True, True, True]  # A.C1 is ported
    assert result.member_pnl == approx([[-30000.0, 20000.0], [12000.0, -8000.0], [-12000.0, 8000.0],
                                       [33000.0, -22000.0]])
    assert result.member_margin.tolist() == [10000.0, 4000.0, 4000.0, 11000.0]
    # loss beyond IM = max(0, −P&L − IM): A 30,000 − 10,000 = 20,000 (crash); B 8,000 − 4,000 = 4,000 (rally);
    # C 12,000 − 4,000 = 8,000 (crash); D 22,000 − 11,000 = 11,000 (rally)
    assert result.member_excess == approx([[20000.0, 0.0], [0.0, 4000.0], [8000.0, 0.0], [0.0, 11000.0]])
    assert result.worst_excess == approx([20000.0, 4000.0, 8000.0, 11000.0])
    assert result.worst_scenario.tolist() == [0, 1, 0, 1]
    assert result.group_ids == ("A", "B", "C", "D")  # each member is its own group


def test_individually_segregated_clients_count_when_not_ported(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    result = stress_test(spec, SCENARIOS, margins, port_individual_clients=False)
    # A = A.house + A.C1: crash −30,000 − 3,000 = −33,000; IM 10,000 + 1,000 = 11,000 → 22,000 beyond margin
    assert result.member_pnl[0] == approx([-33000.0, 22000.0])
    assert result.member_margin[0] == 11000.0
    assert result.worst_excess[0] == pytest.approx(22000.0, abs=1e-6)


def test_affiliate_group_sums_its_members_losses_beyond_margin(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    affiliated = replace(spec, members=tuple(replace(m, affiliate_group="BD") if m.id in ("B", "D") else m
                                             for m in spec.members))
    result = stress_test(affiliated, SCENARIOS, margins)
    # groups in order of first appearance: A, BD, C; BD in rally: 4,000 + 11,000 = 15,000 (crash: both gain → 0).
    # A member's surplus never offsets an affiliate: in crash B gains 12,000 yet BD's loss is 0 + 0, not negative.
    assert result.group_ids == ("A", "BD", "C")
    assert result.group_excess == approx([[20000.0, 0.0], [0.0, 15000.0], [8000.0, 0.0]])
    assert result.group_members("BD") == ("B", "D")


def test_an_underlying_a_scenario_does_not_name_stays_still(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    result = stress_test(spec, hypothetical_scenarios({"other": {"ABC": Shock(-0.5)}}), margins)
    assert result.account_pnl.tolist() == [[0.0]] * 5
    assert result.worst_scenario.tolist() == [-1, -1, -1, -1]


def test_historical_windows_over_the_mpor(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    history = read_market_history(DATA / "history.csv")
    scenarios = historical_scenarios(history, 2, "hist")
    # XYZ 100, 110, 75, 88, 90 (vol 0.50, 0.55, 0.80, 0.70, 0.60); 2-day windows ending on the 4th, 5th, 6th:
    # 75/100 − 1 = −0.25 (vol +0.30), 88/110 − 1 = −0.20 (+0.15), 90/75 − 1 = +0.20 (−0.20)
    assert scenarios.names == ("hist@2026-11-04", "hist@2026-11-05", "hist@2026-11-06")
    assert scenarios.kinds == (HISTORICAL,) * 3
    assert scenarios.price_move[0] == pytest.approx([-0.25, -0.20, 0.20], abs=1e-12)
    assert scenarios.volatility_move[0] == pytest.approx([0.30, 0.15, -0.20], abs=1e-12)
    result = stress_test(spec, scenarios, margins)
    # A 1000 × 100 × (−0.25, −0.20, +0.20) = −25,000, −20,000, +20,000 → beyond IM 10,000: 15,000, 10,000, 0
    assert result.member_excess[0] == pytest.approx([15000.0, 10000.0, 0.0], abs=1e-6)
    assert result.worst_scenario[0] == 0
    # a period from the 3rd: windows ending on the 5th and 6th only
    later = historical_scenarios(history, 2, "hist", start=date(2026, 11, 3))
    assert later.names == ("hist@2026-11-05", "hist@2026-11-06")
    with pytest.raises(InputError):
        historical_scenarios(history, 2, "hist", start=date(2026, 11, 5))  # 2 dates: no 2-day window


def test_combine_and_select_scenarios() -> None:
    history = read_market_history(DATA / "history.csv")
    every = combine(SCENARIOS, historical_scenarios(history, 2, "hist"))
    assert every.names == ("crash", "rally", "hist@2026-11-04", "hist@2026-11-05", "hist@2026-11-06")
    # a historical set's name selects all its windows; a single window by its own name
    assert every.select(["rally", "hist"]).names == ("rally", "hist@2026-11-04", "hist@2026-11-05",
                                                     "hist@2026-11-06")
    assert every.select(["hist@2026-11-05"]).price_move[0] == pytest.approx([-0.20], abs=1e-12)
    with pytest.raises(InputError) as caught:
        every.select(["crash", "melt-up"])
    assert caught.value.field == "scenarios[1]"
    with pytest.raises(InputError):
        combine(SCENARIOS, SCENARIOS)  # a name twice
    with pytest.raises(InputError):  # a hypothetical scenario named like a historical set: ambiguous to select
        combine(hypothetical_scenarios({"hist": {"XYZ": Shock(0.1)}}), historical_scenarios(history, 2, "hist"))


def test_bad_shocks_name_the_field() -> None:
    with pytest.raises(InputError) as caught:
        hypothetical_scenarios({"wipe-out": {"XYZ": Shock(-1.0)}})
    assert caught.value.field == "wipe-out.XYZ.price"
    with pytest.raises(InputError) as caught:
        hypothetical_scenarios({"odd": {"XYZ": Shock(0.1, math.inf)}})
    assert caught.value.field == "odd.XYZ.volatility"


def book(instruments: list[dict[str, Any]], positions: list[dict[str, Any]], **market: Any) -> Any:
    return resolve(parse_book({
        "as_of": "2026-11-24T08:00:00Z", "instruments": instruments,
        "market": {"index": {"XYZ": 100.0}, **market},
        "accounts": [{"id": "acct", "mode": "cross", "collateral": {"USD": 1000}, "positions": positions}]}))


FUTURE = {"id": "XYZ-FUT", "type": "future", "underlying": "XYZ", "quote": "USD", "settlement": "USD",
          "inverse": False, "contract_size": 1, "expiry": "2027-06-25T08:00:00Z"}


def black76_call(forward: float, strike: float, years: float, sigma: float) -> float:
    """Undiscounted Black-76 call: F·N(d1) − K·N(d2), d1 = (ln(F/K) + σ²T/2)/(σ√T), d2 = d1 − σ√T."""
    d1 = (math.log(forward / strike) + sigma * sigma * years / 2) / (sigma * math.sqrt(years))
    d2 = d1 - sigma * math.sqrt(years)
    return forward * NormalDist().cdf(d1) - strike * NormalDist().cdf(d2)


def test_options_are_revalued_by_black76_at_the_shocked_forward_and_vol() -> None:
    call = {"id": "XYZ-C100", "type": "option", "option_type": "call", "strike": 100.0,
            "expiry": "2027-11-24T08:00:00Z", "underlying": "XYZ", "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": 1}
    resolved = book([call, FUTURE], [{"instrument": "XYZ-C100", "quantity": 2, "entry_price": 19.74},
                                     {"instrument": "XYZ-FUT", "quantity": -1, "entry_price": 100}],
                    marks={"XYZ-FUT": 100.0}, vols={"XYZ-C100": 0.5})
    scenarios = hypothetical_scenarios({"down": {"XYZ": Shock(-0.20, 0.10)}})
    # T = 365 days = 1 year, no rates: forward 100. Call before: C(100, 100, 1, 0.5) = 100·(2·N(0.25) − 1) ≈ 19.74;
    # after: C(80, 100, 1, 0.6) ≈ 12.62. Future: −1 × 100 × −0.20 = +20.
    before = black76_call(100.0, 100.0, 1.0, 0.5)
    after = black76_call(80.0, 100.0, 1.0, 0.6)
    assert before == pytest.approx(100 * (2 * NormalDist().cdf(0.25) - 1), rel=1e-12)
    pnl = account_stress_pnl(resolved, scenarios, "USD")
    assert pnl[0, 0] == pytest.approx(2 * (after - before) + 20.0, rel=1e-9)


def test_coin_settled_contracts_and_unknown_currencies_are_refused() -> None:
    inverse = {**FUTURE, "id": "XYZ-INV", "settlement": "XYZ", "inverse": True, "contract_size": 100}
    resolved = book([inverse], [{"instrument": "XYZ-INV", "quantity": 1, "entry_price": 100}],
                    marks={"XYZ-INV": 100.0})
    with pytest.raises(ModelRefusal) as refused:
        instrument_stress_pnl(resolved, SCENARIOS, "USD")
    assert refused.value.field == "accounts[0].positions[0]"
    linear = book([FUTURE], [{"instrument": "XYZ-FUT", "quantity": 1, "entry_price": 100}], marks={"XYZ-FUT": 100.0})
    with pytest.raises(InputError) as caught:
        instrument_stress_pnl(linear, SCENARIOS, "EUR")
    assert caught.value.field == "clearing_house.currency"
    assert instrument_stress_pnl(linear, SCENARIOS, "USD") == approx([[-30.0, 20.0]])

"""Deribit portfolio margin: properties and X:PM (models/portfolio_deribit.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.accounts import account_state
from marginkit.book import resolve
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models.portfolio_deribit import margin
from marginkit.profiles import shipped_profile

EXPIRY = "2026-12-26T08:00:00Z"
INSTRUMENTS: list[dict[str, Any]] = [
    {"id": "PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "BTC", "inverse": True,
     "contract_size": 10},
    {"id": "FUT", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "BTC", "inverse": True,
     "contract_size": 10, "expiry": EXPIRY},
    *({"id": f"{kind[0].upper()}{strike}", "type": "option", "option_type": kind, "strike": strike,
       "expiry": EXPIRY, "underlying": "BTC", "quote": "USD", "settlement": "BTC", "inverse": True,
       "contract_size": 1} for kind in ("call", "put") for strike in (80000, 100000, 120000)),
]
IDS = [i["id"] for i in INSTRUMENTS]
VOLS = {i["id"]: 0.6 for i in INSTRUMENTS if i["type"] == "option"}
PROFILE = shipped_profile("deribit-pm")


def book(accounts: list[list[tuple[str, float]]]) -> Any:
    return resolve(parse_book({
        "as_of": "2026-11-24T08:00:00Z", "instruments": INSTRUMENTS,
        "market": {"index": {"BTC": 100000.0}, "forwards": {f"BTC@{EXPIRY}": 100500.0}, "vols": VOLS},
        "accounts": [{"id": f"a{n}", "mode": "portfolio", "position_mode": "hedge", "collateral": {"BTC": 5.0},
                      "positions": [{"instrument": i, "quantity": q, "entry_price": 100000 if i in ("PERP", "FUT")
                                     else 0.05, "position_side": "long" if q > 0 else "short"}
                                    for i, q in legs if q != 0]}
                     for n, legs in enumerate(accounts)],
    }))


def no_offsets_no_contingencies() -> Any:
    shipped = PROFILE.parameters
    # the extended dampener is an allowance per portfolio (one for the sum, one per position alone): off too
    currency = {k: {**v, "pnl_offset": 0, "max_offsetable_pnl": 0, "annualised_move_risk": 0,
                    "min_annualised_move": 0, "extended_dampener": 0} for k, v in shipped["currency"].items()}
    return parse_profile({"model": "portfolio", "name": "bare", "version": "t", "source": "t",
                          "parameters": {**shipped, "currency": currency}})


positions = st.lists(st.tuples(st.sampled_from(IDS), st.integers(min_value=-30, max_value=30).map(float)),
                     min_size=1, max_size=5, unique_by=lambda t: t[0])


@settings(max_examples=40, deadline=None)
@given(positions, st.sampled_from(IDS), st.integers(min_value=1, max_value=20))
def test_a_position_and_its_exact_opposite_change_nothing(legs: list[tuple[str, float]], extra: str,
                                                         size: int) -> None:
    # hedge-mode legs: a long and a short leg of `extra` cancel in every scenario
    base = [(i, q) for i, q in legs if i != extra and q != 0]

    without = margin(book([base]), PROFILE)
    with_both = margin(book([[*base, (extra, float(size)), (extra, -float(size))]]), PROFILE)

    assert with_both.initial_margin[0] == pytest.approx(without.initial_margin[0], rel=1e-12, abs=1e-12)
    assert with_both.maintenance_margin[0] == pytest.approx(without.maintenance_margin[0], rel=1e-12, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(positions)
def test_portfolio_margin_is_at_most_the_sum_of_position_margins(legs: list[tuple[str, float]]) -> None:
    # no gain offsets and no roll shock: the worst of a sum is at most the sum of the worsts
    profile = no_offsets_no_contingencies()
    legs = [(i, q) for i, q in legs if q != 0] or [("PERP", 1.0)]

    together = margin(book([legs]), profile).maintenance_margin[0]
    alone = sum(margin(book([[leg]]), profile).maintenance_margin[0] for leg in legs)

    assert together <= alone + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([i for i in IDS if i not in ("PERP", "FUT")]), st.integers(min_value=1, max_value=50))
def test_a_long_options_worst_loss_never_exceeds_its_value(option: str, contracts: int) -> None:
    resolved = book([[(option, float(contracts))]])

    worst = margin(resolved, PROFILE).components["worst_case"][0]

    value = contracts * resolved.mark[IDS.index(option)]  # coin premium × contracts
    assert worst <= value + 1e-9


def test_cross_currency_account_margins_in_usd_with_coin_collateral_at_risk() -> None:
    # X:PM: USDC collateral makes the account cross-currency: USD margin. A long 1 BTC of perpetual ($100,000
    # face) loses 1 × (−0.16)/0.84 BTC at −16 %, worth that × 84,000 = −16,000 USD (= face × r).
    resolved = resolve(parse_book({
        "as_of": "2026-11-24T08:00:00Z", "instruments": INSTRUMENTS[:1],
        "market": {"index": {"BTC": 100000.0, "USDC": 1.0}},
        "accounts": [{"id": "x", "mode": "portfolio", "collateral": {"USDC": 50000.0},
                      "positions": [{"instrument": "PERP", "quantity": 10000, "entry_price": 100000}]}],
    }))

    requirements = margin(resolved, PROFILE)
    state = account_state(resolved, requirements)

    assert resolved.assets[int(requirements.margin_asset[0])] == "USD"
    assert requirements.components["worst_case"][0] == pytest.approx(16000.0, rel=1e-12)
    # roll shock: |q| 1 BTC × 0.01 × 100,000 USD
    assert requirements.components["roll_shock"][0] == pytest.approx(1000.0, rel=1e-12)
    assert state.equity[0] == pytest.approx(50000.0)

"""Strategy-based margin: the exact pairing against a greedy one, and properties (models/strategy_based.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.book import resolve
from marginkit.io.book_file import parse_book
from marginkit.models.strategy_based import margin
from marginkit.models.strategy_pairing import Pair, best_pairing
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
EXPIRY = "2026-12-18T21:00:00Z"
PROFILE = shipped_profile("cboe-finra")


def option(identifier: str, kind: str, strike: float) -> dict[str, Any]:
    return {"id": identifier, "type": "option", "option_type": kind, "strike": strike, "expiry": EXPIRY,
            "underlying": "XYZ", "quote": "USD", "settlement": "USD", "inverse": False, "contract_size": 100}


INSTRUMENTS = [
    {"id": "XYZ", "type": "spot", "underlying": "XYZ", "quote": "USD", "settlement": "USD", "inverse": False,
     "contract_size": 1},
    option("C95", "call", 95), option("C100", "call", 100), option("C105", "call", 105),
    option("P95", "put", 95), option("P100", "put", 100), option("P105", "put", 105),
]
MARKS = {"C95": 7.5, "C100": 5.0, "C105": 3.0, "P95": 2.4, "P100": 4.6, "P105": 7.7}


def requirements(positions: list[dict[str, Any]]) -> Any:
    positions = [p for p in positions if p["quantity"] != 0]
    spec = parse_book({"as_of": AS_OF, "instruments": INSTRUMENTS,
                       "market": {"index": {"XYZ": 100.0}, "marks": MARKS},
                       "accounts": [{"id": "c", "mode": "cross", "collateral": {"USD": 1e6}, "positions": positions}]})
    return margin(resolve(spec), PROFILE)


def leg(instrument: str, quantity: float) -> dict[str, Any]:
    price = 100.0 if instrument == "XYZ" else MARKS[instrument]
    return {"instrument": instrument, "quantity": quantity, "entry_price": price}


def greedy_total(available: np.ndarray, standalone: np.ndarray, pairs: list[Pair]) -> float:
    """A greedy pass: take pairs in the order given (spreads first), each as many contracts as still free."""
    left = available.astype(float).copy()
    total = float(np.dot(available, standalone))
    for pair in pairs:
        shares = pair.shares_per_contract or 1.0
        count = min(left[pair.first], left[pair.second] / shares)
        saving = pair.requirement - standalone[pair.first] - standalone[pair.second] * shares
        if count > 0 and saving < 0:
            left[pair.first] -= count
            left[pair.second] -= count * shares
            total += count * saving
    return total


def test_exact_pairing_beats_a_greedy_pass() -> None:
    # Long 100 shares at 100, short 1 C100 (mark 5), long 1 C105 (mark 3). Per contract (× 100):
    #   standalone: stock 50 % × 100 × 100 = 5,000; naked C100 max(20 % × 10,000 − 0, 10 % × 10,000) = 2,000;
    #   long C105 paid in full 300.
    #   vertical C105/C100 (long strike above short): (105 − 100 + 3 − 5) × 100 = 300
    #   covered call stock/C100: 5,000 − 500 = 4,500
    # Greedy, spreads first: 300 (spread) + 5,000 (stock alone) = 5,300.
    # Exact: covered call 4,500 + long C105 300 = 4,800.
    available = np.array([1.0, 1.0, 100.0])  # C100 short, C105 long, shares
    standalone = np.array([2000.0, 300.0, 50.0])
    pairs = [Pair("vertical_spread", 1, 0, 300.0), Pair("covered_call", 0, 2, 4500.0, 100.0)]

    greedy = greedy_total(available, standalone, pairs)
    exact = best_pairing(available, standalone, pairs, integral=True)
    whole_book = requirements([leg("XYZ", 100), leg("C100", -1), leg("C105", 1)])

    assert greedy == pytest.approx(5300.0)
    assert exact.total == pytest.approx(4800.0)
    assert whole_book.initial_margin[0] == pytest.approx(4800.0)
    assert whole_book.explanations[0]["strategies"][0]["strategy"] == "covered_call"


def test_short_straddle_takes_the_greater_side_plus_the_other_premium() -> None:
    # short 1 C100 (5.00) + short 1 P100 (4.60), stock 100: naked nets are 2,000 each (20 % × 10,000);
    # gross call 2,500 ≥ gross put 2,460 → gross = 2,500 + 460 = 2,960; net of both premiums 960: 2,000.
    result = requirements([leg("C100", -1), leg("P100", -1)])

    assert result.components["venue_initial_margin"][0] == pytest.approx(2960.0)
    assert result.initial_margin[0] == pytest.approx(2000.0)


OPTIONS = ["C95", "C100", "C105", "P95", "P100", "P105"]
quantities = st.lists(st.integers(min_value=-5, max_value=5), min_size=6, max_size=6)


@settings(max_examples=40, deadline=None)
@given(quantities, st.integers(min_value=-3, max_value=3), st.integers(min_value=2, max_value=4))
def test_option_requirements_are_homogeneous_of_degree_one(counts: list[int], lots: int, scale: int) -> None:
    # Scaling every quantity by k scales the optimal pairing and every charge by k. Stock comes in round lots of
    # 100 shares (one contract's deliverable): an odd lot cannot cover a contract, so 25 shares × 4 would newly
    # cover one, a real discontinuity of the rules rather than of the model.
    book = [leg(o, q) for o, q in zip(OPTIONS, counts, strict=True)] + [leg("XYZ", 100 * lots)]
    scaled = [leg(p["instrument"], p["quantity"] * scale) for p in book]

    assert requirements(scaled).initial_margin[0] == pytest.approx(scale * requirements(book).initial_margin[0],
                                                                    rel=1e-9, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(OPTIONS), st.integers(min_value=1, max_value=9))
def test_a_long_option_requires_its_mark_value(instrument: str, contracts: int) -> None:
    # paid in full: contracts × 100 × mark
    result = requirements([leg(instrument, contracts)])

    assert result.initial_margin[0] == pytest.approx(contracts * 100 * MARKS[instrument])


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["C95", "C100", "C105"]), st.integers(min_value=1, max_value=5))
def test_a_covered_call_never_needs_more_than_stock_plus_naked_call(call: str, contracts: int) -> None:
    stock = requirements([leg("XYZ", 100 * contracts)]).initial_margin[0]
    naked = requirements([leg(call, -contracts)]).initial_margin[0]

    covered = requirements([leg("XYZ", 100 * contracts), leg(call, -contracts)]).initial_margin[0]

    assert covered <= stock + naked + 1e-9


@settings(max_examples=60, deadline=None)
@given(quantities, st.sampled_from(OPTIONS), st.integers(min_value=1, max_value=3))
def test_adding_a_long_option_never_raises_the_requirement_beyond_its_premium(
        counts: list[int], extra: str, contracts: int) -> None:
    book = [leg(o, q) for o, q in zip(OPTIONS, counts, strict=True)]
    merged = {p["instrument"]: p["quantity"] for p in book}
    merged[extra] = merged[extra] + contracts

    before = requirements(book).initial_margin[0]
    after = requirements([leg(o, q) for o, q in merged.items()]).initial_margin[0]

    assert after <= before + contracts * 100 * MARKS[extra] + 1e-6

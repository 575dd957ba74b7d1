"""deribit-standard: properties and settings (models/deribit_standard.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.book import resolve
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models.deribit_standard import margin
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
STRIKES = [80000.0, 95000.0, 100000.0, 120000.0]


def book(quantities: list[float], kinds: list[str], marks: list[float]) -> Any:
    instruments = [{"id": f"O{i}", "type": "option", "option_type": kind, "strike": STRIKES[i],
                    "expiry": "2026-12-26T08:00:00Z", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
                    "inverse": True, "contract_size": 1} for i, kind in enumerate(kinds)]
    positions = [{"instrument": f"O{i}", "quantity": q, "entry_price": marks[i]}
                 for i, q in enumerate(quantities) if q != 0]
    return resolve(parse_book({
        "as_of": AS_OF, "instruments": instruments,
        "market": {"index": {"BTC": 100000.0}, "marks": {f"O{i}": m for i, m in enumerate(marks)}},
        "accounts": [{"id": "t", "mode": "cross", "collateral": {"BTC": 10.0}, "positions": positions}],
    }))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=4, max_size=4),
    st.lists(st.sampled_from(["call", "put"]), min_size=4, max_size=4),
    st.lists(st.floats(min_value=0.0, max_value=0.3, allow_nan=False), min_size=4, max_size=4),
    st.floats(min_value=0.1, max_value=20.0),
)
def test_option_requirements_are_homogeneous_of_degree_one(quantities: list[float], kinds: list[str],
                                                           marks: list[float], scale: float) -> None:
    profile = shipped_profile("deribit-standard-2022-01-11")

    base = margin(book(quantities, kinds, marks), profile)
    scaled = margin(book([q * scale for q in quantities], kinds, marks), profile)

    assert scaled.initial_margin[0] == pytest.approx(scale * base.initial_margin[0], rel=1e-12, abs=1e-12)
    assert scaled.maintenance_margin[0] == pytest.approx(scale * base.maintenance_margin[0], rel=1e-12, abs=1e-12)


def test_long_option_without_loan_value_requires_its_mark_value() -> None:
    # long 2 calls marked 0.05 BTC: with loan value nothing is required; without it, 2 × 0.05 = 0.1 BTC
    shipped = shipped_profile("deribit-standard-2022-01-11")
    record: dict[str, Any] = {"model": shipped.model, "name": "no-loan", "version": "t", "source": "t",
                              "parameters": {**shipped.parameters, "defaults": {"long_option_loan_value": False}}}
    resolved = book([2, 0, 0, 0], ["call", "call", "call", "call"], [0.05, 0.01, 0.01, 0.01])

    with_loan = margin(resolved, shipped)
    without = margin(resolved, parse_profile(record))

    assert with_loan.initial_margin[0] == 0.0
    assert without.initial_margin[0] == pytest.approx(0.1, abs=1e-15)
    assert without.components["venue_initial_margin"][0] == 0.0

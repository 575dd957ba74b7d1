"""span: components computed by hand, the hedged-pair property, refusals and parameters (models/span.py).

Method: shared/reference/span.md (classic SPAN); every expected value's arithmetic is in the comments.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.book import Book, resolve
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile, parse_profile
from marginkit.models import DEFAULT_PROFILES, MODELS
from marginkit.models.span import compute_risk_arrays, margin
from marginkit.models.span_parameters import DEFAULT_DELTA_POINTS, SpanParameters
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
RATIOS = {"speculator": 1.10, "hedger": 1.00, "member": 1.00}
# days to expiry from AS_OF
IN_5_DAYS, IN_20_DAYS, IN_30_DAYS = "2026-11-29T08:00:00Z", "2026-12-14T08:00:00Z", "2026-12-24T08:00:00Z"
IN_60_DAYS, IN_120_DAYS = "2027-01-23T08:00:00Z", "2027-03-24T08:00:00Z"


def future(identifier: str, expiry: str, underlying: str = "X", size: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"id": identifier, "type": "future", "underlying": underlying, "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": size, "expiry": expiry, **extra}


def option(identifier: str, kind: str, strike: float, expiry: str = IN_30_DAYS, underlying: str = "X",
           size: float = 1.0) -> dict[str, Any]:
    return {"id": identifier, "type": "option", "option_type": kind, "strike": strike, "expiry": expiry,
            "underlying": underlying, "quote": "USD", "settlement": "USD", "inverse": False, "contract_size": size}


def make_book(instruments: list[dict[str, Any]], positions: list[dict[str, Any]] | list[list[dict[str, Any]]],
              index: dict[str, float] | None = None, marks: dict[str, float] | None = None,
              vols: dict[str, float] | None = None, **account: Any) -> Book:
    """One account per positions list (a flat list is one account); every entry price 1."""
    lists = positions if positions and isinstance(positions[0], list) else [positions]
    accounts = [{"id": f"a{k}", "mode": "cross", "collateral": {"USD": 1e6}, **account,
                 "positions": [{"entry_price": 1.0, **p} for p in rows]} for k, rows in enumerate(lists)]
    market: dict[str, Any] = {"index": index or {"X": 100.0}, "marks": marks or {}}
    if vols:
        market["vols"] = vols
    return resolve(parse_book({"as_of": AS_OF, "instruments": instruments, "market": market, "accounts": accounts}))


def span_profile(commodities: dict[str, Any], **parameters: Any) -> Profile:
    return parse_profile({"model": "span", "name": "test", "version": "t", "source": "written for this test",
                          "parameters": {"account_class_ratios": RATIOS, "combined_commodities": commodities,
                                         **parameters}})


def commodity(rate: float = 0.1, **extra: Any) -> dict[str, Any]:
    return {"underlyings": ["X"], "scan_tiers": [{"price_scan_rate": rate, "volatility_scan_range": 0.15}], **extra}


def black(forward: float, strike: float, years: float, sigma: float, call: bool) -> float:
    """Black-76 undiscounted, written out independently of marginkit.pricing."""
    if years <= 0 or sigma <= 0:
        return max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    s = sigma * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    if call:
        return forward * cdf(d1) - strike * cdf(d1 - s)
    return strike * cdf(s - d1) - forward * cdf(-d1)


CLASSIC = [(0, 1), (0, -1), (1 / 3, 1), (1 / 3, -1), (-1 / 3, 1), (-1 / 3, -1), (2 / 3, 1), (2 / 3, -1),
           (-2 / 3, 1), (-2 / 3, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]


def expected_option_losses(F: float, K: float, days: float, sigma: float, psr: float, vsr: float,
                           call: bool) -> list[float]:
    """Loss of one long option per scan point: −(V(F + p·PSR, σ + v·VSR, T − 1 day) − V(F, σ, T)) × weight."""
    base = black(F, K, days / 365, sigma, call)
    ahead = (days - 1) / 365
    losses = [-(black(F + p * psr, K, ahead, sigma + v * vsr, call) - base) for p, v in CLASSIC]
    return losses + [-(black(F + m * psr, K, ahead, sigma, call) - base) * 0.35 for m in (2.0, -2.0)]


# --- scan risk ------------------------------------------------------------------------------------------------------


def test_futures_outright_scan_and_account_class_ratio() -> None:
    # long 3 futures at 100,000, PSR 10 % = 10,000 per contract: worst point 13 (−1 PSR): 3 × 10,000 = 30,000;
    # extreme −2 PSR × 0.35 = 0.7 × 30,000 = 21,000 is smaller. Initial: speculator 1.10 × 30,000 = 33,000, hedger
    # 1.00 × 30,000
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 3}], marks={"F": 100000.0},
                     index={"X": 100000.0})
    profile = span_profile({"X": commodity()})

    speculator = margin(book, profile)
    hedger = margin(book, profile, account_class=["hedger"])

    assert speculator.components["scan_risk"][0] == pytest.approx(30000.0, rel=1e-12)
    assert speculator.maintenance_margin[0] == pytest.approx(30000.0, rel=1e-12)
    assert speculator.initial_margin[0] == pytest.approx(33000.0, rel=1e-12)
    assert hedger.initial_margin[0] == pytest.approx(30000.0, rel=1e-12)
    assert speculator.explanations is not None
    assert speculator.explanations[0]["worst_scenario"] == {
        "combined_commodity": "X", "scenario": 13, "price_scan_move": -1.0, "vol_move": "up",
        "loss": pytest.approx(30000.0, rel=1e-12)}


@settings(max_examples=60, deadline=None)
@given(
    quantity=st.floats(min_value=0.001, max_value=1e5),
    price=st.floats(min_value=0.01, max_value=1e6),
    rate=st.floats(min_value=0.001, max_value=0.5),
    size=st.floats(min_value=0.001, max_value=1000.0),
    same_contract=st.booleans(),
)
def test_scan_risk_of_a_perfectly_hedged_future_pair_is_zero(quantity: float, price: float, rate: float,
                                                              size: float, same_contract: bool) -> None:
    # long q and short q of identical futures (two ids with the same terms, or one contract's hedge-mode legs):
    # Σ q·RA_j = q·RA_j − q·RA_j = 0 at every point, so scan risk 0 and, one tier, no spread charge either
    instruments = [future("A", IN_30_DAYS, size=size), future("B", IN_30_DAYS, size=size)]
    if same_contract:
        positions = [{"instrument": "A", "quantity": quantity, "position_side": "long"},
                     {"instrument": "A", "quantity": -quantity, "position_side": "short"}]
        book = make_book(instruments, positions, marks={"A": price, "B": price}, position_mode="hedge")
    else:
        positions = [{"instrument": "A", "quantity": quantity}, {"instrument": "B", "quantity": -quantity}]
        book = make_book(instruments, positions, marks={"A": price, "B": price})

    result = margin(book, span_profile({"X": commodity(rate)}))

    assert result.components["scan_risk"][0] == 0.0
    assert result.maintenance_margin[0] == 0.0


def test_scan_tiers_are_scanned_separately() -> None:
    # +1 near (30 days) and −1 far (120 days), both at 100 with PSR 10: one tier nets to 0; two tiers scan
    # 10 + 10 = 20 as if uncorrelated
    instruments = [future("N", IN_30_DAYS), future("L", IN_120_DAYS)]
    positions = [{"instrument": "N", "quantity": 1}, {"instrument": "L", "quantity": -1}]
    book = make_book(instruments, positions, marks={"N": 100.0, "L": 100.0})
    tiers = [{"max_days": 60, "price_scan_rate": 0.1}, {"min_days": 60, "price_scan_rate": 0.1}]

    one = margin(book, span_profile({"X": commodity()}))
    two = margin(book, span_profile({"X": {"underlyings": ["X"], "scan_tiers": tiers}}))

    assert one.components["scan_risk"][0] == 0.0
    assert two.components["scan_risk"][0] == pytest.approx(20.0, rel=1e-12)


def test_option_risk_array_revalues_by_black_76_one_day_ahead() -> None:
    # short 2 at-the-money calls, F = index 100,000 (no future in the book), K = 100,000, 30 days, σ 60 %, PSR 10 %
    # = 10,000, VSR 0.15: loss_j of one long call as in expected_option_losses; scan = max_j(−2 × loss_j)
    instruments = [option("C", "call", 100000.0)]
    book = make_book(instruments, [{"instrument": "C", "quantity": -2}], index={"X": 100000.0}, vols={"C": 0.6})
    losses = expected_option_losses(100000.0, 100000.0, 30, 0.6, 10000.0, 0.15, True)
    premium = black(100000.0, 100000.0, 30 / 365, 0.6, True)

    result = margin(book, span_profile({"X": commodity()}))

    scan = max(-2 * loss for loss in losses)
    assert result.components["scan_risk"][0] == pytest.approx(scan, rel=1e-9)
    # NOV = −2 × premium; venue requirement = scan − NOV = scan + 2 × premium; on the equity footing: scan
    assert result.components["net_option_value"][0] == pytest.approx(-2 * premium, rel=1e-9)
    assert result.components["venue_maintenance_margin"][0] == pytest.approx(scan + 2 * premium, rel=1e-9)
    assert result.maintenance_margin[0] == pytest.approx(scan, rel=1e-9)


def test_computed_arrays_and_composite_delta_against_independent_formulas() -> None:
    # a put: K 110, F 100, 30 days, σ 0.5, PSR 12, VSR 0.1; composite delta = Σ w_k·∂V/∂F(F + p_k·12, σ, 29 days)
    # / Σ w_k with ∂put/∂F = N(d1) − 1; a future's composite delta = contract_size / delta_unit = 2 / 1
    parameters = SpanParameters.model_validate({"account_class_ratios": RATIOS, "combined_commodities": {"X": {}}})
    arrays = compute_risk_arrays(
        price=np.array([100.0, 100.0]), strike=np.array([110.0, 0.0]), years=np.array([30 / 365, 30 / 365]),
        is_call=np.array([False, False]), is_option=np.array([True, False]), volatility=np.array([0.5, 0.0]),
        contract_size=np.array([1.0, 2.0]), usd_per_quote=np.array([1.0, 1.0]),
        price_scan_range=np.array([12.0, 12.0]), volatility_scan_range=np.array([0.1, 0.1]),
        delta_unit=np.array([1.0, 1.0]), parameters=parameters,
    )

    expected = expected_option_losses(100.0, 110.0, 30, 0.5, 12.0, 0.1, False)
    np.testing.assert_allclose(arrays.losses[0], expected, rtol=1e-9, atol=1e-12)
    # the future: loss_j = −p_j × 12 × 2, the extremes × 0.35: point 11 (+1) −24, point 15 (+2) −2 × 12 × 2 × 0.35
    assert arrays.losses[1, 10] == pytest.approx(-24.0, rel=1e-12)
    assert arrays.losses[1, 14] == pytest.approx(-16.8, rel=1e-12)
    s = 0.5 * math.sqrt(29 / 365)
    weights = [p.weight for p in DEFAULT_DELTA_POINTS]
    deltas = [0.5 * (1 + math.erf((math.log((100 + p.price * 12) / 110) + s * s / 2) / s / math.sqrt(2))) - 1
              for p in DEFAULT_DELTA_POINTS]
    weighted = sum(w * d for w, d in zip(weights, deltas, strict=True)) / sum(weights)
    assert arrays.composite_delta[0] == pytest.approx(weighted, rel=1e-9)
    assert arrays.composite_delta[1] == 2.0


def test_default_delta_weights_are_the_normal_density_at_whole_standard_deviations() -> None:
    # PSR = 3σ: the points 0, ±1/3, ±2/3, ±1 PSR sit at 0, ±1σ, ±2σ, ±3σ; φ(0) = 0.398942, φ(1) = 0.241971
    by_price = {round(p.price * 3): p.weight for p in DEFAULT_DELTA_POINTS}

    assert by_price[0] == pytest.approx(0.398942, abs=1e-6)
    assert by_price[1] == pytest.approx(0.241971, abs=1e-6) and by_price[-1] == by_price[1]
    assert by_price[3] == pytest.approx(0.004432, abs=1e-6)


# --- spreads, delivery, inter-commodity ------------------------------------------------------------------------------

THREE_TIERS = [{"tier": 1, "max_days": 31}, {"tier": 2, "min_days": 31, "max_days": 92}, {"tier": 3, "min_days": 92}]
THREE_MONTHS = [future("F1", IN_20_DAYS), future("F2", IN_60_DAYS), future("F3", IN_120_DAYS)]
SAME_PRICE = {"F1": 100.0, "F2": 100.0, "F3": 100.0}


def spread(priority: int, rate: float, first: int, second: int, ratios: tuple[float, float] = (1, 1)) -> dict[str, Any]:
    return {"priority": priority, "rate": rate, "legs": [{"tier": first, "ratio": ratios[0], "side": "A"},
                                                         {"tier": second, "ratio": ratios[1], "side": "B"}]}


def test_intra_commodity_spreads_in_priority_order() -> None:
    # +2 F1 (tier 1), −1 F2 (tier 2), −1 F3 (tier 3), all at 100 with PSR 10: scan max_j 0·p_j = 0.
    # priority 1, 1v2 at 100: min(2, 1) = 1 spread → 100, tier 1 left +1; priority 2, 1v3 at 150: 1 spread → 150;
    # priority 3, 2v3 at 70: tiers 2 and 3 are both 0 → 0. Intra charge 100 + 150 = 250
    positions = [{"instrument": "F1", "quantity": 2}, {"instrument": "F2", "quantity": -1},
                 {"instrument": "F3", "quantity": -1}]
    spreads = [spread(3, 70, 2, 3), spread(1, 100, 1, 2), spread(2, 150, 1, 3)]

    result = margin(make_book(THREE_MONTHS, positions, marks=SAME_PRICE),
                    span_profile({"X": commodity(intra_tiers=THREE_TIERS, intra_spreads=spreads)}))

    assert result.components["scan_risk"][0] == 0.0
    assert result.components["intra_commodity_charge"][0] == pytest.approx(250.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(250.0, rel=1e-12)


def test_intra_commodity_spread_legs_in_their_ratio() -> None:
    # +5 F1, −2 F2, a 2:1 spread at 100: min(5 / 2, 2 / 1) = 2 spreads → 200, consuming 4 of tier 1 and 2 of tier 2;
    # scan: net +3 futures × PSR 10 = 30 at point 13; total 230
    positions = [{"instrument": "F1", "quantity": 5}, {"instrument": "F2", "quantity": -2}]
    spreads = [spread(1, 100, 1, 2, ratios=(2, 1))]

    result = margin(make_book(THREE_MONTHS, positions, marks=SAME_PRICE),
                    span_profile({"X": commodity(intra_tiers=THREE_TIERS, intra_spreads=spreads)}))

    assert result.components["intra_commodity_charge"][0] == pytest.approx(200.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(230.0, rel=1e-12)


def test_delivery_month_charge() -> None:
    # +3 S (5 days: delivery month, tier 1), −1 F2 (60 days, tier 2), all at 100, PSR 10: scan +2 × 10 = 20;
    # spread 1v2 at 100: 1 spread → 100, consuming 1 delta of tier 1, which holds the spot month;
    # delivery: 40 × 1 consumed + 100 × (3 − 1) outright = 240; total 20 + 100 + 240 = 360
    instruments = [future("S", IN_5_DAYS), future("F2", IN_60_DAYS)]
    positions = [{"instrument": "S", "quantity": 3}, {"instrument": "F2", "quantity": -1}]
    parameters = commodity(intra_tiers=THREE_TIERS, intra_spreads=[spread(1, 100, 1, 2)],
                           delivery=[{"within_days": 7, "spread_rate": 40, "outright_rate": 100}])

    result = margin(make_book(instruments, positions, marks={"S": 100.0, "F2": 100.0}),
                    span_profile({"X": parameters}))

    assert result.components["delivery_charge"][0] == pytest.approx(240.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(360.0, rel=1e-12)


def two_commodities(x: dict[str, Any], y: dict[str, Any], rate: float = 0.5) -> Profile:
    legs = [{"combined_commodity": "X", "ratio": 1, "side": "A"}, {"combined_commodity": "Y", "ratio": 1, "side": "B"}]
    return span_profile({"X": x, "Y": y}, inter_spreads=[{"priority": 1, "rate": rate, "legs": legs}])


def test_delivery_month_delta_is_left_out_of_inter_commodity_spreads() -> None:
    # +1 X spot month (5 days) against −1 Y: X's delta outside the delivery month is 0, so no spread forms;
    # scan 10 + 10, delivery outright 100 × 1: 120
    instruments = [future("XS", IN_5_DAYS), future("Y1", IN_60_DAYS, underlying="Y")]
    positions = [{"instrument": "XS", "quantity": 1}, {"instrument": "Y1", "quantity": -1}]
    x = commodity(delivery=[{"within_days": 7, "outright_rate": 100}])
    y = {"underlyings": ["Y"], "scan_tiers": [{"price_scan_rate": 0.1}]}

    result = margin(make_book(instruments, positions, index={"X": 100.0, "Y": 100.0},
                              marks={"XS": 100.0, "Y1": 100.0}), two_commodities(x, y))

    assert result.components["inter_commodity_credit"][0] == 0.0
    assert result.maintenance_margin[0] == pytest.approx(120.0, rel=1e-12)


# X: a long contract loses 2 with no price move (time decay) and 10 per PSR down; Y: a future with PSR 20.
X_ARRAY = [2 - 10 * p for p, _ in CLASSIC] + [(2 - 10 * m) * 0.35 for m in (2.0, -2.0)]
Y_ARRAY = [-20 * p for p, _ in CLASSIC] + [-20 * m * 0.35 for m in (2.0, -2.0)]


@pytest.mark.parametrize(
    ("method", "credit"),
    [
        # price risk X: mean of points 13 and 14 (12, 12) − time risk mean(2, 2) = 10, ÷ |delta 1| = 10; Y: 20.
        # credit 0.5 × 10 × 1 + 0.5 × 20 × 1 = 15
        ("price_risk", 15.0),
        # X's scan range per delta unit 12 (given): 0.5 × 12 + 0.5 × 20 = 16
        ("scan_range", 16.0),
        # min(10, 12) = 10: 15
        ("capped", 15.0),
    ],
)
def test_weighted_futures_price_risk_methods(method: str, credit: float) -> None:
    # long 1 X, short 1 Y: scan 12 (X, point 13) + 20 (Y, point 11) = 32; requirement 32 − credit
    instruments = [future("XF", IN_60_DAYS), future("YF", IN_60_DAYS, underlying="Y")]
    positions = [{"instrument": "XF", "quantity": 1}, {"instrument": "YF", "quantity": -1}]
    x = {"underlyings": ["X"], "weighted_futures_price_risk": method,
         "risk_arrays": {"XF": {"losses": X_ARRAY, "composite_delta": 1.0, "price_scan_range": 12.0}}}
    y = {"underlyings": ["Y"], "weighted_futures_price_risk": method,
         "risk_arrays": {"YF": {"losses": Y_ARRAY, "composite_delta": 1.0, "price_scan_range": 20.0}}}

    result = margin(make_book(instruments, positions, index={"X": 100.0, "Y": 100.0},
                              marks={"XF": 100.0, "YF": 100.0}), two_commodities(x, y))

    assert result.components["scan_risk"][0] == pytest.approx(32.0, rel=1e-12)
    assert result.components["inter_commodity_credit"][0] == pytest.approx(credit, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(32.0 - credit, rel=1e-12)


def test_same_sign_deltas_form_no_inter_commodity_spread() -> None:
    # long X and long Y: legs A and B need opposite signs, so no credit: 10 + 10 = 20
    instruments = [future("XF", IN_60_DAYS), future("YF", IN_60_DAYS, underlying="Y")]
    positions = [{"instrument": "XF", "quantity": 1}, {"instrument": "YF", "quantity": 1}]
    y = {"underlyings": ["Y"], "scan_tiers": [{"price_scan_rate": 0.1}]}

    result = margin(make_book(instruments, positions, index={"X": 100.0, "Y": 100.0},
                              marks={"XF": 100.0, "YF": 100.0}), two_commodities(commodity(), y))

    assert result.components["inter_commodity_credit"][0] == 0.0
    assert result.maintenance_margin[0] == pytest.approx(20.0, rel=1e-12)


# --- short option minimum and net option value ---------------------------------------------------------------------


def test_short_option_minimum_floors_commodity_risk() -> None:
    # short 3 far out-of-the-money calls (K 300) and 1 put (K 20), F 100, 30 days, σ 50 %: their scan risk is tiny;
    # SOM = 50 × max(3 calls, 1 put) = 150, so commodity risk = max(scan, 150) = 150
    instruments = [option("C", "call", 300.0), option("P", "put", 20.0)]
    positions = [{"instrument": "C", "quantity": -3}, {"instrument": "P", "quantity": -1}]
    book = make_book(instruments, positions, vols={"C": 0.5, "P": 0.5})

    result = margin(book, span_profile({"X": commodity(short_option_minimum=[{"rate": 50}])}))

    assert result.components["scan_risk"][0] < 1.0
    assert result.components["short_option_minimum"][0] == 150.0
    assert result.components["commodity_risk"][0] == 150.0
    assert result.maintenance_margin[0] == 150.0


def test_long_option_costs_its_premium_only() -> None:
    # long 1 call: its scan risk is at most its value, so SPAN requirement max(0, risk − NOV) = 0 and, on the
    # equity footing (equity counts NOV), the requirement is NOV itself; initial max(0, 1.10 × (risk − NOV)) = 0
    instruments = [option("C", "call", 100.0)]
    book = make_book(instruments, [{"instrument": "C", "quantity": 1}], vols={"C": 0.6})
    premium = black(100.0, 100.0, 30 / 365, 0.6, True)

    result = margin(book, span_profile({"X": commodity()}))

    assert result.components["net_option_value"][0] == pytest.approx(premium, rel=1e-9)
    assert 0 < result.components["scan_risk"][0] < premium
    assert result.components["venue_maintenance_margin"][0] == 0.0
    assert result.components["venue_initial_margin"][0] == 0.0
    assert result.maintenance_margin[0] == pytest.approx(premium, rel=1e-9)
    assert result.initial_margin[0] == pytest.approx(premium, rel=1e-9)


def test_an_option_uses_the_mark_of_a_future_of_its_expiry_as_forward() -> None:
    # the future of the option's expiry trades at 104 (index 100): the at-the-money call is revalued on F = 104;
    # short 1 call: scan = max_j −loss_j with the losses at F 104
    instruments = [option("C", "call", 104.0), future("F", IN_30_DAYS)]
    book = make_book(instruments, [{"instrument": "C", "quantity": -1}], marks={"F": 104.0,
                     "C": black(104.0, 104.0, 30 / 365, 0.5, True)})
    losses = expected_option_losses(104.0, 104.0, 30, 0.5, 10.4, 0.15, True)

    result = margin(book, span_profile({"X": commodity()}))

    assert result.components["scan_risk"][0] == pytest.approx(max(-loss for loss in losses), rel=1e-9)


def test_accounts_are_margined_independently() -> None:
    # account 0: long 3 futures (3 × 10 = 30); account 1: short 1 (10)
    book = make_book([future("F", IN_30_DAYS)], [[{"instrument": "F", "quantity": 3}],
                                                  [{"instrument": "F", "quantity": -1}]], marks={"F": 100.0})

    result = margin(book, span_profile({"X": commodity()}))

    np.testing.assert_allclose(result.maintenance_margin, [30.0, 10.0], rtol=1e-12)
    assert result.explanations is not None
    assert [e["worst_scenario"]["scenario"] for e in result.explanations] == [13, 11]


# --- the shipped profile -------------------------------------------------------------------------------------------


def test_span_crypto_profile_margins_a_btc_future() -> None:
    # long 1 BTC future at 95,000: PSR 0.126 × 95,000 = 11,970; speculator initial 1.10 × 11,970 = 13,167
    profile = shipped_profile("span-crypto")
    instruments = [future("BTC-25DEC26", "2026-12-25T08:00:00Z", underlying="BTC")]
    book = make_book(instruments, [{"instrument": "BTC-25DEC26", "quantity": 1}], index={"BTC": 95000.0},
                     marks={"BTC-25DEC26": 95000.0})

    result = margin(book, profile)

    assert MODELS["span"] is margin and DEFAULT_PROFILES["span"] == "span-crypto"
    assert result.maintenance_margin[0] == pytest.approx(11970.0, rel=1e-12)
    assert result.initial_margin[0] == pytest.approx(13167.0, rel=1e-12)


def test_span_crypto_btc_eth_spread_earns_a_credit() -> None:
    # long 1 BTC (95,000 × 0.126 = 11,970) and short 29 ETH (29 × 3,300 × 0.157 = 15,025.0... = 15,024.9):
    # futures' price risk ÷ delta = PSR per coin; one 1:29 spread at 50 %: 0.5 × 11,970 + 0.5 × 15,024.9
    profile = shipped_profile("span-crypto")
    instruments = [future("BTC-F", "2027-01-29T08:00:00Z", underlying="BTC"),
                   future("ETH-F", "2027-01-29T08:00:00Z", underlying="ETH")]
    book = make_book(instruments, [{"instrument": "BTC-F", "quantity": 1}, {"instrument": "ETH-F", "quantity": -29}],
                     index={"BTC": 95000.0, "ETH": 3300.0}, marks={"BTC-F": 95000.0, "ETH-F": 3300.0})

    result = margin(book, profile)

    eth = 29 * 3300 * 0.157
    assert result.components["scan_risk"][0] == pytest.approx(11970.0 + eth, rel=1e-12)
    assert result.components["inter_commodity_credit"][0] == pytest.approx(0.5 * (11970.0 + eth), rel=1e-12)


# --- refusals and bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "reason"),
    [
        ({"id": "P", "type": "perpetual", "underlying": "X", "quote": "USD", "settlement": "USD", "inverse": False,
          "contract_size": 1}, "not spot or perpetuals"),
        ({"id": "P", "type": "spot", "underlying": "X", "quote": "USD", "settlement": "USD", "inverse": False,
          "contract_size": 1}, "not spot or perpetuals"),
        ({"id": "P", "type": "future", "underlying": "X", "quote": "USD", "settlement": "X", "inverse": True,
          "contract_size": 10, "expiry": IN_30_DAYS}, "coin-settled"),
        (future("P", IN_30_DAYS, underlying="SOL"), "no combined commodity"),
    ],
)
def test_uncovered_positions_are_refused_by_name(instrument: dict[str, Any], reason: str) -> None:
    book = make_book([future("F", IN_30_DAYS), instrument],
                     [{"instrument": "F", "quantity": 1}, {"instrument": "P", "quantity": 1}],
                     index={"X": 100.0, "SOL": 100.0}, marks={"F": 100.0, "P": 100.0})

    with pytest.raises(ModelRefusal) as refusal:
        margin(book, span_profile({"X": commodity()}))

    assert refusal.value.field == "accounts[0].positions[1]"
    assert reason in str(refusal.value) and "(P)" in str(refusal.value)


def test_isolated_accounts_are_refused() -> None:
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 1}], marks={"F": 100.0},
                     mode="isolated")

    with pytest.raises(ModelRefusal, match="isolated"):
        margin(book, span_profile({"X": commodity()}))


def test_an_option_mark_without_implied_volatility_names_the_position() -> None:
    # a call struck at 50 on a forward of 100 marked 10 is below its intrinsic value 50
    book = make_book([option("C", "call", 50.0)], [{"instrument": "C", "quantity": -1}], marks={"C": 10.0})

    with pytest.raises(InputError, match="implied volatility") as error:
        margin(book, span_profile({"X": commodity()}))

    assert error.value.field == "accounts[0].positions[0]"


def test_a_contract_value_factor_that_disagrees_with_the_book_is_bad_input() -> None:
    arrays = {"F": {"losses": [0.0] * 16, "composite_delta": 1.0, "contract_value_factor": 5.0}}
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 1}], marks={"F": 100.0})

    with pytest.raises(InputError, match="contract value factor 5"):
        margin(book, span_profile({"X": {"underlyings": ["X"], "risk_arrays": arrays}}))


def test_an_unknown_account_class_is_bad_input() -> None:
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 1}], marks={"F": 100.0})

    with pytest.raises(InputError) as error:
        margin(book, span_profile({"X": commodity()}), account_class=["gambler"])

    assert error.value.field == "accounts[0].account_class"


def test_computing_an_array_needs_a_price_scan_range() -> None:
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 1}], marks={"F": 100.0})

    with pytest.raises(InputError) as error:
        margin(book, span_profile({"X": {"underlyings": ["X"]}}))

    assert error.value.field == "parameters.combined_commodities.X.scan_tiers[0].price_scan_rate"


@pytest.mark.parametrize(
    ("commodities", "extra", "field", "message"),
    [
        ({"X": commodity(colour="red")}, {}, "parameters.combined_commodities.X.colour", "unknown field"),
        ({"X": commodity(intra_spreads=[spread(1, 10, 1, 2)])}, {}, "parameters.combined_commodities.X",
         "tier 1 is not in intra_tiers"),
        ({"X": commodity()}, {"inter_spreads": [{"priority": 1, "rate": 0.5, "legs": [
            {"combined_commodity": "X", "ratio": 1, "side": "A"},
            {"combined_commodity": "Z", "ratio": 1, "side": "B"}]}]}, "parameters", "unknown combined commodity"),
        ({"X": commodity()}, {"account_class_ratios": {"speculator": 1.1}}, "parameters", "no ratio for hedger"),
        ({"X": {"underlyings": ["X"], "risk_arrays": {"F": {"losses": [1.0] * 15, "composite_delta": 1.0}}}}, {},
         "parameters.combined_commodities.X.risk_arrays.F.losses", "a risk array has 16 losses, not 15"),
    ],
)
def test_bad_parameters_name_the_key(commodities: dict[str, Any], extra: dict[str, Any], field: str,
                                     message: str) -> None:
    book = make_book([future("F", IN_30_DAYS)], [{"instrument": "F", "quantity": 1}], marks={"F": 100.0})

    with pytest.raises(InputError) as error:
        margin(book, span_profile(commodities, **extra))

    assert error.value.field == field
    assert message in error.value.message


def test_the_book_files_account_class_sets_the_initial_ratio() -> None:
    # resolve carries account_class from the book file: a hedger's initial = maintenance × 1.00, a
    # speculator's × 1.10 (CME advisories 2013 and 2015, the span-crypto profile's ratios)
    from marginkit.book import resolve as resolve_book
    from marginkit.io.book_file import parse_book as parse
    from marginkit.models.span import margin as span_margin
    from marginkit.profiles import shipped_profile as shipped

    def account(identifier: str, account_class: str) -> dict[str, object]:
        return {"id": identifier, "mode": "cross", "account_class": account_class, "collateral": {"USD": 1e6},
                "positions": [{"instrument": "BTC-FUT", "quantity": 1, "entry_price": 95000}]}

    spec = parse({
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [{"id": "BTC-FUT", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "USD",
                         "inverse": False, "contract_size": 1, "expiry": "2026-12-26T08:00:00Z"}],
        "market": {"index": {"BTC": 95000.0}, "marks": {"BTC-FUT": 95000.0}},
        "accounts": [account("hedger", "hedger"), account("speculator", "speculator")],
    })

    requirements = span_margin(resolve_book(spec), shipped("span-crypto"))

    hedger_ratio = requirements.initial_margin[0] / requirements.maintenance_margin[0]
    speculator_ratio = requirements.initial_margin[1] / requirements.maintenance_margin[1]
    assert hedger_ratio == pytest.approx(1.00, rel=1e-12)
    assert speculator_ratio == pytest.approx(1.10, rel=1e-12)

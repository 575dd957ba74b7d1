"""Published SPAN worked examples, through risk arrays (models/span.py).

Restated with their sources (shared/reference/span.md "Worked examples"; vectors `span.*` of
shared/vectors/ccp-and-validation.json); neither file is read here. Every figure goes through risk arrays and the
scenario kernel: examples 1 and 2 build futures whose computed arrays (PSR = price_scan_rate × price × size) give
the published outrights, example 3 gives the published synthetic array per long contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import Book, resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models.span import margin

AS_OF = "2026-11-24T08:00:00Z"
BUSHELS = 5000  # one grain future; delta_unit = 5,000 bushels, so a future's composite delta is 1 per contract
RATIOS = {"speculator": 1.0, "hedger": 1.0, "member": 1.0}


def future(identifier: str, underlying: str, expiry: str, size: float = BUSHELS) -> dict[str, Any]:
    return {"id": identifier, "type": "future", "underlying": underlying, "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": size, "expiry": expiry}


def make_book(instruments: list[dict[str, Any]], marks: dict[str, float], positions: list[dict[str, Any]],
              position_mode: str = "one-way") -> Book:
    index = {i["underlying"]: marks[i["id"]] for i in instruments}
    return resolve(parse_book({
        "as_of": AS_OF, "instruments": instruments, "market": {"index": index, "marks": marks},
        "accounts": [{"id": "a", "mode": "cross", "position_mode": position_mode, "collateral": {"USD": 1e6},
                      "positions": [{"entry_price": marks[p["instrument"]], **p} for p in positions]}],
    }))


def span_profile(parameters: dict[str, Any]) -> Any:
    return parse_profile({"model": "span", "name": "test", "version": "t", "source": "written for this test",
                          "parameters": {"account_class_ratios": RATIOS, **parameters}})


# --- Example 1 / span.inter_commodity_credit.corn_soy --------------------------------------------------------------
# CME Group, spread-calculation page (illustrative rates): corn vs soybeans 2:1, credit rate 55 %; outright corn
# 1,750, soybeans 2,500. Corn at 4.375 with PSR 8 %: 0.08 × 4.375 × 5,000 = 1,750; soybeans at 12.50 with 4 %:
# 0.04 × 12.50 × 5,000 = 2,500.
CORN_SOY_INSTRUMENTS = [future("ZC", "CORN", "2027-03-12T18:00:00Z"), future("ZS", "SOY", "2027-03-12T18:00:00Z")]
CORN_SOY_MARKS = {"ZC": 4.375, "ZS": 12.5}
CORN_SOY_PARAMETERS: dict[str, Any] = {
    "combined_commodities": {
        "CORN": {"underlyings": ["CORN"], "delta_unit": BUSHELS, "scan_tiers": [{"price_scan_rate": 0.08}]},
        "SOY": {"underlyings": ["SOY"], "delta_unit": BUSHELS, "scan_tiers": [{"price_scan_rate": 0.04}]},
    },
    "inter_spreads": [{"priority": 1, "rate": 0.55, "legs": [
        {"combined_commodity": "CORN", "ratio": 2, "side": "A"},
        {"combined_commodity": "SOY", "ratio": 1, "side": "B"}]}],
}


def test_corn_soy_outrights_come_from_the_risk_arrays() -> None:
    # one long corn: worst scenario 13 (price −1 PSR): loss 1,750; one long soybean: 2,500
    profile = span_profile(CORN_SOY_PARAMETERS)

    corn = margin(make_book(CORN_SOY_INSTRUMENTS, CORN_SOY_MARKS, [{"instrument": "ZC", "quantity": 1}]), profile)
    soy = margin(make_book(CORN_SOY_INSTRUMENTS, CORN_SOY_MARKS, [{"instrument": "ZS", "quantity": 1}]), profile)

    assert corn.components["scan_risk"][0] == pytest.approx(1750.0, rel=1e-12)
    assert soy.components["scan_risk"][0] == pytest.approx(2500.0, rel=1e-12)
    assert corn.explanations is not None and corn.explanations[0]["worst_scenario"]["scenario"] == 13


def test_corn_soy_inter_commodity_credit() -> None:
    # +2 corn, −1 soybeans: outright total 2 × 1,750 + 2,500 = 6,000; weighted futures price risk corn 3,500 / 2
    # = 1,750, soybeans 2,500 / 1; one spread: credit 0.55 × 1,750 × 2 + 0.55 × 2,500 × 1 = 1,925 + 1,375 = 3,300;
    # margin 6,000 − 3,300 = 2,700.
    book = make_book(CORN_SOY_INSTRUMENTS, CORN_SOY_MARKS,
                     [{"instrument": "ZC", "quantity": 2}, {"instrument": "ZS", "quantity": -1}])

    result = margin(book, span_profile(CORN_SOY_PARAMETERS))

    assert result.components["scan_risk"][0] == pytest.approx(6000.0, rel=1e-12)
    assert result.components["inter_commodity_credit"][0] == pytest.approx(3300.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(2700.0, rel=1e-12)
    assert result.explanations is not None
    rows = {r["combined_commodity"]: r for r in result.explanations[0]["combined_commodities"]}
    assert rows["CORN"]["inter_commodity_credit"] == pytest.approx(1925.0, rel=1e-12)
    assert rows["SOY"]["inter_commodity_credit"] == pytest.approx(1375.0, rel=1e-12)


# --- Example 2 / span.intra_commodity.months --------------------------------------------------------------------
# CME Group, spread-calculation page: outright month 2 = 500, month 3 = 500, month 4 = 750; intra charges 2v3 = 200,
# 2v4 = 50, 3v4 = 0; spread margin = (higher outright − lower outright) + intra charge. Futures at 5.00, 5.00 and
# 7.50 with PSR 2 %: 0.02 × 5.00 × 5,000 = 500 and 0.02 × 7.50 × 5,000 = 750; one scan tier, each month its own
# intra tier.
MONTH_INSTRUMENTS = [future("M2", "CORN", "2027-02-12T18:00:00Z"), future("M3", "CORN", "2027-03-12T18:00:00Z"),
                     future("M4", "CORN", "2027-04-14T18:00:00Z")]
MONTH_MARKS = {"M2": 5.0, "M3": 5.0, "M4": 7.5}
MONTH_PARAMETERS: dict[str, Any] = {
    "combined_commodities": {"CORN": {
        "underlyings": ["CORN"], "delta_unit": BUSHELS, "scan_tiers": [{"price_scan_rate": 0.02}],
        "intra_tiers": [{"tier": 2, "start_period": "202702", "end_period": "202702"},
                        {"tier": 3, "start_period": "202703", "end_period": "202703"},
                        {"tier": 4, "start_period": "202704", "end_period": "202704"}],
        "intra_spreads": [
            {"priority": 1, "rate": 200, "legs": [{"tier": 2, "ratio": 1, "side": "A"},
                                                  {"tier": 3, "ratio": 1, "side": "B"}]},
            {"priority": 2, "rate": 50, "legs": [{"tier": 2, "ratio": 1, "side": "A"},
                                                 {"tier": 4, "ratio": 1, "side": "B"}]},
            {"priority": 3, "rate": 0, "legs": [{"tier": 3, "ratio": 1, "side": "A"},
                                                {"tier": 4, "ratio": 1, "side": "B"}]},
        ],
    }},
}


@pytest.mark.parametrize(("month", "outright"), [("M2", 500.0), ("M3", 500.0), ("M4", 750.0)])
def test_month_outrights_come_from_the_risk_arrays(month: str, outright: float) -> None:
    book = make_book(MONTH_INSTRUMENTS, MONTH_MARKS, [{"instrument": month, "quantity": 1}])

    result = margin(book, span_profile(MONTH_PARAMETERS))

    assert result.maintenance_margin[0] == pytest.approx(outright, rel=1e-12)


@pytest.mark.parametrize(
    ("long", "short", "scan", "intra", "expected"),
    [
        # +1 M2 / −1 M3: scan max_j(−500·p_j + 500·p_j) = 0; spread 2v3 (priority 1): 200 → 200
        ("M2", "M3", 0.0, 200.0, 200.0),
        # +1 M2 / −1 M4: scan max_j(750 − 500)·p_j = 250 at p = +1; 2v3 finds no M3, 2v4: 50 → 300
        ("M2", "M4", 250.0, 50.0, 300.0),
        # +1 M3 / −1 M4: scan 250; 3v4 charges 0 → 250
        ("M3", "M4", 250.0, 0.0, 250.0),
    ],
)
def test_month_spreads(long: str, short: str, scan: float, intra: float, expected: float) -> None:
    book = make_book(MONTH_INSTRUMENTS, MONTH_MARKS,
                     [{"instrument": long, "quantity": 1}, {"instrument": short, "quantity": -1}])

    result = margin(book, span_profile(MONTH_PARAMETERS))

    assert result.components["scan_risk"][0] == pytest.approx(scan, abs=1e-9)
    assert result.components["intra_commodity_charge"][0] == pytest.approx(intra, abs=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(expected, rel=1e-12)


# --- Example 3 / span.scan.synthetic ----------------------------------------------------------------------------
# A public SPAN implementation's unit tests: a futures risk array per long contract = 1,000 × [0.1, 0, 0.3, 0.2,
# −0.3, −0.2, 0.6, 0.5, −0.6, −0.5, 1.0, 0.9, −1.0, −0.9, 0.3, 0.3]; calendar spread FLAT rate 200 per delta unit.
SYNTHETIC = [100.0, 0.0, 300.0, 200.0, -300.0, -200.0, 600.0, 500.0, -600.0, -500.0, 1000.0, 900.0, -1000.0, -900.0,
             300.0, 300.0]
SYNTHETIC_INSTRUMENTS = [future("F1", "X", "2027-01-15T18:00:00Z", 1.0), future("F2", "X", "2027-02-12T18:00:00Z", 1.0)]
SYNTHETIC_MARKS = {"F1": 100.0, "F2": 100.0}
SYNTHETIC_PARAMETERS: dict[str, Any] = {
    "combined_commodities": {"X": {
        "underlyings": ["X"],
        "risk_arrays": {"F1": {"losses": SYNTHETIC, "composite_delta": 1.0},
                        "F2": {"losses": SYNTHETIC, "composite_delta": 1.0}},
        "intra_tiers": [{"tier": 1, "start_period": "202701", "end_period": "202701"},
                        {"tier": 2, "start_period": "202702", "end_period": "202702"}],
        "intra_spreads": [{"priority": 1, "rate": 200, "legs": [{"tier": 1, "ratio": 1, "side": "A"},
                                                                 {"tier": 2, "ratio": 1, "side": "B"}]}],
    }},
}


@pytest.mark.parametrize(("quantity", "scenario"), [(75, 11), (-75, 13)])
def test_synthetic_outright_scan(quantity: float, scenario: int) -> None:
    # +75: max_j 75 × RA_j = 75 × 1,000 at scenario 11; −75: max_j −75 × RA_j = 75 × 1,000 at scenario 13
    book = make_book(SYNTHETIC_INSTRUMENTS, SYNTHETIC_MARKS, [{"instrument": "F1", "quantity": quantity}])

    result = margin(book, span_profile(SYNTHETIC_PARAMETERS))

    assert result.components["scan_risk"][0] == 75000.0
    assert result.maintenance_margin[0] == 75000.0
    assert result.explanations is not None
    assert result.explanations[0]["worst_scenario"]["scenario"] == scenario


def test_synthetic_long_and_short_in_the_same_contract_scan_zero() -> None:
    # a hedge-mode account, long leg +75 and short leg −75 of F1: the legs net to 0 contracts, scan 0
    book = make_book(SYNTHETIC_INSTRUMENTS, SYNTHETIC_MARKS,
                     [{"instrument": "F1", "quantity": 75, "position_side": "long"},
                      {"instrument": "F1", "quantity": -75, "position_side": "short"}], position_mode="hedge")

    result = margin(book, span_profile(SYNTHETIC_PARAMETERS))

    assert result.components["scan_risk"][0] == 0.0
    assert result.maintenance_margin[0] == 0.0


def test_synthetic_calendar_spread() -> None:
    # +75 F1 (month 1), −75 F2 (month 2), same array: scan max_j (75 − 75)·RA_j = 0; net composite delta +75 in
    # tier 1 and −75 in tier 2: 75 spreads × 200 = 15,000; commodity risk 0 + 15,000 = 15,000
    book = make_book(SYNTHETIC_INSTRUMENTS, SYNTHETIC_MARKS,
                     [{"instrument": "F1", "quantity": 75}, {"instrument": "F2", "quantity": -75}])

    result = margin(book, span_profile(SYNTHETIC_PARAMETERS))

    assert result.components["scan_risk"][0] == 0.0
    assert result.components["intra_commodity_charge"][0] == 15000.0
    assert result.components["commodity_risk"][0] == 15000.0
    assert result.maintenance_margin[0] == 15000.0


def test_corn_soy_through_the_command(tmp_path: Path) -> None:
    # the same 2,700 through `marginkit margin --params` (a user's profile file) and the JSON document
    book_path = tmp_path / "book.yaml"
    book_path.write_text(yaml.safe_dump({
        "as_of": AS_OF, "instruments": CORN_SOY_INSTRUMENTS,
        "market": {"index": {"CORN": 4.375, "SOY": 12.5}, "marks": CORN_SOY_MARKS},
        "accounts": [{"id": "farmer", "mode": "cross", "account_class": "hedger", "collateral": {"USD": 10000},
                      "positions": [{"instrument": "ZC", "quantity": 2, "entry_price": 4.375},
                                    {"instrument": "ZS", "quantity": -1, "entry_price": 12.5}]}],
    }))
    profile_path = tmp_path / "span.yaml"
    profile_path.write_text(yaml.safe_dump({"model": "span", "name": "corn-soy", "version": "t", "source": "test",
                                            "parameters": {"account_class_ratios": RATIOS, **CORN_SOY_PARAMETERS}}))

    result = CliRunner().invoke(app, ["margin", str(book_path), "--params", str(profile_path), "--json"])

    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)["accounts"][0]
    assert account["maintenance_margin"] == pytest.approx(2700.0, rel=1e-12)
    assert account["components"]["inter_commodity_credit"] == pytest.approx(3300.0, rel=1e-12)
    # the largest commodity is corn (3,500 > 2,500); its worst point is 13, price −1 PSR
    assert account["worst_scenario"]["combined_commodity"] == "CORN"
    assert account["worst_scenario"]["scenario"] == 13

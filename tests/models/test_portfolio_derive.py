"""portfolio / derive-pmrm: hand-computed checks through a Book (models/portfolio_derive.py, derive-pmrm-method.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.accounts import account_state
from marginkit.book import resolve
from marginkit.cli import app
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models.portfolio_derive import margin
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
EXPIRY = "2026-12-24T08:00:00Z"  # 30 days: T = 30/365
PROFILE = "derive-pmrm-2.1"


def instrument(identifier: str, **terms: Any) -> dict[str, Any]:
    return {"id": identifier, "quote": "USD", "settlement": "USDC", "inverse": False, "contract_size": 1, **terms}


INSTRUMENTS = [
    instrument("ETH-C-3500", type="option", option_type="call", strike=3500, expiry=EXPIRY, underlying="ETH"),
    instrument("ETH-P-3500", type="option", option_type="put", strike=3500, expiry=EXPIRY, underlying="ETH"),
    instrument("ETH-PERP", type="perpetual", underlying="ETH"),
    instrument("BTC-PERP", type="perpetual", underlying="BTC"),
]


def book_record(positions: list[dict[str, Any]], collateral: dict[str, float], usdc: float = 1.0,
                mode: str = "portfolio") -> dict[str, Any]:
    return {
        "as_of": AS_OF,
        "instruments": INSTRUMENTS,
        "market": {"index": {"ETH": 3300.0, "BTC": 100000.0, "USDC": usdc, "XYZ": 1.0},
                   "vols": {"ETH-C-3500": 0.6, "ETH-P-3500": 0.6}},
        "accounts": [{"id": "a", "mode": mode, "collateral": collateral, "positions": positions}],
    }


def book(positions: list[dict[str, Any]], collateral: dict[str, float], usdc: float = 1.0,
         mode: str = "portfolio") -> Any:
    return resolve(parse_book(book_record(positions, collateral, usdc, mode)))


def black76(forward: float, strike: float, years: float, vol: float, call: bool) -> float:
    """Textbook Black-76 with D = 1, for the expected values."""
    def n(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))
    v = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + v * v / 2) / v
    d2 = d1 - v
    return forward * n(d1) - strike * n(d2) if call else strike * n(-d2) - forward * n(-d1)


def test_short_call_mark_and_option_contingency() -> None:
    # Arrange: short 2 ETH calls K = 3,500, 30 days, vol 0.6, F = S = 3,300 (rates 0, D = 1)
    resolved = book([{"instrument": "ETH-C-3500", "quantity": -2, "entry_price": 100}], {"USDC": 10000})

    # Act
    result = margin(resolved, shipped_profile(PROFILE))

    # Assert
    # σ√T = 0.6 × √(30/365) = 0.172015; d1 = (ln(3300/3500) + 0.172015²/2)/0.172015 = −0.256059, d2 = −0.428074
    # call = 3,300 × N(d1) − 3,500 × N(d2) = 3,300 × 0.398952 − 3,500 × 0.334299 = 146.4981; MTM = −2 × 146.4981
    assert result.components["option_mtm"][0] == pytest.approx(-292.99618277, rel=1e-9)
    # naked short 2 at K = 3,500: N_o = S × 2 = 6,600; MM part 0.003 × 6,600 = 19.8, IM-only 0.002 × 6,600 = 13.2
    assert result.components["option_contingency"][0] == pytest.approx(19.8, rel=1e-12)
    assert result.components["option_initial_contingency"][0] == pytest.approx(13.2, rel=1e-12)
    # M = 10,000 USDC + option MTM; the book's equity counts the same
    assert result.components["portfolio_mtm"][0] == pytest.approx(10000 - 292.99618277, rel=1e-12)
    assert account_state(resolved, result).equity[0] == pytest.approx(result.components["portfolio_mtm"][0],
                                                                       rel=1e-12)


def test_short_call_basis_contingency() -> None:
    # Arrange
    resolved = book([{"instrument": "ETH-C-3500", "quantity": -2, "entry_price": 100}], {"USDC": 10000})
    years = 30 / 365

    # Act
    result = margin(resolved, shipped_profile(PROFILE))

    # Assert: β = min(V(1.045) − MTM, V(0.955) − MTM, 0) × (0.5 + 2.0 × T); for a short call the up move loses:
    # V(1.045) = −2 × call(F = 3,448.5) ≈ −2 × 207.19, MTM = −2 × 146.50: β ≈ −121.4 × (0.5 + 0.16438) = −80.7
    mark = -2 * black76(3300.0, 3500.0, years, 0.6, True)
    up = -2 * black76(3300.0 * 1.045, 3500.0, years, 0.6, True)
    down = -2 * black76(3300.0 * 0.955, 3500.0, years, 0.6, True)
    expected = -min(up - mark, down - mark, 0.0) * (0.5 + 2.0 * years)
    assert result.components["forward_contingency"][0] == pytest.approx(expected, rel=1e-9)


def test_call_hedged_by_a_put_at_the_same_strike_is_not_naked() -> None:
    # short 2 calls and long 2 puts at K = 3,500: net amount at the strike −2 + 2 = 0, so no option contingency
    resolved = book([{"instrument": "ETH-C-3500", "quantity": -2, "entry_price": 100},
                     {"instrument": "ETH-P-3500", "quantity": 2, "entry_price": 300}], {"USDC": 10000})

    result = margin(resolved, shipped_profile(PROFILE))

    assert result.components["option_contingency"][0] == 0.0
    assert result.components["option_initial_contingency"][0] == 0.0


def test_long_perp_by_hand() -> None:
    # Arrange: 10,000 USDC and 1 ETH perp long from 3,250, marked at the index 3,300: U = 50, M = 10,050
    resolved = book([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3250}], {"USDC": 10000})

    # Act
    result = margin(resolved, shipped_profile(PROFILE))

    # Assert
    # worst P&L: x = 0.82 (Up) → 1 × (0.82 − 1) × 3,300 = −594 (tails: λ·(x − 1) = ±0.036 → ±118.8), B = 0
    # perp contingency: N_p = |1| × 3,300; MM 0.015 × 3,300 = 49.5, IM-only 0.005 × 3,300 = 16.5
    # MM requirement = M − MM = 0.8 × 594 + 49.5 = 524.7; IM requirement = 1.0 × 594 + 49.5 + 16.5 = 660
    assert result.components["worst_loss"][0] == pytest.approx(594.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(524.7, rel=1e-12)
    assert result.initial_margin[0] == pytest.approx(660.0, rel=1e-12)
    # Derive's balances: 10,050 − 524.7 = 9,525.3 and 10,050 − 660 = 9,390
    assert result.components["venue_maintenance_margin"][0] == pytest.approx(9525.3, rel=1e-12)
    assert result.components["venue_initial_margin"][0] == pytest.approx(9390.0, rel=1e-12)
    assert result.explanations is not None
    worst = result.explanations[0]["worst_scenario"]
    assert (worst["index"], worst["price_move"], worst["vol_move"]) == (22, -0.18, "up")


def test_collateral_on_the_underlying_cancels_risk() -> None:
    # Arrange: 1 ETH collateral (risk-cancelling in an ETH account) against a short ETH perp from 3,300
    resolved = book([{"instrument": "ETH-PERP", "quantity": -1, "entry_price": 3300}], {"ETH": 1.0})

    # Act
    result = margin(resolved, shipped_profile(PROFILE))

    # Assert: every scenario moves (−1 × 3,300 + 1 × 3,300)·(x − 1) = 0, so L = 0;
    # MM = perp 0.015 × 3,300 + ETH haircut 0.015 × 3,300 = 99; IM = 99 + 0.005 × 3,300 + 0.005 × 3,300 = 132
    assert result.components["worst_loss"][0] == 0.0
    assert result.maintenance_margin[0] == pytest.approx(99.0, rel=1e-12)
    assert result.initial_margin[0] == pytest.approx(132.0, rel=1e-12)


def test_collateral_off_the_underlying_takes_the_other_haircut() -> None:
    # 1 ETH in a BTC account is not risk-cancelling: MM haircut 0.15 × 3,300 = 495, IM-only 0.05 × 3,300 = 165
    resolved = book([{"instrument": "BTC-PERP", "quantity": 0.01, "entry_price": 100000}], {"ETH": 1.0})

    result = margin(resolved, shipped_profile(PROFILE))

    assert result.components["collateral_contingency"][0] == pytest.approx(495.0, rel=1e-12)
    assert result.components["collateral_initial_contingency"][0] == pytest.approx(165.0, rel=1e-12)


def test_stable_depeg_raises_the_initial_loss_factor() -> None:
    # Arrange: the long-perp account with USDC at 0.97
    resolved = book([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3250}], {"USDC": 10000}, usdc=0.97)

    # Act
    result = margin(resolved, shipped_profile(PROFILE))

    # Assert: f_IM = 1.0 + (0.98 − 0.97) × 2.0 = 1.02; in USDC: MM req 0.8 × 594 + 49.5 = 524.7,
    # IM req 1.02 × 594 + 49.5 + 16.5 = 671.88; in USD × 0.97: 508.959 and 651.7236
    assert result.components["initial_loss_factor"][0] == pytest.approx(1.02, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(0.97 * 524.7, rel=1e-12)
    assert result.initial_margin[0] == pytest.approx(0.97 * 671.88, rel=1e-12)
    # M = 10,000 USDC + U, the perp's 50 USD of P&L being 50 / 0.97 USDC: in USD 0.97 × 10,000 + 50 = 9,750,
    # the book's equity
    assert result.components["portfolio_mtm"][0] == pytest.approx(9750.0, rel=1e-12)
    assert account_state(resolved, result).equity[0] == pytest.approx(9750.0, rel=1e-12)


@pytest.mark.parametrize(
    ("positions", "collateral", "mode", "field"),
    [
        ([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3300},
          {"instrument": "BTC-PERP", "quantity": 1, "entry_price": 100000}], {"USDC": 1.0}, "portfolio",
         "accounts[0].positions[1]"),
        ([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3300}], {"USDC": 1.0}, "cross",
         "accounts[0].positions[0]"),
        ([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3300}], {"XYZ": 1.0}, "portfolio",
         "accounts[0].collateral.XYZ"),
        ([], {"ETH": -1.0}, "portfolio", "accounts[0].collateral.ETH"),
    ],
    ids=["two-underlyings", "not-portfolio-mode", "unknown-collateral", "negative-collateral"],
)
def test_refusals_name_the_field(positions: list[dict[str, Any]], collateral: dict[str, float], mode: str,
                                 field: str) -> None:
    resolved = book(positions, collateral, mode=mode)

    with pytest.raises(ModelRefusal) as raised:
        margin(resolved, shipped_profile(PROFILE))

    assert raised.value.field == field


def test_a_bad_profile_parameter_names_its_derive_key() -> None:
    shipped = shipped_profile(PROFILE)
    parameters = {**shipped.parameters, "VolShock": {**shipped.parameters["VolShock"], "VOLRANGEUP": -0.5}}
    profile = parse_profile({"model": "portfolio", "name": "bad", "version": "t", "source": "t",
                             "parameters": parameters}, path="bad.yaml")
    resolved = book([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3300}], {"USDC": 1.0})

    with pytest.raises(InputError) as raised:
        margin(resolved, profile)

    assert str(raised.value) == "bad.yaml: parameters.VolShock.VOLRANGEUP: must not be negative"


def test_margin_command_with_the_profile(tmp_path: Path) -> None:
    # the long-perp account through `marginkit margin --profile derive-pmrm-2.1` (the portfolio model's dispatcher):
    # equity 10,050, IM 660, MM 524.7 (test_long_perp_by_hand)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(book_record([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3250}],
                                               {"USDC": 10000})))

    result = CliRunner().invoke(app, ["margin", str(path), "--profile", PROFILE, "--json"])

    assert result.exit_code == 0, result.stderr
    account = json.loads(result.stdout)["accounts"][0]
    assert (account["currency"], account["status"]) == ("USD", "healthy")
    assert account["equity"] == pytest.approx(10050.0, rel=1e-12)
    assert account["initial_margin"] == pytest.approx(660.0, rel=1e-12)
    assert account["maintenance_margin"] == pytest.approx(524.7, rel=1e-12)
    assert account["worst_scenario"]["vol_move"] == "up"


def test_explain_shows_the_derive_scenarios(tmp_path: Path) -> None:
    # the long perp (1 ETH at 3,300, entry 3,250): the −13.5 % move with vol None loses 3,300 × 0.135 = 445.5
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(book_record([{"instrument": "ETH-PERP", "quantity": 1, "entry_price": 3250}],
                                               {"USDC": 10000})))

    result = CliRunner().invoke(app, ["explain", str(path), "a", "--profile", PROFILE, "--json"])

    assert result.exit_code == 0, result.stderr
    table = json.loads(result.stdout)["scenarios"][0]
    row = table["price_moves"].index(-0.135)
    assert table["standard"][row][1] == pytest.approx(-445.5, rel=1e-9)
    assert any("contingency" in other["label"] for other in table["other"])

"""Cross-margining between two clearing houses (models/cross_margining.py) on the var and portfolio models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marginkit.book import resolve
from marginkit.errors import InputError
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models import MODELS
from marginkit.profiles import shipped_profile

AGREEMENT = {"agreement": "a-b", "offset_haircut": 0.25,
             "clearing_houses": {"CCP-A": ["BTC-FUT"], "CCP-B": ["BTC-PERP"]}}


def book(positions: list[dict[str, Any]], mode: str = "cross") -> Any:
    return resolve(parse_book({
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [
            {"id": "BTC-FUT", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "USD",
             "inverse": False, "contract_size": 1, "expiry": "2026-12-26T08:00:00Z"},
            {"id": "BTC-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USD",
             "inverse": False, "contract_size": 1},
            {"id": "ETH-PERP", "type": "perpetual", "underlying": "ETH", "quote": "USD", "settlement": "USD",
             "inverse": False, "contract_size": 1}],
        "market": {"index": {"BTC": 100.0, "ETH": 10.0}, "marks": {"BTC-FUT": 100.0, "BTC-PERP": 100.0,
                                                                   "ETH-PERP": 10.0}},
        "accounts": [{"id": "hedged", "mode": mode, "collateral": {"USD": 1000},
                      "positions": [{"entry_price": 10.0 if p["instrument"] == "ETH-PERP" else 100.0, **p}
                                    for p in positions]}]}))


def var_profile(tmp_path: Path, agreement: dict[str, Any] | None) -> Any:
    # BTC 100 → 90 → 99 → 108.9 on weekdays: relative 1-day returns −10 %, +10 %, +10 %
    history = tmp_path / "history.csv"
    history.write_text("date,price.BTC,price.ETH\n2026-11-16,100,10\n2026-11-17,90,10\n2026-11-18,99,10\n"
                       "2026-11-19,108.9,10\n")
    parameters: dict[str, Any] = {
        "method": "historical", "measure": "var", "confidence": 0.9, "quantile": "ceiling",
        "margin_period_days": 1, "lookback_days": 3, "price_returns": "relative", "minimum_scenarios": 1,
        "history": str(history)}
    if agreement is not None:
        parameters["cross_margining"] = agreement
    return parse_profile({"model": "var", "name": "hs-90", "version": "test", "source": "test",
                          "parameters": parameters})


def test_offsetting_positions_at_two_houses_get_the_offset_less_its_haircut(tmp_path: Path) -> None:
    # Arrange: long 1 BTC future at CCP-A, short 1 BTC perpetual at CCP-B
    hedged = book([{"instrument": "BTC-FUT", "quantity": 1}, {"instrument": "BTC-PERP", "quantity": -1}])

    # Act
    requirements = MODELS["var"](hedged, var_profile(tmp_path, AGREEMENT))

    # Assert. Losses over the 3 scenarios: long 10, −10, −10; short −10, 10, 10; joint 0, 0, 0. VaR 90 % =
    # the ⌈3 × 0.1⌉ = 1st largest loss: M_A = 10, M_B = 10, M_AB = 0. Cross = min(20, 0 + 0.25 × (20 − 0)) = 5,
    # split pro rata to the standalone margins: 2.5 and 2.5.
    assert requirements.initial_margin[0] == pytest.approx(5.0, abs=1e-9)
    assert requirements.components["standalone.CCP-A"][0] == pytest.approx(10.0, abs=1e-9)
    assert requirements.components["joint_margin"][0] == pytest.approx(0.0, abs=1e-9)
    assert requirements.components["offset_benefit"][0] == pytest.approx(15.0, abs=1e-9)
    assert requirements.components["cross_margin.CCP-A"][0] == pytest.approx(2.5, abs=1e-9)
    assert requirements.components["cross_margin.CCP-B"][0] == pytest.approx(2.5, abs=1e-9)


def test_the_haircut_runs_from_one_joint_portfolio_to_no_benefit(tmp_path: Path) -> None:
    # Arrange
    hedged = book([{"instrument": "BTC-FUT", "quantity": 2}, {"instrument": "BTC-PERP", "quantity": -1}])
    plain = MODELS["var"](hedged, var_profile(tmp_path, None)).initial_margin[0]

    # Act
    full = MODELS["var"](hedged, var_profile(tmp_path, {**AGREEMENT, "offset_haircut": 0.0})).initial_margin[0]
    none = MODELS["var"](hedged, var_profile(tmp_path, {**AGREEMENT, "offset_haircut": 1.0})).initial_margin[0]

    # Assert: h = 0 is the joint portfolio (net long 1: VaR 10); h = 1 the standalone sum (20 + 10 = 30)
    assert full == pytest.approx(plain, abs=1e-9) and full == pytest.approx(10.0, abs=1e-9)
    assert none == pytest.approx(30.0, abs=1e-9)


def test_the_portfolio_model_takes_the_same_agreement() -> None:
    # Arrange: Deribit PM (USD, X:PM) with and without an agreement, and each house's positions alone
    base = shipped_profile("deribit-pm")
    agreement = parse_profile({"model": "portfolio", "name": "pm-x", "version": "t", "source": "t",
                               "parameters": {**base.parameters, "cross_margining": AGREEMENT}})
    legs = [{"instrument": "BTC-FUT", "quantity": 1}, {"instrument": "BTC-PERP", "quantity": -1}]
    hedged = book(legs, mode="portfolio")

    # Act
    crossed = MODELS["portfolio"](hedged, agreement)
    joint = MODELS["portfolio"](hedged, base).initial_margin[0]
    alone = sum(MODELS["portfolio"](book([leg], mode="portfolio"), base).initial_margin[0] for leg in legs)

    # Assert: joint + 0.25 × (alone − joint), capped at alone
    expected = min(alone, joint + 0.25 * (alone - joint))
    assert crossed.initial_margin[0] == pytest.approx(expected, rel=1e-12)
    assert joint < crossed.initial_margin[0] < alone


@pytest.mark.parametrize(("agreement", "field"), [
    ({**AGREEMENT, "offset_haircut": 1.5}, "parameters.cross_margining.offset_haircut"),
    ({**AGREEMENT, "clearing_houses": {"CCP-A": ["BTC-FUT"]}}, "parameters.cross_margining"),
    ({**AGREEMENT, "clearing_houses": {"A": ["BTC-FUT"], "B": ["BTC-FUT"]}}, "parameters.cross_margining"),
])
def test_a_bad_agreement_names_its_field(tmp_path: Path, agreement: dict[str, Any], field: str) -> None:
    hedged = book([{"instrument": "BTC-FUT", "quantity": 1}])
    with pytest.raises(InputError) as caught:
        MODELS["var"](hedged, var_profile(tmp_path, agreement))
    assert caught.value.field == field


def test_a_position_outside_the_agreement_is_refused(tmp_path: Path) -> None:
    hedged = book([{"instrument": "BTC-FUT", "quantity": 1}, {"instrument": "ETH-PERP", "quantity": 1}])
    with pytest.raises(InputError) as caught:
        MODELS["var"](hedged, var_profile(tmp_path, AGREEMENT))
    assert caught.value.field == "accounts[0].positions[1]" and "a-b" in str(caught.value)
    assert np.isfinite(MODELS["var"](hedged, var_profile(tmp_path, None)).initial_margin).all()

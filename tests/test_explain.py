"""`marginkit explain`: scenario tables and the liquidation price per underlying (explain.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.accounts import account_state
from marginkit.book import resolve
from marginkit.cli import app
from marginkit.explain import liquidation_prices
from marginkit.io.book_file import parse_book
from marginkit.models.tiered import margin
from marginkit.profiles import shipped_profile

PM_BOOK = {
    "as_of": "2026-11-24T08:00:00Z",
    "instruments": [{"id": "BTC-PERPETUAL", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                     "settlement": "BTC", "inverse": True, "contract_size": 10}],
    "market": {"index": {"BTC": 100000.0}, "marks": {"BTC-PERPETUAL": 100000.0}},
    "accounts": [{"id": "p", "mode": "portfolio", "collateral": {"BTC": 0.2},
                  "positions": [{"instrument": "BTC-PERPETUAL", "quantity": 10000, "entry_price": 100000}]}],
}


def test_explain_prints_the_scenario_grid_and_a_liquidation_price(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(PM_BOOK))

    result = CliRunner().invoke(app, ["explain", str(path), "p", "--profile", "deribit-pm", "--json"])

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    table = document["scenarios"][0]
    # 9 index moves × 3 volatilities; long 1 BTC of perpetual ($100,000): at −16 % it loses 1 × −0.16/0.84 BTC
    assert len(table["standard"]) == 9 and len(table["standard"][0]) == 3
    assert table["standard"][0][1] == pytest.approx(-0.16 / 0.84, rel=1e-12)
    assert document["liquidation_prices"]["BTC"] is not None


def test_liquidation_price_agrees_with_the_tiered_closed_form() -> None:
    # For a one-position isolated tiered account, the root found on the model equals its own liquidation price.
    spec = parse_book({
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [{"id": "BTCUSDT", "type": "perpetual", "underlying": "BTC", "quote": "USDT",
                         "settlement": "USDT", "inverse": False, "contract_size": 1}],
        "market": {"index": {"BTC": 95000.0, "USDT": 1.0}},
        "accounts": [{"id": "a", "mode": "cross", "collateral": {"USDT": 10000.0},
                      "positions": [{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 95000}]}],
    })
    profile = shipped_profile("binance-usdm")
    closed_form = margin(resolve(spec), profile).positions

    found = liquidation_prices(spec, 0, profile)["BTC"]

    assert closed_form is not None and found is not None
    assert found == pytest.approx(float(closed_form.liquidation_price[0]), rel=1e-9)
    moved = resolve(replace(spec, market=replace(spec.market, index={"BTC": found, "USDT": 1.0})))
    requirements = margin(moved, profile)
    state = account_state(moved, requirements)
    assert float(state.equity[0]) == pytest.approx(float(requirements.maintenance_margin[0]), rel=1e-9)

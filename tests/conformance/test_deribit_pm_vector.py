"""Deribit Portfolio Margin, vector A (shared/vectors/crypto-venues.json `deribit.pme.vector_a.*`, restated).

Source: Deribit API reference, response example of private/pme/simulate
(https://docs.deribit.com/api-reference/account-management/private-simulate): BTC S:PM account, long
0.314538364 BTC of BTC-PERPETUAL and short 0.001187534 BTC of BTC-28JUN24, index 65,666.19.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.models.portfolio_deribit import initial_margin, instrument_risk_vectors, pair_settings
from marginkit.models.portfolio_deribit_parameters import parse_deribit_pm_parameters
from marginkit.profiles import shipped_profile

PERPETUAL_MARK = 65910.57
FUTURE_MARK = 67371.75
PERPETUAL_COIN = 0.314538364
FUTURE_COIN = -0.001187534

BOOK: dict[str, Any] = {
    "as_of": "2024-06-17T10:22:20Z",  # the response's timestamp 1718619740501
    "instruments": [
        {"id": "BTC-PERPETUAL", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
         "inverse": True, "contract_size": 10},
        {"id": "BTC-28JUN24", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
         "inverse": True, "contract_size": 10, "expiry": "2024-06-28T08:00:00Z"},
    ],
    "market": {"index": {"BTC": 65666.19}, "marks": {"BTC-PERPETUAL": PERPETUAL_MARK, "BTC-28JUN24": FUTURE_MARK}},
    "accounts": [{"id": "vector-a", "mode": "portfolio", "collateral": {"BTC": 1.0}, "positions": [
        # the API's size in coin is USD face / mark: contracts = coin × mark / $10
        {"instrument": "BTC-PERPETUAL", "quantity": PERPETUAL_COIN * PERPETUAL_MARK / 10, "entry_price": 65000},
        {"instrument": "BTC-28JUN24", "quantity": FUTURE_COIN * FUTURE_MARK / 10, "entry_price": 67000},
    ]}],
}

# Published standard vectors per instrument (9 buckets; the 3 volatility entries of a bucket are equal for
# delta-one instruments): q·r/(1+r) with r = −0.16 + 0.04·i.
PERPETUAL_STANDARD = [-0.05991206933333334, -0.04289159509090909, -0.027351162086956524, -0.013105765166666668, 0,
                      0.012097629384615385, 0.023299138074074074, 0.033700538999999995, 0.043384601931034494]
FUTURE_STANDARD = [0.0002261969523809524, 0.00016193645454545456, 0.00010326382608695652, 4.948058333333334e-05, 0,
                   -4.567438461538462e-05, -8.796548148148148e-05, -0.0001272357857142857, -0.00016379779310344832]
PERPETUAL_EXTENDED = [-0.05991206933333334] * 2 + [0.04338460193103449] * 6  # clamped to ±price_range
FUTURE_EXTENDED = [0.0002261969523809524] * 2 + [-0.0001637977931034483] * 6


def test_instrument_risk_vectors() -> None:
    book = resolve(parse_book(BOOK))
    parameters = parse_deribit_pm_parameters(shipped_profile("deribit-pm"))
    coins = pair_settings(parameters, book)

    coin_pnl, _, _ = instrument_risk_vectors(book, coins, 35)
    position_pnl = coin_pnl * book.quantity[:, None]

    np.testing.assert_allclose(position_pnl[0, 0:27:3], PERPETUAL_STANDARD, rtol=0, atol=1e-12)
    np.testing.assert_allclose(position_pnl[1, 0:27:3], FUTURE_STANDARD, rtol=0, atol=1e-12)
    np.testing.assert_allclose(position_pnl[0, 27:], PERPETUAL_EXTENDED, rtol=0, atol=1e-12)
    np.testing.assert_allclose(position_pnl[1, 27:], FUTURE_EXTENDED, rtol=0, atol=1e-12)


def test_vector_a_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(BOOK))

    result = CliRunner().invoke(app, ["margin", str(path), "--profile", "deribit-pm", "--json"])

    assert result.exit_code == 0, result.stderr
    account = json.loads(result.stdout)["accounts"][0]
    components = account["components"]
    assert account["currency"] == "BTC"
    # aggregated bucket 0: −0.0599120693 + 0.0002261970 = −0.0596858724 → worst_case 0.059685872 (9 dp)
    assert components["worst_case"] == pytest.approx(0.05968587238095239, abs=1e-9)
    # roll shock: (0.314538364 + 0.001187534) × max(0.075 × T, 0.01) = 0.315725898 × 0.01
    assert components["roll_shock"] == pytest.approx(0.00315725898, abs=1e-9)
    assert components["delta_shock"] == 0.0
    assert components["risk_matrix_margin"] == pytest.approx(0.06284313098, abs=1e-9)
    # MM = 0.8 × 0.06284313098 = 0.050274504784
    assert account["maintenance_margin"] == pytest.approx(0.050274504784, abs=1e-9)
    # IM with the response's own add-ons: mmp 0.06 + open orders 0.000018212 → 0.122861343
    assert float(initial_margin(components["risk_matrix_margin"], 0.06, 1.8212e-05)) == pytest.approx(
        0.122861343, abs=1e-9)
    # worst_case_bucket {index 1, bucket 1, side left, source standard}
    worst = account["worst_scenario"]
    assert (worst["index"], worst["bucket"], worst["side"], worst["source"]) == (1, 1, "left", "standard")

"""Capital efficiency in `marginkit compare`: IM ÷ gross notional, the offset benefit, history and the report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import resolve
from marginkit.capital_efficiency import efficiency, gross_notional_usd, requirements_for, standalone_book
from marginkit.cli import app
from marginkit.comparison import backtest_available
from marginkit.io import parse_book
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"

# A hedge-mode cross account: a long and a short leg of one BTC perpetual (Binance USDⓈ-M brackets).
HEDGED_PAIR = {
    "as_of": AS_OF,
    "instruments": [{"id": "BTC-USD-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                     "settlement": "USDC", "inverse": False, "contract_size": 0.001}],
    "market": {"index": {"BTC": 95000.0, "USDC": 1.0}, "marks": {"BTC-USD-PERP": 95000.0}},
    "accounts": [{"id": "carol", "mode": "cross", "position_mode": "hedge", "collateral": {"USDC": 150000},
                  "positions": [
                      {"instrument": "BTC-USD-PERP", "quantity": 40000, "entry_price": 90000,
                       "position_side": "long"},
                      {"instrument": "BTC-USD-PERP", "quantity": -10000, "entry_price": 97000,
                       "position_side": "short"}]}],
}

# A bear call spread on a stock: short 1 C100 (mark 5), long 1 C105 (mark 3), 100 shares per contract.
CALL_SPREAD = {
    "as_of": AS_OF,
    "instruments": [
        {"id": "XYZ-C100", "type": "option", "option_type": "call", "strike": 100, "expiry": "2026-12-18T21:00:00Z",
         "underlying": "XYZ", "quote": "USD", "settlement": "USD", "inverse": False, "contract_size": 100,
         "index_class": "equity"},
        {"id": "XYZ-C105", "type": "option", "option_type": "call", "strike": 105, "expiry": "2026-12-18T21:00:00Z",
         "underlying": "XYZ", "quote": "USD", "settlement": "USD", "inverse": False, "contract_size": 100,
         "index_class": "equity"},
    ],
    "market": {"index": {"XYZ": 100.0}, "marks": {"XYZ-C100": 5.0, "XYZ-C105": 3.0}},
    "accounts": [{"id": "frank", "mode": "cross", "collateral": {"USD": 50000}, "positions": [
        {"instrument": "XYZ-C100", "quantity": -1, "entry_price": 5.0},
        {"instrument": "XYZ-C105", "quantity": 1, "entry_price": 3.0}]}],
}


def _figures(document: dict[str, object], profile: str):  # type: ignore[no-untyped-def]
    spec = parse_book(document)
    book = resolve(spec)
    chosen = shipped_profile(profile)
    requirements = requirements_for(book, chosen)
    return book, requirements, efficiency(book, requirements, standalone_book(spec), chosen)


def test_tiered_hedged_pair_margins_each_leg_alone_so_no_offset() -> None:
    # Arrange: long 40,000 × 0.001 × 95,000 = 3,800,000 USD notional → bracket ≤ 12M, max leverage 50 → IM 76,000;
    # short 10,000 × 0.001 × 95,000 = 950,000 → bracket ≤ 3M, max leverage 75 → IM 12,666.67.
    long_alone, short_alone = 3_800_000 / 50, 950_000 / 75
    # Act
    book, requirements, figures = _figures(HEDGED_PAIR, "binance-usdm")
    # Assert: Binance margins each leg on its own: together = X + Y, benefit 0; gross notional 4,750,000
    assert requirements.initial_margin[0] == pytest.approx(long_alone + short_alone)
    assert figures.standalone_initial_margin[0] == pytest.approx(long_alone + short_alone)
    assert figures.offset_benefit[0] == pytest.approx(0.0, abs=1e-9)
    assert gross_notional_usd(book)[0] == pytest.approx(4_750_000.0)
    assert figures.initial_margin_to_notional[0] == pytest.approx((long_alone + short_alone) / 4_750_000.0)


def test_strategy_based_spread_offset_benefit_by_hand() -> None:
    # Short C100 alone: premium 5 + max(20 % × 100 − 0 OTM, 10 % × 100) = 25 per share → 2,500, net of the
    # 500 proceeds → 2,000. Long C105 alone: paid in full → 300. Together a vertical spread: the strike
    # difference 5 × 100 = 500, net of the 200 credit → 300. Benefit 2,000 + 300 − 300 = 2,000.
    book, requirements, figures = _figures(CALL_SPREAD, "cboe-finra")

    assert requirements.initial_margin[0] == pytest.approx(300.0)
    assert figures.standalone_initial_margin[0] == pytest.approx(2_300.0)
    assert figures.offset_benefit[0] == pytest.approx(2_000.0)
    assert figures.offset_benefit_ratio[0] == pytest.approx(2_000.0 / 2_300.0)
    # Options count at their underlying's notional: 2 contracts × 100 × 100 USD = 20,000 → 300 / 20,000
    assert gross_notional_usd(book)[0] == pytest.approx(20_000.0)
    assert figures.initial_margin_to_notional[0] == pytest.approx(0.015)


def test_inverse_notional_is_contracts_times_size_in_usd() -> None:
    document = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTC-PERPETUAL", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 10}],
        "market": {"index": {"BTC": 95000.0}},
        "accounts": [{"id": "dave", "mode": "cross", "collateral": {"BTC": 1},
                      "positions": [{"instrument": "BTC-PERPETUAL", "quantity": -3000, "entry_price": 94000}]}],
    }
    book, requirements, figures = _figures(document, "binance-coinm")
    assert gross_notional_usd(book)[0] == pytest.approx(30_000.0)
    # IM is in BTC; IM ÷ notional compares them in USD
    assert figures.initial_margin_to_notional[0] == pytest.approx(requirements.initial_margin[0] * 95000.0 / 30_000.0)


def _write(tmp_path: Path, name: str, document: dict[str, object]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_compare_json_keeps_the_contract_fields_and_adds_efficiency(tmp_path: Path) -> None:
    book = _write(tmp_path, "spread.yaml", CALL_SPREAD)

    result = CliRunner().invoke(app, ["compare", str(book), "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"as_of", "results", "not_covered", "efficiency", "history"} <= set(document)
    assert document["as_of"] == AS_OF
    assert [r["profile"] for r in document["results"]] == ["cboe-finra"]
    assert document["history"] is None
    (row,) = document["efficiency"]
    assert {"profile", "model", "account", "currency", "initial_margin", "maintenance_margin", "gross_notional_usd",
            "initial_margin_to_notional", "standalone_initial_margin", "offset_benefit",
            "offset_benefit_ratio"} <= set(row)
    assert row["account"] == "frank" and row["profile"] == "cboe-finra"
    assert row["offset_benefit"] == pytest.approx(2_000.0)
    assert row["initial_margin_to_notional"] == pytest.approx(0.015)


def test_compare_text_shows_the_efficiency_table(tmp_path: Path) -> None:
    book = _write(tmp_path, "pair.yaml", HEDGED_PAIR)

    result = CliRunner().invoke(app, ["compare", str(book), "--models", "binance-usdm"])

    assert result.exit_code == 0, result.output
    assert "capital efficiency" in result.stdout
    assert "IM/notional" in result.stdout and "offset benefit" in result.stdout


def test_report_is_self_contained_with_the_charts(tmp_path: Path) -> None:
    book = _write(tmp_path, "pair.yaml", HEDGED_PAIR)
    report = tmp_path / "out.html"

    result = CliRunner().invoke(app, ["compare", str(book), "--report", str(report), "--json"])

    assert result.exit_code == 0, result.output
    text = report.read_text(encoding="utf-8")
    assert len(text) > 1_000_000  # plotly.js is inlined, not fetched
    assert "Plotly" in text
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", text)
    assert "Margin by model and account" in text
    assert "Efficiency against coverage" in text
    assert "Exceedances over time" in text  # named in a note: no history was given


def test_report_must_be_html(tmp_path: Path) -> None:
    book = _write(tmp_path, "pair.yaml", HEDGED_PAIR)

    result = CliRunner().invoke(app, ["compare", str(book), "--report", str(tmp_path / "out.txt")])

    assert result.exit_code == 2
    assert "--report" in result.stderr and result.stdout == ""


def _history(tmp_path: Path, days: int = 60) -> Path:
    lines = ["date,price.BTC"]
    level = 95000.0
    for day in range(days):
        level *= math.exp(0.03 * math.sin(day * 1.7))  # deterministic ±3 % moves
        lines.append(f"2025-{1 + day // 28:02d}-{1 + day % 28:02d},{level:.2f}")
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not backtest_available(), reason="marginkit.validation.backtest is not installed")
def test_history_adds_coverage_and_the_exceedance_chart(tmp_path: Path) -> None:
    book = _write(tmp_path, "pair.yaml", HEDGED_PAIR)
    report = tmp_path / "out.html"

    result = CliRunner().invoke(app, ["compare", str(book), "--models", "binance-usdm,bybit-linear",
                                      "--history", str(_history(tmp_path)), "--report", str(report), "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["history"]["available"] is True
    for row in document["efficiency"]:
        test = row["backtest"]
        assert 40 <= test["days"] <= 59  # 60 dates (the reader may drop non-trading days), 1-day horizon
        assert 0.0 <= test["coverage"] <= 1.0
        assert test["exceptions"] == round((1 - test["coverage"]) * test["days"])
        assert test["zone"] in ("green", "yellow", "red")
        assert {"peak", "trough", "peak_to_trough"} <= set(test["procyclicality"])
    text = report.read_text(encoding="utf-8")
    assert "Exceedances over time (cumulative backtest exceptions)" in text


def test_history_without_the_backtest_module_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marginkit.comparison as comparison

    monkeypatch.setattr(comparison, "_backtest_module", lambda: None)
    book = _write(tmp_path, "pair.yaml", HEDGED_PAIR)

    result = CliRunner().invoke(app, ["compare", str(book), "--history", str(_history(tmp_path))])

    assert result.exit_code == 0, result.output
    assert "backtesting is not available" in result.stdout

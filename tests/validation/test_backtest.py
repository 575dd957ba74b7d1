"""The day-by-day backtest runner, the margin-series CSV and `marginkit backtest` (validation/)."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from marginkit.book import Book, resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile
from marginkit.models import Requirements
from marginkit.pricing import black76_price
from marginkit.profiles import shipped_profile
from marginkit.validation.backtest import (
    PriceHistory,
    as_price_history,
    backtest_book,
    backtest_document,
    move_in_time,
    move_market,
)

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
DAYS = tuple(date(2024, 1, 1) + timedelta(days=n) for n in range(5))

LONG_INDEX = {
    "as_of": "2024-01-01T00:00:00Z",
    "instruments": [{"id": "IDX-PERP", "type": "perpetual", "underlying": "IDX", "quote": "USD",
                     "settlement": "USD", "inverse": False, "contract_size": 1}],
    "market": {"index": {"IDX": 100.0}, "marks": {"IDX-PERP": 100.0}},
    "accounts": [{"id": "a", "mode": "cross", "collateral": {"USD": 10000},
                  "positions": [{"instrument": "IDX-PERP", "quantity": 10, "entry_price": 100}]}],
}


def constant_model(book: Book, profile: Profile) -> Requirements:
    """A test model: 40 USD initial margin, 20 maintenance, for every account."""
    count = book.account_count
    usd = np.full(count, book.asset_index["USD"], dtype=np.int32)
    return Requirements("constant", profile.name, profile.version, usd, np.full(count, 40.0), np.full(count, 20.0))


def test_runner_realised_loss_and_exceptions_by_hand() -> None:
    # Arrange: long 10 contracts × 1 IDX; index 100, 102, 97, 98, 90; 1-day margin period
    history = PriceHistory(DAYS, {"IDX": np.array([100.0, 102.0, 97.0, 98.0, 90.0])})
    # realised loss of day t = −10 × (S[t+1] − S[t]): −20, +50, −10, +80 (the last day has no next day)
    # requirement 40 every day → exceptions on days 1 (50 > 40) and 3 (80 > 40)

    # Act
    series = backtest_book(parse_book(LONG_INDEX), shipped_profile("binance-usdm"), history, model=constant_model)

    # Assert
    result = series["a"]
    assert result.dates == DAYS[:4]
    assert result.realised_loss == pytest.approx([-20.0, 50.0, -10.0, 80.0])
    assert result.requirement == pytest.approx([40.0] * 4)
    assert result.exceptions.tolist() == [False, True, False, True]


def test_runner_horizon_and_maintenance_measure() -> None:
    # 2-day margin period: loss of day t = −10 × (S[t+2] − S[t]): −10 × (97 − 100) = 30, −10 × (98 − 102) = 40,
    # −10 × (90 − 97) = 70; maintenance margin 20 → every day an exception
    history = PriceHistory(DAYS, {"IDX": np.array([100.0, 102.0, 97.0, 98.0, 90.0])})

    series = backtest_book(parse_book(LONG_INDEX), shipped_profile("binance-usdm"), history, horizon=2,
                           measure="maintenance_margin", model=constant_model)["a"]

    assert series.realised_loss == pytest.approx([30.0, 40.0, 70.0])
    assert series.exceptions.all()


def test_a_model_taking_history_sees_the_past_up_to_each_day() -> None:
    # Arrange: a model whose requirement is 10 × the number of history days it is given
    seen: list[int] = []

    def counting_model(book: Book, profile: Profile, *, history: Any) -> Requirements:
        days = len(as_price_history(history).dates)
        seen.append(days)
        usd = np.array([book.asset_index["USD"]], dtype=np.int32)
        return Requirements("count", profile.name, profile.version, usd, np.array([10.0 * days]), np.array([0.0]))

    history = PriceHistory(DAYS, {"IDX": np.array([100.0, 102.0, 97.0, 98.0, 90.0])})

    # Act
    series = backtest_book(parse_book(LONG_INDEX), shipped_profile("binance-usdm"), history, model=counting_model)

    # Assert: day t sees t + 1 days; requirements 10, 20, 30, 40 against losses −20, 50, −10, 80
    assert seen == [1, 2, 3, 4, 5]
    assert series["a"].requirement == pytest.approx([10.0, 20.0, 30.0, 40.0])
    assert series["a"].exceptions.tolist() == [False, True, False, True]


def test_moving_the_market_reprices_options_at_their_volatility() -> None:
    # Arrange: a call (K 100, 1 year, vol 20 %, r = 0) on IDX at 100; move IDX to 110
    spec = parse_book({
        "as_of": "2024-01-01T00:00:00Z",
        "instruments": [{"id": "IDX-C100", "type": "option", "underlying": "IDX", "quote": "USD", "settlement": "USD",
                         "inverse": False, "contract_size": 1, "option_type": "call", "strike": 100,
                         "expiry": "2024-12-31T00:00:00Z"}],
        "market": {"index": {"IDX": 100.0}, "vols": {"IDX-C100": 0.2}},
        "accounts": [{"id": "a", "mode": "cross", "collateral": {"USD": 1000},
                      "positions": [{"instrument": "IDX-C100", "quantity": 1, "entry_price": 8}]}],
    })
    book = resolve(spec)
    years = book.years[0]

    # Act
    moved = resolve(move_market(spec, book, {"IDX": 110.0}))

    # Assert: Black-76 on the forward 110 at the same 20 % and time to expiry
    assert moved.mark[0] == pytest.approx(float(black76_price(110.0, 100.0, years, 0.2, True, 1.0)), rel=1e-12)
    assert moved.volatility is not None and moved.volatility[0] == pytest.approx(0.2)
    # rolled to a later day, the expiry moves with as_of: the same time to expiry (constant maturity)
    assert resolve(move_in_time(spec, date(2024, 6, 3))).years[0] == pytest.approx(years, rel=1e-12)


def _write_series(path: Path, rows: list[str]) -> Path:
    path.write_text("date,requirement,realised_loss\n" + "\n".join(rows) + "\n")
    return path


def test_series_cli_json_carries_the_contract_fields(tmp_path: Path) -> None:
    # Arrange: 250 calendar days from 2023-01-01 (all in 2023), requirement 100, loss 150 on days 10, 11, 240
    start = date(2023, 1, 1)
    exception_days = {10, 11, 240}
    rows = [f"{start + timedelta(days=n)},100,{150 if n in exception_days else -5}" for n in range(250)]
    path = _write_series(tmp_path / "margin.csv", rows)
    # → 3 exceptions in 250 days; Kupiec at 99 %: LR = 0.09494, p 0.758 (vector backtest.kupiec.3_in_250)

    # Act
    result = CliRunner().invoke(app, ["backtest", "--series", str(path), "--level", "0.99", "--json"])

    # Assert
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["days"] == 250 and document["exceptions"] == 3
    assert document["kupiec"]["lr"] == pytest.approx(0.09494, abs=1e-4)
    assert document["kupiec"]["p_value"] == pytest.approx(0.758, abs=1e-3)
    assert {"lr_ind", "p_value_ind", "lr_cc", "p_value_cc"} <= set(document["christoffersen"])
    # transitions: 0→1 at day 9→10 and 239→240, 1→1 at 10→11, 1→0 at 11→12 and 240→241
    assert (document["christoffersen"]["n01"], document["christoffersen"]["n11"]) == (2, 1)
    assert document["zone"] == "green"
    assert document["by_year"] == {"2023": {"days": 250, "exceptions": 3, "expected_exceptions": pytest.approx(2.5),
                                            "coverage": pytest.approx(247 / 250), "zone": "green"}}
    assert document["exception_dates"] == ["2023-01-11", "2023-01-12", "2023-08-29"]


def test_series_cli_text_table_and_html_report(tmp_path: Path) -> None:
    rows = [f"{date(2023, 12, 20) + timedelta(days=n)},100,{150 if n == 15 else 0}" for n in range(30)]
    path = _write_series(tmp_path / "margin.csv", rows)
    report = tmp_path / "out.html"

    result = CliRunner().invoke(app, ["backtest", "--series", str(path), "--report", str(report)])

    assert result.exit_code == 0, result.stderr
    assert "2023" in result.stdout and "2024" in result.stdout and "2024-01-04" in result.stdout
    page = report.read_text()
    assert "plotly" in page and "exceptions" in page and "<script src=\"http" not in page  # plotly.js inline


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        (["2024-01-01,100,5", "2024-01-02,abc,5"], "row 2, column requirement"),
        (["2024-01-01,100,5", "2024-13-02,100,5"], "row 2, column date"),
        (["2024-01-01,100,5", "2024-01-01,100,5"], "row 2, column date"),
        (["2024-01-01,100,nan"], "row 1, column realised_loss"),
        (["2024-01-01,-1,5", "2024-01-02,100,5"], "row 1, column requirement"),
        (["2024-01-01,100"], "row 1, column realised_loss"),
    ],
)
def test_malformed_series_exits_2_naming_file_row_and_column(tmp_path: Path, rows: list[str], named: str) -> None:
    path = _write_series(tmp_path / "bad.csv", rows)

    result = CliRunner().invoke(app, ["backtest", "--series", str(path), "--json"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert str(path) in result.stderr and named in result.stderr
    assert "Traceback" not in result.stderr


def test_series_without_the_columns_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("day,margin\n2024-01-01,5\n")

    result = CliRunner().invoke(app, ["backtest", "--series", str(path)])

    assert result.exit_code == 2 and "header" in result.stderr and str(path) in result.stderr


def test_book_cli_with_a_shipped_profile_backtests_every_account(tmp_path: Path) -> None:
    # Arrange: the README book (alice long BTC / short ETH, bob short BTC) over 6 days of index levels
    history = tmp_path / "history.csv"
    btc = [95000, 96000, 90000, 91000, 99000, 98000]
    eth = [3300, 3350, 3100, 3200, 3500, 3400]
    days = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23"]  # Mon … Fri, Mon
    history.write_text("date,price.BTC,price.ETH\n" + "".join(
        f"{d},{b},{e}\n" for d, b, e in zip(days, btc, eth, strict=True)))

    # Act
    result = CliRunner().invoke(app, ["backtest", str(EXAMPLES / "usd-perpetuals.yaml"), "--profile", "binance-usdm",
                                      "--history", str(history), "--json"])

    # Assert
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"] == "tiered" and [a["id"] for a in document["accounts"]] == ["alice", "bob"]
    bob = document["accounts"][1]
    assert bob["days"] == 5 and bob["by_year"]["2026"]["days"] == 5
    # bob is short 500 × 0.001 BTC = 0.5 BTC: day 3 → 4 BTC 91,000 → 99,000 loses 0.5 × 8,000 = 4,000 USDC
    # (notional 45,500 USD, far above its initial margin)
    assert "2026-11-19" in bob["exception_dates"]
    assert document["accounts"][0]["measure"] == "initial_margin"


def test_book_cli_needs_history(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["backtest", str(EXAMPLES / "usd-perpetuals.yaml")])

    assert result.exit_code == 2 and "--history" in result.stderr


def test_document_level_must_be_a_probability() -> None:
    history = PriceHistory(DAYS, {"IDX": np.array([100.0, 102.0, 97.0, 98.0, 90.0])})
    series = backtest_book(parse_book(LONG_INDEX), shipped_profile("binance-usdm"), history,
                           model=constant_model)["a"]

    with pytest.raises(Exception, match="level"):
        backtest_document(series, 1.5)


# --- S&P 500 sample: 99 % 1-day historical-simulation VaR of a long index position, 250-day window ---

WINDOW, LEVEL = 250, 0.99


def historical_var_model(book: Book, profile: Profile, *, history: Any) -> Requirements:
    """Test helper, not the `var` model: 99 % 1-day HS VaR of delta-one linear positions on SPX.

    Loss scenarios: today's position value × (−r) for each of the last 250 daily returns r = S[i]/S[i−1] − 1;
    the requirement is their empirical 99 % quantile (numpy's linear interpolation); before 250 returns exist
    the requirement is the largest loss seen so far (the warm-up year, 2005, is not asserted on).
    """
    levels = as_price_history(history).levels["SPX"]
    returns = levels[1:] / levels[:-1] - 1.0
    recent = returns[-WINDOW:]
    exposure = float(np.sum(book.quantity * book.contract_size[book.position_instrument] * book.mark[
        book.position_instrument]))
    losses = -exposure * recent
    var = float(np.quantile(losses, LEVEL)) if recent.size >= WINDOW else float(losses.max(initial=0.0))
    usd = np.array([book.asset_index["USD"]], dtype=np.int32)
    return Requirements("hs-var-test", profile.name, profile.version, usd, np.array([max(var, 0.0)]),
                        np.array([max(var, 0.0)]))


def test_sp500_long_index_hs_var_shows_the_2008_cluster() -> None:
    market_history = pytest.importorskip("marginkit.io.market_history")
    pytest.importorskip("arch")
    sample = market_history.sample_sp500_vix(with_vix=False)
    first = int(np.searchsorted(sample.dates, np.datetime64("2005-01-03")))
    last = int(np.searchsorted(sample.dates, np.datetime64("2011-01-01")))
    history = sample.window(first, last)  # 2005 … 2010: 250 days of warm-up in 2005, then 2006–2010
    spot = float(history.prices["SPX"][0])
    spec = parse_book({
        "as_of": "2005-01-03T00:00:00Z",
        "instruments": [{"id": "SPX-PERP", "type": "perpetual", "underlying": "SPX", "quote": "USD",
                         "settlement": "USD", "inverse": False, "contract_size": 1}],
        "market": {"index": {"SPX": spot}, "marks": {"SPX-PERP": spot}},
        "accounts": [{"id": "long", "mode": "cross", "collateral": {"USD": 1e6},
                      "positions": [{"instrument": "SPX-PERP", "quantity": 1, "entry_price": spot}]}],
    })

    # Act
    series = backtest_book(spec, shipped_profile("binance-usdm"), history, model=historical_var_model)["long"]
    document = backtest_document(series, LEVEL)

    # Assert: the per-year table; 2008 (the crisis) breaches far more than a calm year (2006)
    years = document["by_year"]
    assert {"2006", "2007", "2008", "2009", "2010"} <= set(years)
    assert years["2008"]["exceptions"] > years["2006"]["exceptions"]
    assert years["2008"]["exceptions"] >= 5 and years["2008"]["zone"] in ("yellow", "red")
    assert sum(d.startswith("2008-") for d in document["exception_dates"]) == years["2008"]["exceptions"]
    # on a day's realised loss: −(S[t+1] − S[t]) × 1 contract
    spx = history.prices["SPX"]
    assert series.realised_loss[:3] == pytest.approx(-(spx[1:4] - spx[:3]))
    assert math.isfinite(document["kupiec"]["lr"])


def test_sp500_cli_with_the_var_model_reports_coverage_and_zone_per_year(tmp_path: Path) -> None:
    # Arrange: long 1 × SPX, 2005–2009 closes from the arch sample, the shipped historical-var-99 profile
    # (99 % HS VaR, 2-day margin period, the model warms up until it has enough scenarios)
    market_history = pytest.importorskip("marginkit.io.market_history")
    pytest.importorskip("arch")
    from marginkit.models import MODELS

    if "var" not in MODELS:
        pytest.skip("the var model is not registered")
    sample = market_history.sample_sp500_vix(with_vix=False)
    keep = (sample.dates >= np.datetime64("2005-01-01")) & (sample.dates < np.datetime64("2010-01-01"))
    history = tmp_path / "spx.csv"
    history.write_text("date,price.SPX\n" + "".join(
        f"{d},{p}\n" for d, p in zip(sample.dates[keep], sample.prices["SPX"][keep], strict=True)))
    spot = float(sample.prices["SPX"][keep][0])
    book = tmp_path / "spx.json"
    book.write_text(json.dumps({
        "as_of": "2005-01-03T21:00:00Z",
        "instruments": [{"id": "SPX-PERP", "type": "perpetual", "underlying": "SPX", "quote": "USD",
                         "settlement": "USD", "inverse": False, "contract_size": 1}],
        "market": {"index": {"SPX": spot}, "marks": {"SPX-PERP": spot}},
        "accounts": [{"id": "long", "mode": "cross", "collateral": {"USD": 100000},
                      "positions": [{"instrument": "SPX-PERP", "quantity": 1, "entry_price": spot}]}],
    }))

    # Act
    result = CliRunner().invoke(app, ["backtest", str(book), "--model", "var", "--history", str(history), "--json"])

    # Assert
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["account"] == "long" and document["horizon_days"] == 2
    years = document["by_year"]
    assert years["2008"]["exceptions"] > years["2006"]["exceptions"]
    assert years["2008"]["zone"] == "red" and years["2006"]["zone"] == "green"
    assert {"coverage", "zone", "days", "exceptions"} <= set(years["2008"])


def test_the_readme_sp500_backtest_shows_the_2008_cluster(tmp_path: Path) -> None:
    # examples/sp500-long.yaml: 100 units of the S&P 500, 99 % 1-day historical VaR over 250 days, arch's sample.
    # 2008 (the crisis) exceeds the red threshold for 250 days at 99 % (10 exceptions); a calm year stays green.
    example = Path(__file__).resolve().parents[2] / "examples" / "sp500-long.yaml"
    report = tmp_path / "sp500.html"

    result = CliRunner().invoke(app, ["backtest", str(example), "--profile", "historical-var-99-1d", "--history",
                                      "sample:sp500", "--report", str(report), "--json"])

    assert result.exit_code == 0, result.stderr
    by_year = json.loads(result.stdout)["by_year"]
    assert by_year["2008"]["exceptions"] >= 10 and by_year["2008"]["zone"] == "red"
    assert by_year["2004"]["zone"] == "green"
    assert report.stat().st_size > 100_000  # plotly.js inline: opens offline

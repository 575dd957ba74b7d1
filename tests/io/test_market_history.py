"""Market history from CSV and Parquet: gaps, non-trading days, errors, and the arch sample (io/market_history.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from marginkit.errors import InputError
from marginkit.io.market_history import read_market_history, sample_sp500_vix

# Mon 2024-01-01 … Mon 2024-01-08: Sat 6th and Sun 7th are weekends; Wed 3rd is a holiday row (all empty);
# vol.X is missing on Thu 4th (a gap); price.X is missing on Mon 1st (a leading gap: no earlier value).
CSV = """date,price.X,vol.X
2024-01-02,101,0.21
2024-01-01,,0.20
2024-01-03,,
2024-01-04,103,
2024-01-05,104,0.24
2024-01-06,104,0.24
2024-01-07,104,0.24
2024-01-08,105,0.25
"""


def write(tmp_path: Path, text: str, name: str = "h.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_gaps_and_non_trading_days_forward_filled(tmp_path: Path) -> None:
    # Act
    history = read_market_history(write(tmp_path, CSV))

    # Assert: rows sorted; weekend 6th, 7th and the empty 3rd dropped; the 1st dropped (price not started);
    # vol on the 4th forward-filled from the 2nd (0.21)
    assert [str(d) for d in history.dates] == ["2024-01-02", "2024-01-04", "2024-01-05", "2024-01-08"]
    assert history.prices["X"].tolist() == [101, 103, 104, 105]
    assert history.volatilities["X"].tolist() == [0.21, 0.21, 0.24, 0.25]
    report = history.report
    assert report.rows_read == 8 and report.reordered
    assert report.non_trading_days == ("2024-01-03", "2024-01-06", "2024-01-07")
    assert report.leading_rows_dropped == ("2024-01-01",)
    assert report.filled == {"vol.X": ("2024-01-04",)}
    assert "1 gaps forward-filled: 2024-01-04" in report.summary()


def test_csv_gaps_dropped_on_request(tmp_path: Path) -> None:
    history = read_market_history(write(tmp_path, CSV), gaps="drop")
    # the 4th has no vol: dropped instead of filled
    assert [str(d) for d in history.dates] == ["2024-01-02", "2024-01-05", "2024-01-08"]
    assert history.report.gap_rows_dropped == ("2024-01-04",)


def test_mapped_columns_and_vol_points(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Close,VIX,Other\n2024-01-02,100,20,x\n2024-01-03,101,25,y\n")
    history = read_market_history(path, date_column="Date", columns={"Close": "price.SPX", "VIX": "vol.SPX"},
                                  volatility_scale=0.01)
    assert history.prices["SPX"].tolist() == [100, 101]
    assert history.volatilities["SPX"].tolist() == [0.2, 0.25]


@pytest.mark.parametrize(("text", "field", "message"), [
    ("date,price.X\n2024-01-02,abc\n", "price.X (row 2)", "not a number"),
    ("date,price.X\n2024-01-02,100\n2024-01-03,-1\n", "price.X (row 3, 2024-01-03)", "positive"),
    ("date,price.X\n2024-01-02,100\n2024-01-02,101\n", "date (row 3)", "appears twice"),
    ("date,price.X\n2024-13-02,100\n", "date (row 2)", "ISO date"),
    ("date,close\n2024-01-02,100\n", "close", "unknown column"),
])
def test_bad_input_names_file_column_and_row(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as raised:
        read_market_history(path)
    assert raised.value.field == field and raised.value.file == str(path)


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    # Arrange: the same data as CSV, written as Parquet with a date32 column and nulls for missing values
    import pyarrow as pa
    import pyarrow.parquet as pq

    from_csv = read_market_history(write(tmp_path, CSV))
    rows = [line.split(",") for line in CSV.strip().splitlines()[1:]]
    table = pa.table({
        "date": pa.array([date.fromisoformat(r[0]) for r in rows], pa.date32()),
        "price.X": pa.array([float(r[1]) if r[1] else None for r in rows], pa.float64()),
        "vol.X": pa.array([float(r[2]) if r[2] else None for r in rows], pa.float64()),
    })
    path = tmp_path / "h.parquet"
    pq.write_table(table, path)

    # Act
    history = read_market_history(path)

    # Assert
    np.testing.assert_array_equal(history.dates, from_csv.dates)
    assert history.prices["X"].tolist() == from_csv.prices["X"].tolist()
    assert history.volatilities["X"].tolist() == from_csv.volatilities["X"].tolist()
    assert history.report.filled == from_csv.report.filled


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"a \.csv or"):
        read_market_history(write(tmp_path, "x", "h.txt"))


def test_arch_sample_spans_its_dates() -> None:
    # Act
    both = sample_sp500_vix()
    spx = sample_sp500_vix(with_vix=False)

    # Assert: VIX from 2014-01-03, the S&P 500 to 2018-12-31; VIX's empty holiday rows reported as non-trading
    assert str(both.dates[0]) == "2014-01-03" and str(both.dates[-1]) == "2018-12-31"
    assert len(both) > 1200 and set(both.prices) == {"SPX"} and set(both.volatilities) == {"SPX"}
    assert 0.08 < both.volatilities["SPX"].min() < both.volatilities["SPX"].max() < 0.6  # VIX/100
    assert both.report.non_trading_days and "2014-01-20" in both.report.non_trading_days  # MLK day
    assert str(spx.dates[0]) == "1999-01-04" and str(spx.dates[-1]) == "2018-12-31" and len(spx) == 5031
    assert both.until("2015-12-31").dates[-1] == np.datetime64("2015-12-31")

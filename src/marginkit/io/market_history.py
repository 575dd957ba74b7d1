"""Market history (index levels, implied volatilities, bid-ask spreads, volumes) from CSV or Parquet.

File layout: one row per date; a date column (`date` unless named) in ISO form (YYYY-MM-DD; a time part is
ignored) and named series columns:

- `price.<UNDERLYING>`: index level of an underlying (quote currency per unit, > 0), e.g. `price.SPX`;
- `vol.<UNDERLYING or INSTRUMENT>`: annualised implied volatility as a decimal (0.20 = 20 %), per underlying
  (an at-the-money proxy such as VIX/100 for SPX) or per instrument id; `volatility_scale` converts
  (0.01 for a file in vol points such as VIX);
- `spread.<INSTRUMENT or UNDERLYING>`: quoted bid-ask spread in price units (quote per unit; options: premium);
- `volume.<INSTRUMENT or UNDERLYING>`: traded volume that day, in contracts.

`columns` maps other column names onto these (`{"Close": "price.SPX"}`), and then unmapped columns are ignored.
Empty cells and NA, NaN, null, "." are missing values.

Cleaning, always reported in `MarketHistory.report`: rows are sorted by date (duplicate dates are an error);
non-trading days — weekend dates and rows where every series is missing (holidays written as empty rows) —
are dropped; leading rows before every series has a first value are dropped; other gaps are forward-filled
from the last trading day (`gaps="forward_fill"`, the default) or their rows dropped (`gaps="drop"`). Bad
values (non-numeric, a price or volatility ≤ 0, a negative spread or volume) raise InputError naming the file,
the column and the row.

`sample_sp500_vix()` reads the S&P 500 and VIX daily series that the `arch` package ships, from the installed
package at run time (they are not copied into this repository).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from marginkit.errors import InputError

F64 = NDArray[np.float64]
Dates = NDArray[np.datetime64]
KINDS = ("price", "vol", "spread", "volume")
MISSING = {"", "na", "n/a", "nan", "null", "none", "."}
GapPolicy = Literal["forward_fill", "drop"]


@dataclass(frozen=True)
class HistoryReport:
    """What cleaning did: dates dropped as non-trading days or for gaps, and per column the dates filled."""

    rows_read: int
    non_trading_days: tuple[str, ...] = ()
    leading_rows_dropped: tuple[str, ...] = ()
    gap_rows_dropped: tuple[str, ...] = ()
    filled: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reordered: bool = False

    def summary(self) -> str:
        """One line per action, with counts and the first few dates."""

        def dates(values: Sequence[str]) -> str:
            shown = ", ".join(values[:5])
            return shown + (f", … ({len(values)} in all)" if len(values) > 5 else "")

        lines = [f"{self.rows_read} rows read" + (" (sorted by date)" if self.reordered else "")]
        if self.non_trading_days:
            lines.append(f"{len(self.non_trading_days)} non-trading days dropped: {dates(self.non_trading_days)}")
        if self.leading_rows_dropped:
            lines.append(f"{len(self.leading_rows_dropped)} leading rows dropped (a series had not started): "
                         f"{dates(self.leading_rows_dropped)}")
        if self.gap_rows_dropped:
            lines.append(f"{len(self.gap_rows_dropped)} rows with gaps dropped: {dates(self.gap_rows_dropped)}")
        for column, filled in self.filled.items():
            lines.append(f"{column}: {len(filled)} gaps forward-filled: {dates(filled)}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class MarketHistory:
    """Daily market history: ascending unique `dates` (datetime64[D]) and per-series float64 arrays over them.

    `prices` per underlying (index level), `volatilities` per underlying or instrument id (annualised decimal),
    `spreads` (bid-ask in price units) and `volumes` (contracts per day) per instrument id or underlying.
    Every array has one finite value per date.
    """

    dates: Dates
    prices: Mapping[str, F64]
    volatilities: Mapping[str, F64] = field(default_factory=dict)
    spreads: Mapping[str, F64] = field(default_factory=dict)
    volumes: Mapping[str, F64] = field(default_factory=dict)
    report: HistoryReport = field(default_factory=lambda: HistoryReport(rows_read=0))
    source: str = ""

    def __len__(self) -> int:
        return int(self.dates.shape[0])

    def series(self) -> dict[str, F64]:
        """Every series under its column name (`price.SPX`, `vol.SPX`, …)."""
        named: dict[str, F64] = {}
        for kind, values in (("price", self.prices), ("vol", self.volatilities), ("spread", self.spreads),
                             ("volume", self.volumes)):
            named.update({f"{kind}.{name}": array for name, array in values.items()})
        return named

    def until(self, last: date | str) -> MarketHistory:
        """The history up to and including `last` (a backtest's view on that day)."""
        day = np.datetime64(last if isinstance(last, str) else last.isoformat(), "D")
        end = int(np.searchsorted(self.dates.astype("datetime64[D]"), day, side="right"))
        return self.window(0, end)

    def window(self, begin: int, end: int) -> MarketHistory:
        """Rows begin:end (positional)."""
        return MarketHistory(
            dates=self.dates[begin:end], prices={k: v[begin:end] for k, v in self.prices.items()},
            volatilities={k: v[begin:end] for k, v in self.volatilities.items()},
            spreads={k: v[begin:end] for k, v in self.spreads.items()},
            volumes={k: v[begin:end] for k, v in self.volumes.items()}, report=self.report, source=self.source)


def _parse_date(text: str, file: str, row: int, column: str) -> np.datetime64:
    try:
        return np.datetime64(date.fromisoformat(text.strip()[:10]), "D")
    except ValueError:
        raise InputError(f"not an ISO date: {text!r}", file=file, field=f"{column} (row {row})") from None


def _split(name: str, file: str) -> tuple[str, str]:
    kind, _, series = name.partition(".")
    if kind not in KINDS or not series:
        raise InputError("unknown column: expected date, price.<underlying>, vol.<name>, spread.<name> or "
                         "volume.<name> (or map it with `columns`)", file=file, field=name)
    return kind, series


def build_history(dates: Dates, columns: Mapping[str, F64], *, source: str, rows: Sequence[int] | None = None,
                  gaps: GapPolicy = "forward_fill", volatility_scale: float = 1.0) -> MarketHistory:
    """Clean and validate named series over `dates` (NaN = missing) into a MarketHistory (see the module doc).

    `rows` gives each date's row number in the source for error messages (default: 2, 3, … as in a CSV with
    a header line).
    """
    if gaps not in ("forward_fill", "drop"):
        raise InputError("must be forward_fill or drop", field="gaps")
    if not columns:
        raise InputError("has no series columns", file=source)
    count = int(dates.shape[0])
    row_numbers = np.asarray(rows if rows is not None else np.arange(2, count + 2), dtype=np.int64)
    kinds = {name: _split(name, source) for name in columns}
    values = {name: np.asarray(array, dtype=np.float64).copy() for name, array in columns.items()}
    for name, array in values.items():
        if array.shape != (count,):
            raise InputError(f"has {array.shape[0]} values for {count} dates", file=source, field=name)
    order = np.argsort(dates, kind="stable")
    reordered = bool(np.any(order != np.arange(count)))
    dates = dates[order]
    row_numbers = row_numbers[order]
    values = {name: array[order] for name, array in values.items()}
    duplicate = np.flatnonzero(dates[1:] == dates[:-1])
    if duplicate.size:
        k = int(duplicate[0]) + 1
        raise InputError(f"date {dates[k]} appears twice", file=source, field=f"date (row {int(row_numbers[k])})")
    for name, array in values.items():
        kind = kinds[name][0]
        if kind == "vol":
            array *= volatility_scale
        present = ~np.isnan(array)
        bad = present & ~np.isfinite(array)
        bad |= present & ((array <= 0) if kind in ("price", "vol") else (array < 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            need = "positive and finite" if kind in ("price", "vol") else "non-negative and finite"
            raise InputError(f"must be {need}, got {array[k]!r}", file=source,
                             field=f"{name} (row {int(row_numbers[k])}, {dates[k]})")

    def labels(mask: Any, on: Dates) -> tuple[str, ...]:
        return tuple(str(d) for d in on[mask])

    stacked = np.vstack([values[name] for name in values])
    missing = np.isnan(stacked)
    weekend = ~np.is_busday(dates, weekmask="1111100")
    non_trading = weekend | missing.all(axis=0)
    started = np.logical_and.reduce(np.maximum.accumulate(~missing, axis=1), axis=0)
    leading = ~non_trading & ~started
    keep = ~non_trading & started
    report_non_trading = labels(non_trading, dates)
    report_leading = labels(leading, dates)
    dates = dates[keep]
    stacked = stacked[:, keep]
    missing = missing[:, keep]
    gap_rows: tuple[str, ...] = ()
    filled: dict[str, tuple[str, ...]] = {}
    if gaps == "drop":
        has_gap = missing.any(axis=0)
        gap_rows = labels(has_gap, dates)
        dates = dates[~has_gap]
        stacked = stacked[:, ~has_gap]
    else:
        for k, name in enumerate(values):
            if missing[k].any():
                filled[name] = labels(missing[k], dates)
                index = np.where(~missing[k], np.arange(dates.shape[0]), 0)
                np.maximum.accumulate(index, out=index)
                stacked[k] = stacked[k][index]
    if dates.shape[0] == 0:
        raise InputError("has no trading day with every series present", file=source)
    report = HistoryReport(rows_read=count, non_trading_days=report_non_trading,
                           leading_rows_dropped=report_leading, gap_rows_dropped=gap_rows, filled=filled,
                           reordered=reordered)
    grouped: dict[str, dict[str, F64]] = {kind: {} for kind in KINDS}
    for k, name in enumerate(values):
        kind, series = kinds[name]
        grouped[kind][series] = np.ascontiguousarray(stacked[k])
    return MarketHistory(dates=dates.astype("datetime64[D]"), prices=grouped["price"],
                         volatilities=grouped["vol"], spreads=grouped["spread"], volumes=grouped["volume"],
                         report=report, source=source)


def _rename(names: Sequence[str], date_column: str, columns: Mapping[str, str] | None, file: str) -> dict[str, str]:
    """Source column -> our series name (date column excluded); unmapped columns are ignored when mapping."""
    if date_column not in names:
        raise InputError(f"has no {date_column!r} column", file=file, field=date_column)
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise InputError("column not in the file", file=file, field=unknown[0])
        for target in columns.values():
            _split(target, file)
        return dict(columns)
    return {name: name for name in names if name != date_column and _split(name, file)}


def read_market_history_csv(path: str | Path, *, date_column: str = "date", columns: Mapping[str, str] | None = None,
                            gaps: GapPolicy = "forward_fill", volatility_scale: float = 1.0) -> MarketHistory:
    """Read a CSV market history (module docstring: columns, missing values, cleaning and its report)."""
    file = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputError("is empty", file=file)
            names = [h.strip() for h in header]
            mapping = _rename(names, date_column, columns, file)
            position = {name: names.index(name) for name in mapping}
            date_at = names.index(date_column)
            dates: list[np.datetime64] = []
            data: dict[str, list[float]] = {target: [] for target in mapping.values()}
            for line, record in enumerate(reader, start=2):
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) != len(names):
                    raise InputError(f"has {len(record)} fields, the header {len(names)}", file=file,
                                     field=f"row {line}")
                dates.append(_parse_date(record[date_at], file, line, date_column))
                for source, target in mapping.items():
                    cell = record[position[source]].strip()
                    if cell.lower() in MISSING:
                        data[target].append(math.nan)
                        continue
                    try:
                        data[target].append(float(cell))
                    except ValueError:
                        raise InputError(f"not a number: {cell!r}", file=file,
                                         field=f"{source} (row {line})") from None
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", file=file) from None
    rows = _row_numbers(path)
    return build_history(np.array(dates, dtype="datetime64[D]"),
                         {k: np.array(v, dtype=np.float64) for k, v in data.items()}, source=file,
                         rows=rows[: len(dates)], gaps=gaps, volatility_scale=volatility_scale)


def _row_numbers(path: str | Path) -> list[int]:
    """Line numbers of the non-empty data rows of a CSV (for messages after sorting)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [line for line, record in enumerate(csv.reader(handle), start=1)
                if line > 1 and record and any(cell.strip() for cell in record)]


def read_market_history_parquet(path: str | Path, *, date_column: str = "date",
                                columns: Mapping[str, str] | None = None, gaps: GapPolicy = "forward_fill",
                                volatility_scale: float = 1.0) -> MarketHistory:
    """Read a Parquet market history (same columns and cleaning as the CSV reader; rows numbered from 1)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = str(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"cannot read as Parquet: {error}", file=file) from None
    mapping = _rename(table.column_names, date_column, columns, file)
    raw = table.column(date_column)
    if pa.types.is_timestamp(raw.type) or pa.types.is_date(raw.type):
        dates = np.array(pc.cast(raw, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")
    else:
        dates = np.array([_parse_date(str(v), file, k + 1, date_column) for k, v in enumerate(raw.to_pylist())],
                         dtype="datetime64[D]")
    data: dict[str, F64] = {}
    for source, target in mapping.items():
        column = table.column(source)
        try:
            data[target] = np.array(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        except pa.ArrowException:
            raise InputError(f"not numeric ({column.type})", file=file, field=source) from None
    return build_history(dates, data, source=file, rows=list(range(1, len(dates) + 1)), gaps=gaps,
                         volatility_scale=volatility_scale)


def read_market_history(path: str | Path, **options: Any) -> MarketHistory:
    """Read a market history by extension: .csv or .parquet/.pq (options as for the format's reader)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return read_market_history_csv(path, **options)
    if suffix in (".parquet", ".pq"):
        return read_market_history_parquet(path, **options)
    raise InputError("a market history is a .csv or .parquet file", file=str(path))


def sample_sp500_vix(*, with_vix: bool = True) -> MarketHistory:
    """The S&P 500 (`price.SPX`, daily close) and VIX/100 (`vol.SPX`) series shipped with the `arch` package.

    Read from the installed package at run time. With VIX: the dates from VIX's first to the last date both
    series reach (arch 8: 2014-01-03 … 2018-12-31), non-trading days (VIX's empty holiday rows) dropped and gaps
    forward-filled, both reported; without: the S&P 500 alone (1999-01-04 … 2018-12-31).
    """
    from arch.data import sp500, vix

    spx = sp500.load()
    spx_dates = np.array(spx.index.values, dtype="datetime64[D]")
    columns: dict[str, F64] = {}
    if not with_vix:
        columns["price.SPX"] = np.asarray(spx["Close"].to_numpy(), dtype=np.float64)
        return build_history(spx_dates, columns, source="arch.data.sp500", rows=range(1, spx_dates.size + 1))
    vol = vix.load()
    vix_dates = np.array(vol.index.values, dtype="datetime64[D]")
    dates = np.union1d(spx_dates, vix_dates)
    first, last = vix_dates.min(), min(spx_dates.max(), vix_dates.max())
    dates = dates[(dates >= first) & (dates <= last)]
    price = np.full(dates.size, np.nan)
    level = np.full(dates.size, np.nan)
    spx_keep = (spx_dates >= first) & (spx_dates <= last)
    vix_keep = vix_dates <= last
    price[np.searchsorted(dates, spx_dates[spx_keep])] = spx["Close"].to_numpy()[spx_keep]
    level[np.searchsorted(dates, vix_dates[vix_keep])] = vol["vix"].to_numpy()[vix_keep]
    return build_history(dates, {"price.SPX": price, "vol.SPX": level}, source="arch.data.sp500 + arch.data.vix",
                         rows=range(1, dates.size + 1), volatility_scale=0.01)


__all__ = [
    "HistoryReport",
    "MarketHistory",
    "build_history",
    "read_market_history",
    "read_market_history_csv",
    "read_market_history_parquet",
    "sample_sp500_vix",
]

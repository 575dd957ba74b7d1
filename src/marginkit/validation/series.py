"""Read a margin series produced elsewhere: a CSV with columns `date,requirement,realised_loss`.

One row per day: `date` in ISO form (YYYY-MM-DD, or an ISO date-time whose date is taken), `requirement` the
margin held that day (≥ 0, in any one currency) and `realised_loss` the loss over the following margin period
of risk in the same currency (+ loss, − gain). Dates strictly increase. Other columns are ignored. Bad input
raises InputError naming the file, the row (1 = first data row; the header is line 1 of the file) and column.
"""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np

from marginkit.errors import InputError
from marginkit.validation.backtest import BacktestSeries

COLUMNS = ("date", "requirement", "realised_loss")


def _date(text: str) -> date:
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def _number(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def read_series(path: Path | str) -> BacktestSeries:
    """The series in a `date,requirement,realised_loss` CSV file; errors name file, row and column."""
    name = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as error:
        raise InputError(f"cannot read the series: {error.strerror or error}", file=name) from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError("the series is empty: expected the header date,requirement,realised_loss", file=name)
        columns = [c.strip().lower() for c in header]
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise InputError(f"the header lacks column(s) {', '.join(missing)} (expected date,requirement,"
                             "realised_loss)", file=name, field="header")
        where = {c: columns.index(c) for c in COLUMNS}
        dates: list[date] = []
        requirement: list[float] = []
        loss: list[float] = []
        for row, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue
            values: dict[str, str] = {}
            for column in COLUMNS:
                index = where[column]
                if index >= len(cells) or not cells[index].strip():
                    raise InputError("missing value", file=name, field=f"row {row}, column {column}")
                values[column] = cells[index]
            try:
                day = _date(values["date"])
            except ValueError:
                raise InputError(f"{values['date'].strip()!r} is not an ISO date (YYYY-MM-DD)", file=name,
                                 field=f"row {row}, column date") from None
            if dates and day <= dates[-1]:
                raise InputError(f"dates must strictly increase ({day} after {dates[-1]})", file=name,
                                 field=f"row {row}, column date")
            parsed: dict[str, float] = {}
            for column in ("requirement", "realised_loss"):
                try:
                    parsed[column] = _number(values[column])
                except ValueError:
                    raise InputError(f"{values[column].strip()!r} is not a finite number", file=name,
                                     field=f"row {row}, column {column}") from None
            if parsed["requirement"] < 0:
                raise InputError("a requirement cannot be negative", file=name, field=f"row {row}, column requirement")
            dates.append(day)
            requirement.append(parsed["requirement"])
            loss.append(parsed["realised_loss"])
    if len(dates) < 2:
        raise InputError("a backtest needs at least two days of data", file=name)
    return BacktestSeries(dates=tuple(dates), requirement=np.array(requirement), realised_loss=np.array(loss))

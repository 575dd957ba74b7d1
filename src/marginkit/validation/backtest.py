"""Backtest a margin model day by day over a price history, and summarise any requirement/loss series.

The book runner holds the book's positions fixed (a static portfolio) and, for each day t of the history,
moves the book to day t: `as_of` becomes day t (at the book's time of day) and every expiry, forward date and
deposit time moves with it, so the portfolio keeps its times to expiry (constant maturity); each underlying's
index is set to the history's level, futures and perpetual marks and forwards on it scale with the index,
and options keep their volatility and are repriced (as `marginkit.explain` moves a market). The model margins
the moved book (a model taking a `history=` keyword gets the history up to and including day t, one taking
`previous_margin=` the previous day's initial margin). The realised loss of day t is −(value at t+h − value
at t) of the account's positions (the change of equity excluding collateral), h the margin period of risk in
days, in the account's margin currency of day t. Day t is an exception when that loss exceeds the requirement
of day t.

Reference: BCBS (1996) backtesting framework; ../reference/risk-models.md "Backtesting".
"""

from __future__ import annotations

import bisect
import csv
import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import Book, resolve
from marginkit.domain import BookSpec, InstrumentType, MarketSnapshot
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models import MODELS, Requirements
from marginkit.validation.statistics import by_year, christoffersen, kupiec, procyclicality, traffic_light


def _market_history_reader() -> Any:
    """marginkit.io.market_history.read_market_history where this installation has it, else None."""
    try:
        module = importlib.import_module("marginkit.io.market_history")
    except ImportError:
        return None
    return getattr(module, "read_market_history", None)


read_market_history: Any = _market_history_reader()  # MarketHistory's CSV/Parquet reader, checked at import

F64 = NDArray[np.float64]
MEASURES = ("initial_margin", "maintenance_margin")


@dataclass(frozen=True, eq=False)
class BacktestSeries:
    """Per day: the requirement held and the realised loss over the next margin period (+ loss)."""

    dates: tuple[date, ...]
    requirement: F64
    realised_loss: F64

    def __post_init__(self) -> None:
        if not len(self.dates) == self.requirement.shape[0] == self.realised_loss.shape[0]:
            raise ValueError("dates, requirement and realised_loss must have the same length")

    @property
    def exceptions(self) -> NDArray[np.bool_]:
        """True on days whose realised loss exceeds the requirement."""
        result: NDArray[np.bool_] = self.realised_loss > self.requirement
        return result


def backtest_document(series: BacktestSeries, level: float = 0.99, *, horizon: int = 1) -> dict[str, Any]:
    """The backtest report of a series at a coverage level: counts, Kupiec, Christoffersen, zone, per year.

    `level` is the coverage (0.99: the requirement should cover 99% of days), p = 1 − level.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"the level must be in (0, 1), got {level}", field="--level")
    p = 1.0 - level
    hits = series.exceptions
    days, count = int(hits.size), int(hits.sum())
    pof = kupiec(days, count, p)
    independence = christoffersen(hits, p)
    light = traffic_light(days, p, count)
    cyclicality = procyclicality(series.requirement)
    return {
        "level": level,
        "horizon_days": horizon,
        "start": series.dates[0].isoformat(),
        "end": series.dates[-1].isoformat(),
        "days": days,
        "exceptions": count,
        "expected_exceptions": days * p,
        "coverage": 1.0 - count / days,
        "kupiec": {"lr": pof.lr, "p_value": pof.p_value, "reject_at_5pct": pof.reject},
        "christoffersen": {
            "n00": independence.n00, "n01": independence.n01, "n10": independence.n10, "n11": independence.n11,
            "pi01": independence.pi01, "pi11": independence.pi11,
            "lr_ind": independence.lr_ind, "p_value_ind": independence.p_value_ind,
            "lr_cc": independence.lr_cc, "p_value_cc": independence.p_value_cc,
        },
        "zone": light.zone,
        "traffic_light": {"cumulative_probability": light.cumulative_probability, "yellow_from": light.yellow_from,
                          "red_from": light.red_from, "plus_factor": light.plus_factor},
        "by_year": by_year(series.dates, hits, p),
        "procyclicality": {
            "peak": cyclicality.peak, "trough": cyclicality.trough, "peak_to_trough": cyclicality.peak_to_trough,
            "largest_increase_pct": {str(n): v for n, v in cyclicality.largest_increase_pct.items()},
        },
        "exception_dates": [d.isoformat() for d, hit in zip(series.dates, hits, strict=True) if hit],
    }


@dataclass(frozen=True, eq=False)
class PriceHistory:
    """Daily index levels (USD per unit) per underlying, aligned with `dates` (strictly increasing)."""

    dates: tuple[date, ...]
    levels: Mapping[str, F64] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.dates)
        if any(b <= a for a, b in zip(self.dates, self.dates[1:], strict=False)):
            raise InputError("history dates must strictly increase", field="dates")
        for name, values in self.levels.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (count,):
                raise InputError(f"{count} dates but {values.shape[0]} levels", field=f"levels.{name}")
            if not np.all(np.isfinite(values) & (values > 0)):
                raise InputError("index levels must be finite and positive", field=f"levels.{name}")

    def until(self, day: int | date) -> PriceHistory:
        """The history up to and including day index `day`, or up to and including the date `day`."""
        end = day + 1 if isinstance(day, int) else bisect.bisect_right(self.dates, _as_date(day))
        return PriceHistory(self.dates[:end], {k: np.asarray(v)[:end] for k, v in self.levels.items()})


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return date.fromisoformat(str(value.astype("datetime64[D]")))
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        result: date = value.date()
        return result
    return date.fromisoformat(str(value)[:10])


def as_price_history(history: Any) -> PriceHistory:
    """A PriceHistory from itself, a MarketHistory, or any object with `dates` and a mapping of levels."""
    if isinstance(history, PriceHistory):
        return history
    dates = getattr(history, "dates", None)
    for name in ("levels", "prices", "index", "series", "closes"):
        levels = getattr(history, name, None)
        if dates is not None and isinstance(levels, Mapping):
            return PriceHistory(tuple(_as_date(d) for d in dates),
                                {str(k): np.asarray(v, dtype=np.float64) for k, v in levels.items()})
    frame = getattr(history, "frame", None) if not hasattr(history, "columns") else history
    if frame is not None and hasattr(frame, "columns"):  # a pandas DataFrame indexed by date
        return PriceHistory(tuple(_as_date(d) for d in frame.index),
                            {str(c): frame[c].to_numpy(dtype=np.float64) for c in frame.columns})
    raise InputError(f"cannot read index levels from a {type(history).__name__}", field="--history")


def read_price_history(path: Path | str) -> PriceHistory:
    """Index levels from a CSV file: a `date` column, then one column per underlying (`BTC` or `price.BTC`)."""
    name = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise InputError(f"cannot read the history: {error.strerror or error}", file=name) from None
    if not rows or [c.strip().lower() for c in rows[0]][:1] != ["date"] or len(rows[0]) < 2:
        raise InputError("expected a header `date,UNDERLYING,...`", file=name, field="header")
    underlyings = [c.strip().removeprefix("price.") for c in rows[0][1:]]
    dates: list[date] = []
    values: list[list[float]] = []
    for number, cells in enumerate(rows[1:], start=1):
        if not any(c.strip() for c in cells):
            continue
        try:
            dates.append(_as_date(cells[0].strip()))
        except (ValueError, IndexError):
            raise InputError("not an ISO date", file=name, field=f"row {number}, column date") from None
        row: list[float] = []
        for column, underlying in enumerate(underlyings, start=1):
            try:
                value = float(cells[column])
            except (ValueError, IndexError):
                raise InputError("not a number", file=name, field=f"row {number}, column {underlying}") from None
            if not (math.isfinite(value) and value > 0):
                raise InputError("an index level must be finite and positive", file=name,
                                 field=f"row {number}, column {underlying}")
            row.append(value)
        values.append(row)
    matrix = np.array(values, dtype=np.float64).reshape(len(values), len(underlyings))
    try:
        return PriceHistory(tuple(dates), {u: matrix[:, i] for i, u in enumerate(underlyings)})
    except InputError as error:
        raise error.in_file(name) from None


SAMPLES = ("sample:sp500", "sample:sp500-vix")


def load_history(path: Path | str) -> Any:
    """A history file: a MarketHistory through `marginkit.io.market_history` where installed (CSV/Parquet,
    `price.<UNDERLYING>` columns; models taking `history=` get it), else a PriceHistory (CSV).

    `sample:sp500` (S&P 500 as `price.SPX`, 1999–2018) and `sample:sp500-vix` (with VIX as `vol.SPX`, 2014–2018)
    name the daily series the `arch` package ships, read from the installed package.
    """
    if str(path) in SAMPLES:
        from marginkit.io.market_history import sample_sp500_vix

        return sample_sp500_vix(with_vix=str(path) == "sample:sp500-vix")
    if read_market_history is not None:
        try:
            return read_market_history(path)
        except InputError as error:
            raise error.in_file(str(path)) from None
    return read_price_history(path)


def move_in_time(spec: BookSpec, day: date) -> BookSpec:
    """The spec rolled to `day` at its as_of's time of day: expiries, forward dates and deposits move with it."""
    delta = datetime.combine(day, spec.as_of.timetz()) - spec.as_of
    if not delta:
        return spec
    instruments = tuple(replace(i, expiry=i.expiry + delta) if i.expiry is not None else i for i in spec.instruments)
    accounts = tuple(replace(a, deposits=tuple(replace(d, time=d.time + delta) for d in a.deposits))
                     if a.deposits else a for a in spec.accounts)
    market = spec.market
    forwards = {(underlying, expiry + delta): v for (underlying, expiry), v in market.forwards.items()}
    surfaces = {u: {expiry + delta: smile for expiry, smile in by_expiry.items()}
                for u, by_expiry in market.surfaces.items()}
    moved = MarketSnapshot(index=market.index, marks=market.marks, forwards=forwards, vols=market.vols,
                           surfaces=surfaces, rates=market.rates, open_interest=market.open_interest,
                           chain_status=market.chain_status)
    return BookSpec(as_of=spec.as_of + delta, instruments=instruments, market=moved, accounts=accounts)


def move_market(spec: BookSpec, book: Book, index: Mapping[str, float]) -> BookSpec:
    """The spec with the given underlyings' index levels: marks and forwards on them scale, options reprice.

    `book` is `resolve(spec)` (its options' volatilities are kept). Underlyings absent from `index` stay put.
    """
    market = spec.market
    multiplier = {u: level / market.index[u] for u, level in index.items() if u in market.index}
    underlying_of = {i.id: i.underlying for i in spec.instruments}
    options = {i.id: n for n, i in enumerate(book.instruments) if i.type == InstrumentType.OPTION}
    assert book.volatility is not None
    marks = {identifier: mark * multiplier.get(underlying_of.get(identifier, ""), 1.0)
             for identifier, mark in market.marks.items() if identifier not in options}
    vols = dict(market.vols)
    for identifier, n in options.items():
        vols[identifier] = float(book.volatility[n]) or 1e-9
    forwards = {k: v * multiplier.get(k[0], 1.0) for k, v in market.forwards.items()}
    moved_index = {k: v * multiplier.get(k, 1.0) for k, v in market.index.items()}
    moved = MarketSnapshot(index=moved_index, marks=marks, forwards=forwards, vols=vols, surfaces={},
                           rates=market.rates, open_interest=market.open_interest,
                           chain_status=market.chain_status)
    return replace(spec, market=moved)


ModelCallable = Callable[..., Requirements]


def _history_until(history: Any, levels: PriceHistory, day: int) -> Any:
    """The history given to a model on day index `day`: its own type's `until(date)` where it has one."""
    if callable(getattr(history, "until", None)):
        return history.until(levels.dates[day])
    return levels.until(day)


def margin_period_days(profile: Profile) -> int:
    """The profile's `parameters.margin_period_days` where it states one, else 1."""
    stated = profile.parameters.get("margin_period_days") if isinstance(profile.parameters, Mapping) else None
    return int(stated) if isinstance(stated, int | float) and stated >= 1 else 1


def backtest_inputs(spec: BookSpec, profile: Profile, history: Any, horizon: int | None, measure: str,
                    accounts: Sequence[str] | None) -> tuple[BookSpec, int, PriceHistory, list[str]]:
    """Check a backtest's inputs: the book (narrowed to `accounts`), the horizon in days, the price history and
    the book's underlyings that it moves; each refusal names its option."""
    if horizon is None:
        horizon = margin_period_days(profile)
    if horizon < 1:
        raise InputError("the margin period of risk is at least one day", field="--horizon")
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}", field="--measure")
    levels = as_price_history(history)
    count = len(levels.dates)
    if count <= horizon + 1:
        raise InputError(f"{count} days of history leave too few days for a {horizon}-day backtest", field="--history")
    ids = [a.id for a in spec.accounts]
    if accounts is not None:
        unknown = [a for a in accounts if a not in ids]
        if unknown:
            raise InputError(f"no account {unknown[0]!r} in the book", field="--account")
        spec = replace(spec, accounts=tuple(a for a in spec.accounts if a.id in accounts))
    held = {i.underlying for i in spec.instruments}
    moving = sorted(held & set(levels.levels) & set(spec.market.index))
    if not moving:
        raise InputError(f"the history has none of the book's underlyings ({', '.join(sorted(held))})",
                         field="--history")
    return spec, horizon, levels, moving


def backtest_book(spec: BookSpec, profile: Profile, history: Any, *, horizon: int | None = None,
                  measure: str = "initial_margin", accounts: Sequence[str] | None = None,
                  model: ModelCallable | None = None) -> dict[str, BacktestSeries]:
    """Run `model` (default: the profile's model) day by day over `history`; one series per account.

    Returns, for each account (all, or those named in `accounts`), the requirement (`measure`) of each day t
    with a realised loss over t → t+horizon, i.e. every history day but the last `horizon` (default: the
    profile's `margin_period_days`, else 1). A model taking `history=` that raises InputError (too little
    history) before its first margin is warming up: those first days are not backtested; if it never
    margins, its last error is raised.
    """
    spec, horizon, levels, moving = backtest_inputs(spec, profile, history, horizon, measure, accounts)
    count = len(levels.dates)
    margin: ModelCallable = model or MODELS[profile.model]
    accepted = inspect.signature(margin).parameters
    wants_history, wants_previous = "history" in accepted, "previous_margin" in accepted
    base = resolve(spec)
    accounts_count = base.account_count
    requirement = np.zeros((count, accounts_count))
    requirement_initial = np.zeros((count, accounts_count))
    margin_asset = np.zeros((count, accounts_count), dtype=np.int32)
    position_usd = np.zeros((count, base.position_count))
    asset_price = np.zeros((count, len(base.assets)))
    first: int | None = None  # the first day the model could margin (a model needing history warms up)
    warm_up_error: InputError | None = None
    for t in range(count):
        moved = resolve(move_in_time(move_market(spec, base, {u: float(levels.levels[u][t]) for u in moving}),
                                     levels.dates[t]))
        keywords: dict[str, Any] = {}
        if wants_history:
            keywords["history"] = _history_until(history, levels, t)
        if wants_previous and first is not None:
            keywords["previous_margin"] = requirement_initial[t - 1].copy()
        try:
            result = margin(moved, profile, **keywords)
        except InputError as error:
            if first is None and wants_history:
                warm_up_error = error  # too little history yet: a warm-up day, not backtested
                continue
            raise
        first = t if first is None else first
        requirement_initial[t] = result.initial_margin
        requirement[t] = getattr(result, measure)
        margin_asset[t] = result.margin_asset
        position_usd[t] = moved.position_value * moved.usd_per_settlement()
        asset_price[t] = moved.asset_price
    if first is None and warm_up_error is not None:
        raise warm_up_error  # the model never margined: its own reason
    if first is None or count - horizon - first < 2:
        raise InputError(f"{count} days of history leave too few margined days for a {horizon}-day backtest"
                         + (f" (the model margins from {levels.dates[first]})" if first is not None else ""),
                         field="--history")
    days = count - horizon
    span = np.arange(first, days)
    series: dict[str, BacktestSeries] = {}
    for a, account in enumerate(base.account_ids):
        mine = base.position_account == a
        asset = margin_asset[first:days, a]
        value_now = position_usd[span][:, mine].sum(axis=1) / asset_price[span, asset]
        value_later = position_usd[span + horizon][:, mine].sum(axis=1) / asset_price[span + horizon, asset]
        series[account] = BacktestSeries(levels.dates[first:days], requirement[first:days, a].copy(),
                                         value_now - value_later)
    return series


def book_backtest_document(spec: BookSpec, profile: Profile, history: Any, *, level: float = 0.99,
                           horizon: int | None = None, measure: str = "initial_margin",
                           accounts: Sequence[str] | None = None,
                           model: ModelCallable | None = None,
                           computed: Mapping[str, BacktestSeries] | None = None) -> dict[str, Any]:
    """`marginkit backtest BOOK --json`: the model and profile, one report per account; with one account its
    report's fields also at the top level. `computed`: the series of `backtest_book` already run."""
    if not 0.0 < level < 1.0:
        raise InputError(f"the level must be in (0, 1), got {level}", field="--level")
    results = computed if computed is not None else backtest_book(
        spec, profile, history, horizon=horizon, measure=measure, accounts=accounts, model=model)
    days = horizon if horizon is not None else margin_period_days(profile)
    reports = [{"id": account, "measure": measure, **backtest_document(series, level, horizon=days)}
               for account, series in results.items()]
    document: dict[str, Any] = {"source": "book", "model": profile.model, "profile": profile.name,
                                "profile_version": profile.version}
    if len(reports) == 1:
        document.update({k: v for k, v in reports[0].items() if k != "id"})
        document["account"] = reports[0]["id"]
    document["accounts"] = reports
    return document


__all__ = [
    "BacktestSeries",
    "PriceHistory",
    "as_price_history",
    "backtest_book",
    "backtest_document",
    "book_backtest_document",
    "load_history",
    "margin_period_days",
    "move_in_time",
    "move_market",
    "read_price_history",
]

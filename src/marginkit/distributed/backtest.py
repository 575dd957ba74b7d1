"""`marginkit backtest BOOK … --cluster`: the day-by-day backtest run in blocks of days on a Dask cluster.

`validation.backtest.backtest_book` moves the whole book to each day of the history and margins it; days are
independent of each other (each day's book is built from the spec and that day's index levels), so contiguous
blocks of days run on different workers and the client puts the days back in order and then does exactly what
the single-process runner does: warm-up days, the first margined day, the realised losses and one series per
account, with the same float operations on the same arrays. The statistics (Kupiec, Christoffersen, traffic
light) are computed afterwards from the series, as without a cluster.

A model whose margin carries over from one day to the next (VaR with an anti-procyclicality buffer: the
previous day's margin) is not split by days but by accounts (each account's previous margin is its own); unless
every block of accounts warmed up on the same days and then margined to the end, the backtest runs again as one
block, so that warm-up days and errors are decided on the whole book as in one process.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import resolve
from marginkit.domain import BookSpec
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models import MODELS
from marginkit.models.var_parameters import parse_var_parameters
from marginkit.validation.backtest import (
    BacktestSeries,
    as_price_history,
    backtest_inputs,
    move_in_time,
    move_market,
)

from .cluster import ClusterClient
from .layout import BookContext, PackedAccounts, blocks, empty_spec, pack_accounts, partition_count

F64 = NDArray[np.float64]
DAY_BLOCK = 8  # days per block at least: a block's fixed cost (unpacking the book) is paid once per block


@dataclass
class DayBlock:
    """What a worker returns for days first..first+len(ok)-1: per day margined or not, the arrays, the errors."""

    first: int
    ok: NDArray[np.bool_]
    requirement: F64  # days × accounts: the measure
    requirement_initial: F64  # days × accounts: initial margin (the previous margin of a carrying model)
    margin_asset: NDArray[np.int32]  # days × accounts
    position_usd: F64  # days × positions
    asset_price: F64  # days × assets
    errors: dict[int, InputError] = field(default_factory=dict)  # day index -> the model's error that day


def _history_until(history: Any, dates: Sequence[Any], levels_until: Any, day: int) -> Any:
    """The history a model gets on day `day` (what `backtest_book` passes): its own `until(date)` where it has one."""
    if callable(getattr(history, "until", None)):
        return history.until(dates[day])
    return levels_until(day)


def run_days(context: BookContext, accounts: PackedAccounts, profile: Profile, history: Any,
             days: tuple[int, int], measure: str, carry: bool) -> DayBlock:
    """Margin the book on each day of `days` ([first, end) indices into the history) as `backtest_book` does.

    A day whose margin fails is recorded; the block stops at a failure that follows a margined day (the
    single-process run stops there or earlier) and at any failure of a model that takes no history.
    `carry`: pass the previous margined day's initial margin as `previous_margin` (a model that takes it).
    """
    spec = context.spec(accounts)
    levels = as_price_history(history)
    base = resolve(spec)
    held = {i.underlying for i in spec.instruments}
    moving = sorted(held & set(levels.levels) & set(spec.market.index))
    margin = MODELS[profile.model]
    accepted = inspect.signature(margin).parameters
    wants_history = "history" in accepted
    first_day, end = days
    count = end - first_day
    account_count, position_count = base.account_count, base.position_count
    block = DayBlock(first=first_day, ok=np.zeros(count, dtype=bool),
                     requirement=np.zeros((count, account_count)),
                     requirement_initial=np.zeros((count, account_count)),
                     margin_asset=np.zeros((count, account_count), dtype=np.int32),
                     position_usd=np.zeros((count, position_count)), asset_price=np.zeros((count, len(base.assets))))
    margined = False
    for k, t in enumerate(range(first_day, end)):
        moved = resolve(move_in_time(move_market(spec, base, {u: float(levels.levels[u][t]) for u in moving}),
                                     levels.dates[t]))
        keywords: dict[str, Any] = {}
        if wants_history:
            keywords["history"] = _history_until(history, levels.dates, levels.until, t)
        if carry and margined:
            keywords["previous_margin"] = block.requirement_initial[k - 1].copy()
        try:
            result = margin(moved, profile, **keywords)
        except InputError as error:
            block.errors[t] = error
            if margined or not wants_history:
                break
            continue
        margined = True
        block.ok[k] = True
        block.requirement_initial[k] = result.initial_margin
        block.requirement[k] = getattr(result, measure)
        block.margin_asset[k] = result.margin_asset
        block.position_usd[k] = moved.position_value * moved.usd_per_settlement()
        block.asset_price[k] = moved.asset_price
    return block


def carries_over(profile: Profile) -> bool:
    """Whether the model's margin on one day depends on the previous day's (and so days cannot be split).

    A model taking `previous_margin` does, except VaR without an APC buffer (the previous margin then changes
    nothing: max(C, min(C, P)) = C).
    """
    if "previous_margin" not in inspect.signature(MODELS[profile.model]).parameters:
        return False
    if profile.model == "var":
        parameters = {k: v for k, v in profile.parameters.items() if k != "cross_margining"}
        try:
            return parse_var_parameters(replace(profile, parameters=parameters)).apc.buffer > 0
        except InputError:
            return True  # the model reports its own parameter error, on the whole book
    return True


@dataclass
class _Days:
    """The days of the whole book in order, assembled from blocks (of days, or of accounts)."""

    ok: NDArray[np.bool_]
    requirement: F64
    margin_asset: NDArray[np.int32]
    position_usd: F64
    asset_price: F64
    errors: dict[int, InputError]


def _by_days(client: ClusterClient, spec: BookSpec, profile: Profile, history: Any, count: int, measure: str,
             parts: int | None) -> _Days:
    context = client.scatter(BookContext.of(spec), broadcast=True)
    accounts = client.scatter(pack_accounts(spec, 0, len(spec.accounts)), broadcast=True)
    shared = client.scatter(history, broadcast=True)
    ranges = blocks(count, parts if parts is not None else partition_count(client.workers()), DAY_BLOCK)
    results: list[DayBlock] = client.gather([client.submit(run_days, context, accounts, profile, shared, days,
                                                           measure, False) for days in ranges])
    errors: dict[int, InputError] = {}
    for block in results:
        errors.update(block.errors)
    return _Days(ok=np.concatenate([b.ok for b in results]),
                 requirement=np.concatenate([b.requirement for b in results]),
                 margin_asset=np.concatenate([b.margin_asset for b in results]),
                 position_usd=np.concatenate([b.position_usd for b in results]),
                 asset_price=np.concatenate([b.asset_price for b in results]), errors=errors)


def _same_warm_up(results: Sequence[DayBlock]) -> bool:
    """Whether every block warmed up on the same first days and then margined every day to the end.

    Then the whole book does the same (its checks are each account's), and each account's previous margin is
    the one it had in its block.
    """
    ok = results[0].ok
    first = int(np.argmax(ok)) if ok.any() else ok.size
    return first < ok.size and bool(ok[first:].all()) and all(np.array_equal(b.ok, ok) for b in results[1:])


def _by_accounts(client: ClusterClient, spec: BookSpec, profile: Profile, history: Any, count: int, measure: str,
                 parts: int | None) -> _Days:
    context = client.scatter(BookContext.of(spec), broadcast=True)
    shared = client.scatter(history, broadcast=True)
    ranges = blocks(len(spec.accounts), parts if parts is not None else partition_count(client.workers()))
    packed = client.scatter([pack_accounts(spec, start, end) for start, end in ranges])
    results: list[DayBlock] = client.gather([client.submit(run_days, context, part, profile, shared, (0, count),
                                                           measure, True) for part in packed])
    if len(results) > 1 and not _same_warm_up(results):
        # The blocks disagree on which days the model margins (or it stops): the whole book decides, as one block.
        whole = client.submit(run_days, context, pack_accounts(spec, 0, len(spec.accounts)), profile, shared,
                              (0, count), measure, True)
        results = [whole.result()]
    return _Days(ok=np.logical_and.reduce([b.ok for b in results]),
                 requirement=np.concatenate([b.requirement for b in results], axis=1),
                 margin_asset=np.concatenate([b.margin_asset for b in results], axis=1),
                 position_usd=np.concatenate([b.position_usd for b in results], axis=1),
                 asset_price=results[0].asset_price, errors=results[0].errors)


def backtest_on_cluster(client: ClusterClient, spec: BookSpec, profile: Profile, history: Any, *,
                        horizon: int | None = None, measure: str = "initial_margin",
                        accounts: Sequence[str] | None = None, parts: int | None = None) -> dict[str, BacktestSeries]:
    """`validation.backtest.backtest_book` on the cluster: the same series, bit for bit, and the same errors."""
    spec, horizon, levels, _moving = backtest_inputs(spec, profile, history, horizon, measure, accounts)
    count = len(levels.dates)
    resolve(empty_spec(spec))  # the instruments' and market's own errors, before any day
    wants_history = "history" in inspect.signature(MODELS[profile.model]).parameters
    split = _by_accounts if carries_over(profile) else _by_days
    days = split(client, spec, profile, history, count, measure, parts)

    first: int | None = None
    warm_up_error: InputError | None = None
    for t in range(count):
        if not days.ok[t]:
            error = days.errors.get(t)
            if error is None:  # pragma: no cover - a block stops only after an error at an earlier day
                raise RuntimeError(f"day {t} was not margined and has no error")
            if first is None and wants_history:
                warm_up_error = error
                continue
            raise error
        first = t if first is None else first
    if first is None and warm_up_error is not None:
        raise warm_up_error
    if first is None or count - horizon - first < 2:
        raise InputError(f"{count} days of history leave too few margined days for a {horizon}-day backtest"
                         + (f" (the model margins from {levels.dates[first]})" if first is not None else ""),
                         field="--history")
    position_account = np.repeat(np.arange(len(spec.accounts)), [len(a.positions) for a in spec.accounts])
    end = count - horizon
    span = np.arange(first, end)
    series: dict[str, BacktestSeries] = {}
    for a, account in enumerate(spec.accounts):
        mine = position_account == a
        asset = days.margin_asset[first:end, a]
        value_now = days.position_usd[span][:, mine].sum(axis=1) / days.asset_price[span, asset]
        value_later = days.position_usd[span + horizon][:, mine].sum(axis=1) / days.asset_price[span + horizon, asset]
        series[account.id] = BacktestSeries(levels.dates[first:end], days.requirement[first:end, a].copy(),
                                            value_now - value_later)
    return series


__all__ = ["backtest_on_cluster", "carries_over", "run_days"]

"""The day-by-day backtest in blocks of days (or of accounts) on a cluster equals the single-process runner."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from marginkit.distributed.backtest import backtest_on_cluster, carries_over
from marginkit.distributed.cluster import ClusterClient
from marginkit.errors import InputError
from marginkit.io.market_history import sample_sp500_vix
from marginkit.profiles import shipped_profile
from marginkit.validation.backtest import BacktestSeries, PriceHistory, backtest_book
from tests.distributed.books import index_book, perpetual_spec


def assert_same_series(ours: dict[str, BacktestSeries], theirs: dict[str, BacktestSeries]) -> None:
    assert list(ours) == list(theirs)
    for account, series in theirs.items():
        assert ours[account].dates == series.dates
        assert np.array_equal(ours[account].requirement, series.requirement), account
        assert np.array_equal(ours[account].realised_loss, series.realised_loss), account


def test_tiered_by_blocks_of_days_equals_one_process(cluster: ClusterClient) -> None:
    spec = perpetual_spec(300)
    rng = np.random.default_rng(3)
    days = 90
    dates = tuple(date(2026, 8, 1) + timedelta(days=d) for d in range(days))
    history = PriceHistory(dates, {"BTC": 95_000.0 * np.exp(np.cumsum(rng.normal(0, 0.03, days))),
                                   "ETH": 3_300.0 * np.exp(np.cumsum(rng.normal(0, 0.04, days)))})
    profile = shipped_profile("binance-usdm")
    expected = backtest_book(spec, profile, history, horizon=2)
    assert_same_series(backtest_on_cluster(cluster, spec, profile, history, horizon=2, parts=5), expected)
    maintenance = backtest_book(spec, profile, history, measure="maintenance_margin", accounts=["perp-0000007"])
    assert_same_series(backtest_on_cluster(cluster, spec, profile, history, measure="maintenance_margin",
                                           accounts=["perp-0000007"], parts=3), maintenance)


def test_var_warm_up_days_fall_across_blocks_as_in_one_process(cluster: ClusterClient) -> None:
    full = sample_sp500_vix(with_vix=False)
    history = full.window(len(full) - 420, len(full))  # 250 days of lookback: the first ~250 days warm up
    spec = index_book(5)
    profile = shipped_profile("historical-var-99-1d")
    assert not carries_over(profile)
    expected = backtest_book(spec, profile, history)
    assert 100 < len(next(iter(expected.values())).dates) < 420
    assert_same_series(backtest_on_cluster(cluster, spec, profile, history, parts=9), expected)


def test_a_margin_that_carries_over_runs_by_blocks_of_accounts(cluster: ClusterClient) -> None:
    full = sample_sp500_vix(with_vix=False)
    history = full.window(len(full) - 330, len(full))
    profile = shipped_profile("occ-stans-es")  # 25 % APC buffer: each day's margin reads the previous day's
    assert carries_over(profile)
    parameters = {**profile.parameters, "lookback_days": 250, "minimum_scenarios": 100}
    profile = replace(profile, parameters=parameters)
    spec = index_book(200)  # two blocks of accounts, each warming up on the same first days
    expected = backtest_book(spec, profile, history)
    assert 100 < len(next(iter(expected.values())).dates) < 330
    assert_same_series(backtest_on_cluster(cluster, spec, profile, history, parts=3), expected)


def test_the_same_errors_as_one_process(cluster: ClusterClient) -> None:
    spec = perpetual_spec(70)
    dates = tuple(date(2026, 8, 1) + timedelta(days=d) for d in range(3))
    history = PriceHistory(dates, {"BTC": np.array([1.0, 1.1, 1.2]) * 95_000.0})
    profile = shipped_profile("binance-usdm")
    for arguments in ({"horizon": 2}, {"accounts": ["nobody"]}, {"measure": "equity"}):
        with pytest.raises(InputError) as single:
            backtest_book(spec, profile, history, **arguments)  # type: ignore[arg-type]
        with pytest.raises(InputError) as clustered:
            backtest_on_cluster(cluster, spec, profile, history, **arguments)  # type: ignore[arg-type]
        assert str(clustered.value) == str(single.value)

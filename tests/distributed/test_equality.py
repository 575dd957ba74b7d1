"""Must show (issue 9): one process against a 2-worker LocalCluster on 200,000 accounts, bit for bit.

Deribit portfolio margin (S:PM and X:PM accounts, coin-settled options, futures and perpetuals, collateral in
three assets) and Binance USDⓈ-M tiered margin (cross and isolated accounts: per-position margins, liquidation and
bankruptcy prices). `np.array_equal` on every array: no tolerance.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from marginkit.distributed.cluster import ClusterClient
from marginkit.distributed.layout import blocks
from marginkit.distributed.margin import MarginArrays, account_ranges, margin_arrays_on_cluster, whole_book_arrays
from marginkit.io.market_history import sample_sp500_vix
from marginkit.profiles import shipped_profile
from tests.distributed.books import index_book, perpetual_spec, portfolio_spec

ACCOUNTS = 200_000


def assert_bitwise_equal(ours: MarginArrays, reference: MarginArrays) -> None:
    for name in ("initial_margin", "maintenance_margin", "margin_asset", "equity", "margin_ratio", "status"):
        assert np.array_equal(getattr(ours, name), getattr(reference, name)), name
    assert ours.components.keys() == reference.components.keys()
    for name, values in reference.components.items():
        assert np.array_equal(ours.components[name], values, equal_nan=True), name
    assert (ours.positions is None) == (reference.positions is None)
    if reference.positions is not None and ours.positions is not None:
        assert ours.positions.keys() == reference.positions.keys()
        for name, values in reference.positions.items():
            assert np.array_equal(ours.positions[name], values), name


@pytest.mark.parametrize(("build", "profile"), [(portfolio_spec, "deribit-pm"), (perpetual_spec, "binance-usdm")])
def test_200000_accounts_on_a_local_cluster_equal_one_process(cluster: ClusterClient, build: object,
                                                               profile: str) -> None:
    spec = build(ACCOUNTS)  # type: ignore[operator]
    chosen = shipped_profile(profile)
    began = time.perf_counter()
    reference = whole_book_arrays(spec, chosen)
    single_seconds = time.perf_counter() - began
    began = time.perf_counter()
    ours = margin_arrays_on_cluster(cluster, spec, chosen)
    cluster_seconds = time.perf_counter() - began
    print(f"\n{profile}: {ACCOUNTS:,} accounts, one process {single_seconds:.1f} s, local:2 {cluster_seconds:.1f} s "
          f"({len(blocks(ACCOUNTS, 8))} partitions)")
    assert ours.initial_margin.shape == (ACCOUNTS,)
    assert np.count_nonzero(ours.initial_margin) > ACCOUNTS // 2
    if profile == "binance-usdm":
        assert ours.positions is not None and bool(ours.positions["liquidation_price_defined"].any())
    assert_bitwise_equal(ours, reference)


def test_partitions_fall_on_whole_blocks_of_64_accounts() -> None:
    assert blocks(0, 4) == [(0, 0)]
    assert blocks(10, 4) == [(0, 10)]
    assert blocks(200, 4) == [(0, 64), (64, 128), (128, 200)]
    assert blocks(1_000, 3) == [(0, 384), (384, 768), (768, 1_000)]
    cuts = blocks(200_000, 8)
    assert all(start % 64 == 0 for start, _ in cuts) and cuts[-1][1] == 200_000
    assert all(b - a >= 64 for a, b in cuts)


@pytest.mark.parametrize(("method", "partitions"), [("historical", 3), ("filtered_historical", 3), ("delta_normal", 1)])
def test_var_splits_by_account_except_parametric_methods(cluster: ClusterClient, method: str, partitions: int) -> None:
    history = sample_sp500_vix(with_vix=False)
    base = shipped_profile("historical-var-99")
    profile = replace(base, parameters={**base.parameters, "method": method})
    spec = index_book(200)
    assert len(account_ranges(cluster, spec, profile, parts=4)) == partitions
    ours = margin_arrays_on_cluster(cluster, spec, profile, history=history, parts=4)
    assert_bitwise_equal(ours, whole_book_arrays(spec, profile, history=history))
    assert np.count_nonzero(ours.initial_margin) > 100

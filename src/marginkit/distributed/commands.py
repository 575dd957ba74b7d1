"""What `marginkit margin|compare|backtest … --cluster` run: parse the spec, open the cluster, run, close it.

Files are read here, on the client (book, profile, collateral profile, history), and their contents travel to
the workers, so a remote cluster needs no access to them (files that a profile itself names, such as a VaR
profile's `parameters.history`, are read where the model runs: give them to every worker at the same path).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marginkit.collateral import load_collateral_schedule
from marginkit.collateral.schedule import CollateralSchedule
from marginkit.comparison import Comparison
from marginkit.domain import BookSpec
from marginkit.errors import InputError
from marginkit.io import load_book
from marginkit.io.profile_file import Profile
from marginkit.validation.backtest import BacktestSeries

from .backtest import backtest_on_cluster
from .cluster import ClusterSpec, open_client, parse_cluster
from .compare import compare_on_cluster
from .margin import check_market, margin_on_cluster


def cluster_option(value: str | None) -> ClusterSpec | None:
    """The parsed `--cluster` value (None without one); a bad value is InputError naming --cluster."""
    return parse_cluster(value) if value is not None else None


def _schedule(collateral: str | None) -> CollateralSchedule | None:
    return load_collateral_schedule(collateral) if collateral is not None else None


def margin_command(cluster: ClusterSpec, book: Path, profile: Profile, collateral: str | None) -> dict[str, Any]:
    """`marginkit margin BOOK --cluster …`: the margin document computed on the cluster."""
    book_path = str(book)
    try:
        spec = load_book(book)
    except InputError as error:
        raise error.in_file(book_path) from None
    check_market(spec, book_path)
    schedule = _schedule(collateral)
    with open_client(cluster) as client:
        return margin_on_cluster(client, spec, profile, schedule=schedule, book_path=book_path)


def compare_command(cluster: ClusterSpec, spec: BookSpec, profiles: Sequence[Profile], *, book_path: str,
                    requested: Sequence[str] | None, not_covered: Sequence[dict[str, str]], collateral: str | None,
                    history: Path | None, level: float, horizon: int) -> Comparison:
    """`marginkit compare BOOK --cluster …`: the comparison computed on the cluster."""
    check_market(spec, None)
    schedule = _schedule(collateral)
    with open_client(cluster) as client:
        return compare_on_cluster(client, spec, profiles, book_path=book_path, requested=requested,
                                  schedule=schedule, history=history, level=level, horizon=horizon,
                                  not_covered=not_covered)


def backtest_command(cluster: ClusterSpec, spec: BookSpec, profile: Profile, history: Any, *, horizon: int | None,
                     measure: str, accounts: Sequence[str] | None) -> dict[str, BacktestSeries]:
    """`marginkit backtest BOOK --history … --cluster …`: the series of each account computed on the cluster."""
    with open_client(cluster) as client:
        return backtest_on_cluster(client, spec, profile, history, horizon=horizon, measure=measure,
                                   accounts=accounts)

"""The exact strategy pairing of the `strategy-based` model (cboe-finra) against a greedy pass, by book size.

Run: .venv/bin/python benchmarks/strategy_pairing.py [--legs 10 100 1000] [--runs R]

Each book is one margin account holding N option legs on one stock (calls and puts, long and short, integer
contracts, across strikes around the money and three expiries) plus a long stock position covering part of
the short calls. It is built directly as a `Book` from NumPy arrays with a fixed seed; marks are Black-Scholes
with a smile, in cents. For each size the script prints:

- the candidate pairs (vertical and diagonal spreads, short straddles and strangles, covered calls) that the
  model enumerates, and how many of them save anything (the integer programme's variables);
- the exact pairing: `best_pairing` (SciPy's HiGHS milp) on those candidates, best of a few runs, and the whole
  `margin(book, profile)` call, which enumerates and solves twice (initial and maintenance levels);
- the reference, measured in the same run on the same candidates and standalone charges: a greedy pass that
  takes pairs in order of largest saving per contract first, each as many contracts as its legs still allow;
- the ratio of the times (exact solve ÷ greedy pass) and how much lower the exact total is.

Totals are the initial requirement on the equity footing (net of option proceeds), in USD.
"""

from __future__ import annotations

import os

# Single-threaded: set before numpy and scipy are imported (HiGHS itself runs on one thread by default).
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from scipy.optimize import milp  # noqa: E402
from scipy.special import ndtr  # noqa: E402

from marginkit.book import CROSS, OPTION, SECONDS_PER_YEAR, SPOT, Book, position_values  # noqa: E402
from marginkit.domain import Instrument, InstrumentType, OptionType  # noqa: E402
from marginkit.models import strategy_pairing  # noqa: E402
from marginkit.models.requirements import Requirements  # noqa: E402
from marginkit.models.strategy_based import _candidate_pairs, _standalone, _units, margin  # noqa: E402
from marginkit.models.strategy_pairing import Pair, Pairing, best_pairing  # noqa: E402
from marginkit.models.strategy_parameters import parse_strategy_parameters  # noqa: E402
from marginkit.profiles import shipped_profile  # noqa: E402
from synthetic_books import timed  # noqa: E402

F64 = NDArray[np.float64]
SEED = 20250823
PROFILE = "cboe-finra"
SIZES = (10, 100, 1_000)
RUNS = 3  # timed runs of each measurement (best is kept)
SLOW_SECONDS = 30.0  # a margin() call slower than this is reported as too slow

AS_OF = datetime(2025, 8, 22, 20, 0, tzinfo=UTC)
SPOT_PRICE = 200.0
EXPIRY_DAYS = (28, 56, 119)  # three monthly expiries
STRIKE_STEP = 1.0  # a wide grid of listed strikes, $1 apart: 200 strikes × 2 types × 3 expiries = 1,200 options
STRIKES = np.arange(100.0, 300.0, STRIKE_STEP)
SHARES_PER_CONTRACT = 100.0


# ----------------------------------------------------------------------------------------------------------
# The book
# ----------------------------------------------------------------------------------------------------------


def _black_scholes(spot: float, strike: F64, years: F64, vol: F64, call: NDArray[np.bool_], rate: float) -> F64:
    deviation = vol * np.sqrt(years)
    forward = spot * np.exp(rate * years)
    d1 = (np.log(forward / strike) + 0.5 * deviation**2) / deviation
    d2 = d1 - deviation
    discount = np.exp(-rate * years)
    call_price = discount * (forward * ndtr(d1) - strike * ndtr(d2))
    put_price = discount * (strike * ndtr(-d2) - forward * ndtr(-d1))
    result: F64 = np.where(call, call_price, put_price)
    return result


def make_book(n_legs: int, seed: int) -> Book:
    """One account: `n_legs` option positions on XYZ (distinct instruments) and a long stock position."""
    rng = np.random.default_rng(seed)
    grid_expiry = np.repeat(np.arange(len(EXPIRY_DAYS)), 2 * STRIKES.size)
    grid_call = np.tile(np.repeat([True, False], STRIKES.size), len(EXPIRY_DAYS))
    grid_strike = np.tile(STRIKES, 2 * len(EXPIRY_DAYS))
    if n_legs > grid_strike.size:
        raise SystemExit(f"at most {grid_strike.size} option legs (one per listed option)")
    # Legs: weighted sampling without replacement, most popular near the money and in the front month.
    moneyness = np.log(grid_strike / SPOT_PRICE)
    popularity = np.exp(-(moneyness / 0.2) ** 2) * np.array([1.0, 0.7, 0.5])[grid_expiry] + 0.02
    chosen = np.argsort(-rng.random(grid_strike.size) ** (1.0 / popularity))[:n_legs]
    chosen.sort()
    days = np.array(EXPIRY_DAYS, dtype=np.float64)[grid_expiry[chosen]]
    years = days * 86400.0 / SECONDS_PER_YEAR
    strike = grid_strike[chosen]
    call = grid_call[chosen]
    vol = 0.30 - 0.25 * np.log(strike / SPOT_PRICE) + 0.6 * np.log(strike / SPOT_PRICE) ** 2
    mark = np.maximum(np.round(_black_scholes(SPOT_PRICE, strike, years, vol, call, 0.04), 2), 0.01)
    contracts = np.maximum(np.round(rng.lognormal(math.log(4.0), 0.9, n_legs)), 1.0)
    quantity = np.where(rng.random(n_legs) < 0.5, contracts, -contracts)
    short_call_contracts = float(-quantity[call & (quantity < 0)].sum())
    shares = SHARES_PER_CONTRACT * max(round(0.4 * short_call_contracts), 1)  # covers ~40 % of the short calls

    instruments: list[Instrument] = [Instrument(id="XYZ", type=InstrumentType.SPOT, underlying="XYZ", quote="USD",
                                                settlement="USD", inverse=False, contract_size=1.0, tick_size=0.01)]
    for d, k, c in zip(days, strike, call, strict=True):
        expiry = AS_OF + timedelta(days=float(d))
        instruments.append(Instrument(
            id=f"XYZ-{expiry:%y%m%d}-{'C' if c else 'P'}-{k:.0f}", type=InstrumentType.OPTION, underlying="XYZ",
            quote="USD", settlement="USD", inverse=False, contract_size=SHARES_PER_CONTRACT, tick_size=0.01,
            expiry=expiry, option_type=OptionType.CALL if c else OptionType.PUT, strike=float(k),
            index_class="equity",
        ))
    n_instruments = len(instruments)
    kind = np.array([SPOT] + [OPTION] * n_legs, dtype=np.int8)
    inverse = np.zeros(n_instruments, dtype=bool)
    contract_size = np.array([i.contract_size for i in instruments])
    instrument_mark = np.concatenate([[SPOT_PRICE], mark])
    assets = ("XYZ", "USD")
    asset_price = np.array([SPOT_PRICE, 1.0])
    underlying = np.zeros(n_instruments, dtype=np.int32)
    quote = np.ones(n_instruments, dtype=np.int32)
    settlement = np.ones(n_instruments, dtype=np.int32)

    n = n_legs + 1
    position_instrument = np.arange(n, dtype=np.int32)
    position_account = np.zeros(n, dtype=np.int32)
    position_quantity = np.concatenate([[shares], quantity])
    entry_price = instrument_mark * np.exp(rng.normal(0.0, 0.1, n))
    quote_to_settlement = asset_price[quote] / asset_price[settlement]
    value = position_values(kind, inverse, contract_size, instrument_mark, quote_to_settlement, position_instrument,
                            position_quantity, entry_price)
    collateral = np.array([[0.0, 2.0 * float(np.abs(value).sum()) + 1e6]])
    return Book(
        as_of=AS_OF,
        assets=assets,
        asset_price=asset_price,
        instruments=tuple(instruments),
        kind=kind,
        inverse=inverse,
        contract_size=contract_size,
        tick_size=np.full(n_instruments, 0.01),
        strike=np.concatenate([[0.0], strike]),
        is_call=np.concatenate([[False], call]),
        years=np.concatenate([[0.0], years]),
        underlying=underlying,
        quote=quote,
        settlement=settlement,
        mark=instrument_mark,
        underlying_price=asset_price[underlying] / asset_price[quote],
        open_interest=np.zeros(n_instruments),
        account_ids=("margin-account",),
        account_mode=np.array([CROSS], dtype=np.int8),
        hedge_mode=np.zeros(1, dtype=bool),
        collateral=collateral,
        position_account=position_account,
        position_instrument=position_instrument,
        quantity=position_quantity,
        entry_price=entry_price,
        leverage=np.zeros(n),
        position_side=np.zeros(n, dtype=np.int8),
        isolated_wallet_usd=np.zeros(n),
        has_isolated_wallet=np.zeros(n, dtype=bool),
        position_value=value,
        position_matrix=sparse.csr_matrix((position_quantity, (position_account, position_instrument)),
                                          shape=(1, n_instruments)),
    )


# ----------------------------------------------------------------------------------------------------------
# The reference: a greedy pass, largest saving per contract first
# ----------------------------------------------------------------------------------------------------------


def greedy_pairing(available: F64, standalone: F64, pairs: list[Pair]) -> tuple[float, int]:
    """Total requirement and pairs used when pairs are taken largest saving per contract first, whole contracts.

    Each pair takes as many contracts as both legs still have free (a covered pair `shares_per_contract` shares
    of stock per contract); the rest of every leg stays at its standalone charge.
    """
    left = available.tolist()
    unit = standalone.tolist()
    total = sum(a * s for a, s in zip(left, unit, strict=True))
    ranked = []
    for pair in pairs:
        shares = pair.shares_per_contract or 1.0
        saving = unit[pair.first] + unit[pair.second] * shares - pair.requirement
        if saving > 1e-12:
            ranked.append((saving, pair.first, pair.second, shares))
    ranked.sort(key=lambda row: -row[0])
    used = 0
    for saving, first, second, shares in ranked:
        count = min(left[first], math.floor(left[second] / shares + 1e-9))
        if count > 0:
            left[first] -= count
            left[second] -= count * shares
            total -= count * saving
            used += 1
    return total, used


# ----------------------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------------------


class MilpClock:
    """Stands in for SciPy's milp inside strategy_pairing: calls it and adds up the seconds spent there (HiGHS)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return milp(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


@contextmanager
def clocked_milp() -> Iterator[MilpClock]:
    clock = MilpClock()
    strategy_pairing.milp = clock  # type: ignore[attr-defined]
    try:
        yield clock
    finally:
        strategy_pairing.milp = milp  # type: ignore[attr-defined]


def exact_pairing(available: F64, standalone: F64, pairs: list[Pair], runs: int) -> tuple[float, float, Pairing]:
    """best_pairing on the candidates: (seconds of the fastest run, seconds in milp during it, the pairing)."""
    best = (math.inf, math.inf)
    pairing = None
    for _ in range(runs):
        with clocked_milp() as clock:
            start = time.perf_counter()
            pairing = best_pairing(available, standalone, pairs, integral=True)
            seconds = time.perf_counter() - start
        best = min(best, (seconds, clock.seconds))
    assert pairing is not None
    return best[0], best[1], pairing


def duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.0f} µs"
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1.0 else f"{seconds:,.2f} s"


def measure(n_legs: int, seed: int, runs: int) -> None:
    profile = shipped_profile(PROFILE)
    parameters = parse_strategy_parameters(profile)
    book = make_book(n_legs, seed)
    option = book.kind[book.position_instrument] == OPTION
    long_position = book.quantity > 0
    call = book.is_call[book.position_instrument]
    print(f"{n_legs:,} option legs + {int(book.quantity[~option].sum()):,} shares of XYZ at {SPOT_PRICE:.0f}: "
          f"long calls {int((option & long_position & call).sum())}, short calls "
          f"{int((option & ~long_position & call).sum())}, long puts {int((option & long_position & ~call).sum())}, "
          f"short puts {int((option & ~long_position & ~call).sum())}; "
          f"{int(np.abs(book.quantity[option]).sum()):,} contracts")

    # The model's own steps for one level (initial): standalone charges, candidate pairs, the integer programme.
    legs = np.arange(book.position_count)
    units = _units(book)
    per_unit = _standalone(book, parameters.initial)
    enumeration_times, pairs = timed(lambda: _candidate_pairs(book, legs, per_unit), runs)
    assert isinstance(pairs, list)
    available = units[legs]
    standalone = per_unit[legs]
    useful = sum(
        p.requirement < standalone[p.first] + standalone[p.second] * (p.shares_per_contract or 1.0) - 1e-12
        for p in pairs)
    kinds = {name: sum(p.strategy == name for p in pairs) for name in ("vertical_spread", "straddle", "covered_call",
                                                                        "covered_put")}
    print(f"  candidate pairs: {len(pairs):,} ("
          + ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in kinds.items() if count)
          + f"); {useful:,} save something (the programme's variables); enumeration (_candidate_pairs) best of "
          f"{runs}: {duration(min(enumeration_times))}")

    solve, in_milp, pairing = exact_pairing(available, standalone, pairs, runs)
    greedy_times, greedy = timed(lambda: greedy_pairing(available, standalone, pairs), runs)
    greedy_seconds = min(greedy_times)
    greedy_total, greedy_used = greedy
    exact_total = pairing.total
    exact_used = int(np.count_nonzero(pairing.contracts))
    margin_times, result = timed(lambda: margin(book, profile), runs)
    assert isinstance(result, Requirements)
    call_seconds = min(margin_times)
    base = float(np.dot(available, standalone))
    print(f"  exact (best_pairing), best of {runs}: {duration(solve)} (HiGHS milp {duration(in_milp)}, Python set-up "
          f"{duration(solve - in_milp)}); total {exact_total:,.2f} USD using {exact_used:,} pairs "
          f"(all legs unpaired: {base:,.2f})")
    print(f"  margin(book, profile), best of {runs}: {duration(call_seconds)} (enumerates and solves twice: "
          f"initial and maintenance); initial margin {result.initial_margin[0]:,.2f} USD")
    print(f"  greedy (largest saving per contract first), best of {runs}: {duration(greedy_seconds)}; total "
          f"{greedy_total:,.2f} USD using {greedy_used:,} pairs")
    lower = greedy_total - exact_total
    print(f"  ratio exact / greedy time: {solve / greedy_seconds:,.0f}x; exact total lower by {lower:,.2f} USD "
          f"({100.0 * lower / greedy_total:.2f} % of greedy)")
    if call_seconds > SLOW_SECONDS:
        print(f"  SLOW: margin() took {call_seconds:.1f} s, more than {SLOW_SECONDS:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, nargs="+", default=list(SIZES), help="option legs per book")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs of each measurement (best is kept)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    profile = shipped_profile(PROFILE)
    print(f"marginkit strategy pairing - model strategy-based, profile {profile.name} ({profile.version}), "
          f"seed {args.seed}")
    print(f"one account, options on XYZ ({len(EXPIRY_DAYS)} expiries {', '.join(f'{d}d' for d in EXPIRY_DAYS)}, "
          f"strikes {STRIKES[0]:.0f}-{STRIKES[-1]:.0f} every {STRIKE_STEP:g}, {SHARES_PER_CONTRACT:.0f} shares per "
          "contract) and long stock covering ~40 % of the short calls")
    margin(make_book(10, args.seed + 1), profile)  # warm-up: imports, pydantic, HiGHS
    for n_legs in args.legs:
        started = time.perf_counter()
        measure(n_legs, args.seed + n_legs, args.runs)
        print(f"  ({time.perf_counter() - started:.1f} s for this size, all runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the `deribit-standard` model on a large Deribit BTC options book against a plain Python loop.

Run: .venv/bin/python benchmarks/deribit_standard_throughput.py [--positions N] [--futures F] [--accounts M]
     [--reference-positions K]

The book (coin-settled BTC options, calls and puts, long and short, across many strikes and four expiries, plus
some inverse BTC futures and the perpetual, ~100,000 cross accounts) is built directly as a `Book` from NumPy
arrays with a fixed seed; option marks are Black-76 on the forward with a smile, in BTC. marginkit's
`margin(book, profile)` with the profile deribit-standard-2022-01-11 is timed single-threaded, best of several
runs after a warm-up (the median is printed too). The reference is a plain per-position Python loop over the
same published formulas, reading the same constants from the profile (coin-settled, S is one coin):

    short call  IM = max(0.15 − OTM/S, 0.10) + mark                 MM = 0.075 + mark
    short put   MM = max(0.075, 0.075 × mark) + mark                IM = max(max(0.15 − OTM/S, 0.10) + mark, MM)
    long option IM = MM = 0
    future      IM = (0.02 + 0.00005 × s) × s, MM = (0.01 + 0.00005 × s) × s, s = |q| × size / mark in BTC

each multiplied by |q| × contract_size (options) and summed per account: the venue figures. The requirement on
the equity footing is the venue figure less a short option's mark value. The loop runs on the first whole
accounts covering about K positions, is extrapolated linearly and compared account by account.
"""

from __future__ import annotations

import os

# Single-threaded: set before numpy and scipy are imported.
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from scipy.special import ndtr  # noqa: E402

from marginkit.book import CROSS, FUTURE, OPTION, PERPETUAL, SECONDS_PER_YEAR, Book, position_values  # noqa: E402
from marginkit.domain import Instrument, InstrumentType, OptionType  # noqa: E402
from marginkit.models.deribit_standard import margin  # noqa: E402
from marginkit.models.requirements import Requirements  # noqa: E402
from marginkit.profiles import Profile, shipped_profile  # noqa: E402
from synthetic_books import max_relative_difference, positions_per_account, subset_end, timed  # noqa: E402

F64 = NDArray[np.float64]
SEED = 20250822
PROFILE = "deribit-standard-2022-01-11"
TIMED_RUNS = 10
REFERENCE_RUNS = 3
GOAL = 10_000_000  # positions per second on one core

AS_OF = datetime(2025, 8, 22, 8, 0, tzinfo=UTC)
ASSETS = ("BTC", "USD")
ASSET_PRICE = (64_850.0, 1.0)
INDEX = ASSET_PRICE[0]
FUTURE_CONTRACT_USD = 10.0  # Deribit inverse futures and perpetual: $10 per contract
# Expiries (days from as_of) and their strike grids (low, high, step), Deribit-like: wider and coarser further out.
EXPIRIES = ((7, 50_000, 80_000, 1_000), (28, 40_000, 100_000, 2_000), (91, 30_000, 120_000, 5_000),
            (182, 20_000, 150_000, 10_000))
BASIS_PER_YEAR = 0.06  # forward = index × exp(0.06 × T)


# ----------------------------------------------------------------------------------------------------------
# The book
# ----------------------------------------------------------------------------------------------------------


def _black76_inverse(forward: F64, strike: F64, years: F64, vol: F64, call: NDArray[np.bool_]) -> F64:
    """Undiscounted Black-76 premium per unit of underlying divided by the forward: a coin-settled option in BTC."""
    deviation = vol * np.sqrt(years)
    d1 = (np.log(forward / strike) + 0.5 * deviation**2) / deviation
    d2 = d1 - deviation
    call_price = forward * ndtr(d1) - strike * ndtr(d2)
    put_price = strike * ndtr(-d2) - forward * ndtr(-d1)
    result: F64 = np.where(call, call_price, put_price) / forward
    return result


def _instruments() -> tuple[tuple[Instrument, ...], F64]:
    """The perpetual, four inverse futures and the options of each expiry (calls and puts), with their marks."""
    instruments: list[Instrument] = []
    marks: list[float] = []
    instruments.append(Instrument(id="BTC-PERPETUAL", type=InstrumentType.PERPETUAL, underlying="BTC", quote="USD",
                                  settlement="BTC", inverse=True, contract_size=FUTURE_CONTRACT_USD, tick_size=0.5))
    marks.append(INDEX + 3.5)
    option_rows: list[tuple[str, datetime, float, bool, float]] = []
    for days, low, high, step in EXPIRIES:
        expiry = AS_OF + timedelta(days=days)
        code = expiry.strftime("%d%b%y").upper()
        expiry_years = days * 86400.0 / SECONDS_PER_YEAR
        instruments.append(Instrument(id=f"BTC-{code}", type=InstrumentType.FUTURE, underlying="BTC", quote="USD",
                                      settlement="BTC", inverse=True, contract_size=FUTURE_CONTRACT_USD,
                                      tick_size=2.5, expiry=expiry))
        marks.append(round(INDEX * math.exp(BASIS_PER_YEAR * expiry_years) / 2.5) * 2.5)
        for k in range(low, high + 1, step):
            for is_call in (True, False):
                option_rows.append((f"BTC-{code}-{k}-{'C' if is_call else 'P'}", expiry, float(k), is_call,
                                    expiry_years))
    strike = np.array([r[2] for r in option_rows])
    call = np.array([r[3] for r in option_rows])
    years = np.array([r[4] for r in option_rows])
    forward = INDEX * np.exp(BASIS_PER_YEAR * years)
    moneyness = np.log(strike / forward)
    vol = 0.48 + 0.9 * moneyness**2 - 0.12 * moneyness + 0.05 / np.sqrt(years * 12.0)  # a smile, steeper near in
    option_marks = np.maximum(_black76_inverse(forward, strike, years, vol, call), 0.0001)  # Deribit's min tick
    for (name, expiry, option_strike, is_call, _), mark in zip(option_rows, option_marks, strict=True):
        instruments.append(Instrument(
            id=name, type=InstrumentType.OPTION, underlying="BTC", quote="USD", settlement="BTC", inverse=True,
            contract_size=1.0, tick_size=0.0005, expiry=expiry,
            option_type=OptionType.CALL if is_call else OptionType.PUT, strike=option_strike,
        ))
        marks.append(float(mark))
    return tuple(instruments), np.array(marks)


def make_book(n_options: int, n_futures: int, n_accounts: int, seed: int) -> Book:
    """A Deribit-like BTC book as arrays, positions sorted by account (what `resolve` would build)."""
    rng = np.random.default_rng(seed)
    instruments, mark = _instruments()
    n_instruments = len(instruments)
    kind = np.array([{InstrumentType.OPTION: OPTION, InstrumentType.FUTURE: FUTURE,
                      InstrumentType.PERPETUAL: PERPETUAL}[i.type] for i in instruments], dtype=np.int8)
    option = kind == OPTION
    strike = np.array([i.strike or 0.0 for i in instruments])
    is_call = np.array([i.option_type == OptionType.CALL for i in instruments])
    years = np.array([0.0 if i.expiry is None else (i.expiry - AS_OF).total_seconds() / SECONDS_PER_YEAR
                      for i in instruments])
    contract_size = np.array([i.contract_size for i in instruments])
    zeros = np.zeros(n_instruments, dtype=np.int32)

    # Which legs each account holds: weighted sampling without replacement (one leg per instrument). Options near
    # the money and near expiries are the most popular; futures legs are drawn separately so their count is exact.
    n_positions = n_options + n_futures
    count = positions_per_account(rng, n_positions, np.full(n_accounts, n_instruments, dtype=np.int64), 0.6)
    fewest = np.maximum(count - int(option.sum()), 0)  # futures legs each account holds: fewest to most
    most = np.minimum(count, int((~option).sum()))
    if not int(fewest.sum()) <= n_futures <= int(most.sum()):
        raise SystemExit(f"{n_futures} futures positions do not fit these accounts "
                         f"({int(fewest.sum())} to {int(most.sum())})")
    n_future_legs = np.clip(rng.binomial(count, n_futures / n_positions), fewest, most)
    while (gap := n_futures - int(n_future_legs.sum())) != 0:
        room = np.flatnonzero(n_future_legs < most) if gap > 0 else np.flatnonzero(n_future_legs > fewest)
        chosen = rng.choice(room, size=min(abs(gap), room.size), replace=False)
        n_future_legs[chosen] += 1 if gap > 0 else -1
    n_option_legs = count - n_future_legs
    log_moneyness = np.log(np.where(option, strike, INDEX) / INDEX)
    popularity = np.where(option, np.exp(-(log_moneyness / 0.25) ** 2) / np.sqrt(np.maximum(years, 1e-3)) + 0.2,
                          1.0)
    key = rng.random((n_accounts, n_instruments), dtype=np.float32) ** (1.0 / popularity.astype(np.float32))
    held = np.zeros((n_accounts, n_instruments), dtype=bool)
    for mask, legs in ((option, n_option_legs), (~option, n_future_legs)):
        eligible = np.flatnonzero(mask)
        order = np.argsort(-key[:, eligible], axis=1)
        chosen = np.zeros((n_accounts, eligible.size), dtype=bool)
        np.put_along_axis(chosen, order, np.arange(eligible.size)[None, :] < legs[:, None], axis=1)
        held[:, eligible] = chosen
    del key
    rows, columns = np.nonzero(held)  # row-major: sorted by account
    position_account = rows.astype(np.int32)
    position_instrument = columns.astype(np.int32)
    n = position_instrument.size

    # Sizes: options in lots of 0.1 BTC (median ~1 BTC), 45 % short (writers); futures in $10 contracts.
    is_option = option[position_instrument]
    position_mark = mark[position_instrument]
    option_size = np.maximum(np.round(rng.lognormal(0.0, 1.2, n), 1), 0.1)
    future_contracts = np.maximum(np.round(rng.lognormal(math.log(20_000.0), 1.5, n) / FUTURE_CONTRACT_USD), 1.0)
    size = np.where(is_option, option_size, future_contracts)
    short = rng.random(n) < np.where(is_option, 0.45, 0.5)
    quantity = np.where(short, -size, size)
    entry_price = np.where(is_option, np.maximum(np.round(position_mark * np.exp(rng.normal(0.0, 0.2, n)) / 0.0005)
                                                 * 0.0005, 0.0001),
                           np.round(position_mark * np.exp(rng.normal(0.0, 0.03, n)) / 2.5) * 2.5)

    # Collateral in BTC: a multiple of a rough requirement (20 % of the size of each option, 3 % of futures).
    rough = np.where(is_option, 0.2 * size, 0.03 * size * FUTURE_CONTRACT_USD / position_mark)
    collateral = np.zeros((n_accounts, len(ASSETS)))
    collateral[:, 0] = np.bincount(position_account, weights=rough, minlength=n_accounts) * np.exp(
        rng.normal(0.5, 0.5, n_accounts))

    asset_price = np.array(ASSET_PRICE)
    quote = np.full(n_instruments, 1, dtype=np.int32)
    settlement = zeros.copy()
    quote_to_settlement = asset_price[quote] / asset_price[settlement]
    inverse = np.ones(n_instruments, dtype=bool)
    return Book(
        as_of=AS_OF,
        assets=ASSETS,
        asset_price=asset_price,
        instruments=instruments,
        kind=kind,
        inverse=inverse,
        contract_size=contract_size,
        tick_size=np.array([i.tick_size or 0.0 for i in instruments]),
        strike=strike,
        is_call=is_call,
        years=years,
        underlying=zeros.copy(),
        quote=quote,
        settlement=settlement,
        mark=mark,
        underlying_price=asset_price[zeros] / asset_price[quote],
        open_interest=np.zeros(n_instruments),
        account_ids=tuple(f"acct-{a:07d}" for a in range(n_accounts)),
        account_mode=np.full(n_accounts, CROSS, dtype=np.int8),
        hedge_mode=np.zeros(n_accounts, dtype=bool),
        collateral=collateral,
        position_account=position_account,
        position_instrument=position_instrument,
        quantity=quantity,
        entry_price=entry_price,
        leverage=np.zeros(n),
        position_side=np.zeros(n, dtype=np.int8),
        isolated_wallet_usd=np.zeros(n),
        has_isolated_wallet=np.zeros(n, dtype=bool),
        position_value=position_values(kind, inverse, contract_size, mark, quote_to_settlement,
                                       position_instrument, quantity, entry_price),
        position_matrix=sparse.csr_matrix(
            (quantity, (position_account, position_instrument)), shape=(n_accounts, n_instruments)
        ),
    )


# ----------------------------------------------------------------------------------------------------------
# The reference: a plain per-position Python loop over the published formulas
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Reference:
    venue_initial: list[float]  # per account, in BTC
    venue_maintenance: list[float]
    initial: list[float]  # equity footing: venue figure less short options' mark value
    maintenance: list[float]
    position_initial: list[float]  # per position, equity footing (what marginkit returns per position too)
    position_maintenance: list[float]


def reference_loop(data: dict[str, Any]) -> Reference:
    """Venue and equity-footing IM and MM per position and per account with Python floats and lists."""
    account, instrument, quantity = data["account"], data["instrument"], data["quantity"]
    option, call, strike, mark, size = data["option"], data["call"], data["strike"], data["mark"], data["size"]
    spot = data["spot"]
    c = data["options"]
    initial_rate, minimum_rate = c["initial_rate"], c["minimum_initial_rate"]
    call_mm_rate, put_mm_rate, put_mm_mark_rate = (c["call_maintenance_rate"], c["put_maintenance_rate"],
                                                   c["put_maintenance_mark_rate"])
    floor_scale = c["put_initial_floor_scale"]
    f = data["futures"]
    im_base, im_slope, mm_base, mm_slope = (f["initial_base"], f["initial_slope"], f["maintenance_base"],
                                            f["maintenance_slope"])
    n_accounts = data["accounts"]
    n = len(quantity)
    venue_initial = [0.0] * n_accounts
    venue_maintenance = [0.0] * n_accounts
    initial = [0.0] * n_accounts
    maintenance = [0.0] * n_accounts
    position_initial = [0.0] * n
    position_maintenance = [0.0] * n
    for p in range(n):
        i = instrument[p]
        q = quantity[p]
        a = account[p]
        if option[i]:
            if q >= 0.0:  # a long option needs no margin; its mark value counts toward equity
                continue
            units = -q * size[i]
            m = mark[i]
            k = strike[i]
            if call[i]:
                otm = k - spot if k > spot else 0.0
                im = max(initial_rate - otm / spot, minimum_rate) + m  # S is one coin
                mm = call_mm_rate + m
            else:
                otm = spot - k if spot > k else 0.0
                mm = max(put_mm_rate, put_mm_mark_rate * m) + m
                im = max(max(initial_rate - otm / spot, minimum_rate) + m, floor_scale * mm)
            im *= units
            mm *= units
            paid = m * units  # the short's mark value, which equity already counts (−mark)
            equity_im = im - paid
            equity_mm = mm - paid
        else:
            s = abs(q) * size[i] / mark[i]  # inverse: $ per contract / price = BTC
            im = (im_base + im_slope * s) * s
            mm = (mm_base + mm_slope * s) * s
            equity_im = im
            equity_mm = mm
        venue_initial[a] += im
        venue_maintenance[a] += mm
        initial[a] += equity_im
        maintenance[a] += equity_mm
        position_initial[p] = equity_im
        position_maintenance[p] = equity_mm
    return Reference(venue_initial, venue_maintenance, initial, maintenance, position_initial, position_maintenance)


def reference_inputs(book: Book, profile: Profile, stop: int) -> dict[str, Any]:
    """The first `stop` positions (whole accounts) as Python lists; constants read from the profile."""
    btc = profile.parameters["underlyings"]["BTC"]
    return {
        "accounts": int(book.position_account[stop - 1]) + 1,
        "account": book.position_account[:stop].tolist(),
        "instrument": book.position_instrument[:stop].tolist(),
        "quantity": book.quantity[:stop].tolist(),
        "option": (book.kind == OPTION).tolist(),
        "call": book.is_call.tolist(),
        "strike": book.strike.tolist(),
        "mark": book.mark.tolist(),
        "size": book.contract_size.tolist(),
        "spot": float(book.asset_price[book.asset_index["BTC"]] / book.asset_price[book.asset_index["USD"]]),
        "options": {k: float(v) for k, v in btc["options"].items()},
        "futures": {k: float(v) for k, v in btc["futures"].items()},
    }


# ----------------------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000, help="option positions")
    parser.add_argument("--futures", type=int, default=50_000, help="futures and perpetual positions")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--reference-positions", type=int, default=100_000,
                        help="positions the Python loop runs over (whole accounts), extrapolated linearly")
    parser.add_argument("--runs", type=int, default=TIMED_RUNS, help="timed runs of marginkit (best is kept)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    profile = shipped_profile(PROFILE)
    started = time.perf_counter()
    book = make_book(args.positions, args.futures, args.accounts, args.seed)
    built = time.perf_counter() - started
    n = book.position_count
    option = book.kind[book.position_instrument] == OPTION
    long_option = option & (book.quantity > 0)
    short_option = option & (book.quantity < 0)
    call = book.is_call[book.position_instrument]

    print(f"marginkit deribit-standard throughput - profile {profile.name} ({profile.version}), seed {args.seed}")
    print(f"book: {n:,} positions over {book.account_count:,} accounts, built from arrays in {built:.1f} s")
    n_option_instruments = int((book.kind == OPTION).sum())
    print(f"  instruments: {n_option_instruments} coin-settled BTC options (calls and puts, {len(EXPIRIES)} expiries "
          f"{', '.join(f'{e[0]}d' for e in EXPIRIES)}, strikes {min(e[1] for e in EXPIRIES):,}-"
          f"{max(e[2] for e in EXPIRIES):,}), {len(book.instruments) - n_option_instruments} inverse futures "
          f"(perpetual + {len(EXPIRIES)} dated, $10 contracts); BTC index {INDEX:,.0f} USD")
    print(f"  options: {int(option.sum()):,} positions - long calls {int((long_option & call).sum()):,}, "
          f"long puts {int((long_option & ~call).sum()):,}, short calls {int((short_option & call).sum()):,}, "
          f"short puts {int((short_option & ~call).sum()):,}; futures: {int((~option).sum()):,} positions")
    print(f"  positions per account {n / book.account_count:.1f} on average, "
          f"at most {int(np.bincount(book.position_account).max())}; all cross, margined in BTC")

    # Warm-up: the first call pays for imports, pydantic validation set-up and first-touch page faults.
    small = make_book(2_000, 100, 200, args.seed + 2)
    warm_start = time.perf_counter()
    margin(small, profile)
    margin(book, profile)
    print(f"warm-up: margin() on {small.position_count:,} positions, then once on the full book: "
          f"{time.perf_counter() - warm_start:.2f} s")

    times, result = timed(lambda: margin(book, profile), args.runs)
    seconds = min(times)
    assert isinstance(result, Requirements)
    rate = n / seconds
    goal = "meets" if rate >= GOAL else "misses"
    print(f"marginkit: margin(book, profile) best of {args.runs}: {seconds * 1e3:.1f} ms "
          f"(median {statistics.median(times) * 1e3:.1f} ms) -> {rate / 1e6:.2f} M positions/s "
          f"(median {n / statistics.median(times) / 1e6:.2f} M/s; {goal} the goal of {GOAL / 1e6:.0f} M/s, one core)")
    print(f"  totals: IM {result.initial_margin.sum():,.2f} BTC, MM {result.maintenance_margin.sum():,.2f} BTC "
          f"(venue IM {result.components['venue_initial_margin'].sum():,.2f} BTC, "
          f"venue MM {result.components['venue_maintenance_margin'].sum():,.2f} BTC)")

    # Peak memory of one call (tracemalloc sees NumPy's allocations; timed separately, it slows them).
    tracemalloc.start()
    margin(book, profile)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # Reference: the Python loop over the first whole accounts, extrapolated linearly.
    stop = subset_end(book, args.reference_positions)
    data = reference_inputs(book, profile, stop)
    loop_times, reference = timed(lambda: reference_loop(data), REFERENCE_RUNS)
    loop_seconds = min(loop_times)
    loop_rate = stop / loop_seconds
    print(f"reference: Python loop over the first {stop:,} positions ({data['accounts']:,} whole accounts), "
          f"best of {REFERENCE_RUNS}: {loop_seconds:.3f} s -> {loop_rate:,.0f} positions/s; "
          f"extrapolated linearly to {n:,} positions: {n / loop_rate:.2f} s")
    print(f"speed ratio marginkit / Python loop: {rate / loop_rate:,.0f}x")
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory: {peak / 2**20:.0f} MiB allocated at peak during one margin() call (tracemalloc); "
          f"process peak RSS {maxrss_kib / 1024:.0f} MiB (book, warm-up, reference included)")

    accounts = data["accounts"]
    print(f"agreement on the {accounts:,} subset accounts (loop vs marginkit on the full book), max relative diff:")
    for label, ours, theirs in (
        ("venue initial margin", result.components["venue_initial_margin"], reference.venue_initial),
        ("venue maintenance margin", result.components["venue_maintenance_margin"], reference.venue_maintenance),
        ("initial margin (equity)", result.initial_margin, reference.initial),
        ("maintenance margin (eq.)", result.maintenance_margin, reference.maintenance),
    ):
        print(f"  {label:<25} {max_relative_difference(ours[:accounts], np.array(theirs)):.2e}")
    figures = result.positions
    assert figures is not None
    print(f"  per position, over the {stop:,} subset positions: initial margin "
          f"{max_relative_difference(figures.initial_margin[:stop], np.array(reference.position_initial)):.2e}, "
          "maintenance margin "
          f"{max_relative_difference(figures.maintenance_margin[:stop], np.array(reference.position_maintenance)):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

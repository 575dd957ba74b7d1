"""Throughput of the `tiered` model on a large Binance USDⓈ-M book against a plain per-position Python loop.

Run: .venv/bin/python benchmarks/tiered_throughput.py [--positions N] [--accounts M] [--reference-positions K]

The book (BTC and ETH linear perpetuals, long and short, mostly cross accounts with some isolated ones and
some hedge-mode accounts, notionals spanning several brackets) is built directly as a `Book` from NumPy
arrays with a fixed seed. marginkit's `margin(book, profile)` (initial and maintenance margin, liquidation
and bankruptcy prices for every position) is timed single-threaded, best of several runs after a warm-up
that compiles the numba kernels. The reference is a plain Python loop over the same formulas (notional,
bracket lookup, IM = notional / leverage, MM = notional × rate − amount, Binance's liquidation price with
the bracket looked up again at the liquidation price until it settles), run on the first whole accounts
covering about K positions in the same run and extrapolated linearly; the script prints the ratio of the
two throughputs and how far the loop's figures are from marginkit's on that subset.

Notes: ten positions per account on average need more than the venue's two BTC and two ETH listings (an
account holds one leg per instrument and side), so each underlying gets eight perpetual listings sharing its
brackets. The loop's inputs are converted to Python lists before it is timed. Like marginkit, the loop counts
a price at or below 1e-9 of the mark as none (rounding noise of a root at 0).
"""

from __future__ import annotations

import os

# Single-threaded: set before numpy, scipy and numba are imported.
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
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from marginkit.book import CROSS, ISOLATED, PERPETUAL, Book, position_values  # noqa: E402
from marginkit.domain import Instrument, InstrumentType  # noqa: E402
from marginkit.models.requirements import Requirements  # noqa: E402
from marginkit.models.tiered import margin  # noqa: E402
from marginkit.profiles import Profile, shipped_profile  # noqa: E402
from synthetic_books import max_relative_difference, timed  # noqa: E402

F64 = NDArray[np.float64]
SEED = 20250821
PROFILE = "binance-usdm"
TIMED_RUNS = 10
REFERENCE_RUNS = 3
# A root at or below this fraction of the mark is rounding noise of a root at 0: no price (marginkit's rule).
NO_PRICE_BELOW = 1e-9

# Assets and their USD index prices; USDC a little under par so that quote → USD conversion is exercised.
ASSETS = ("BTC", "ETH", "USDT", "USDC", "USD")
ASSET_PRICE = (64_850.0, 3_215.0, 1.0, 0.9998, 1.0)
# Linear perpetuals per underlying: the venue's USDT and USDC listings plus further listings on the same
# underlying (same brackets), so that ~10 legs per account fit the one-leg-per-instrument-and-side rule.
LISTINGS_PER_UNDERLYING = 8
SIDE_BOTH, SIDE_LONG, SIDE_SHORT = 0, 1, 2  # book.SIDE_CODES
LEVERAGE_CHOICES = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0)  # 0: not set (max)
LEVERAGE_WEIGHTS = (0.03, 0.04, 0.05, 0.08, 0.18, 0.22, 0.15, 0.08, 0.08, 0.04, 0.03, 0.02)


# ----------------------------------------------------------------------------------------------------------
# The book
# ----------------------------------------------------------------------------------------------------------


def _instruments() -> tuple[tuple[Instrument, ...], F64]:
    """Linear perpetuals on BTC and ETH (USDT- or USDC-quoted, contract size 1 coin) and their marks."""
    rng = np.random.default_rng(SEED + 1)
    instruments: list[Instrument] = []
    marks: list[float] = []
    for underlying, tick in (("BTC", 0.1), ("ETH", 0.01)):
        index = ASSET_PRICE[ASSETS.index(underlying)]
        for k in range(LISTINGS_PER_UNDERLYING):
            quote = "USDT" if k % 2 == 0 else "USDC"
            suffix = "" if k < 2 else f"-L{k // 2}"
            instruments.append(Instrument(
                id=f"{underlying}{quote}{suffix}", type=InstrumentType.PERPETUAL, underlying=underlying,
                quote=quote, settlement=quote, inverse=False, contract_size=1.0, tick_size=tick,
            ))
            quote_price = ASSET_PRICE[ASSETS.index(quote)]
            basis = 1.0 + rng.normal(0.0, 2e-4)
            marks.append(round(index / quote_price * basis / tick) * tick)
    return tuple(instruments), np.array(marks)


def _positions_per_account(
    rng: np.random.Generator, n_positions: int, capacity: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Positions per account: lognormal around the mean, at least 1, at most `capacity`, summing to n_positions."""
    n_accounts = capacity.size
    if n_positions < n_accounts or n_positions > int(capacity.sum()):
        raise SystemExit(f"{n_positions} positions do not fit {n_accounts} accounts (1 to {int(capacity.max())} "
                         "legs each)")
    weight = rng.lognormal(0.0, 0.5, n_accounts)
    count = np.clip(np.rint(n_positions * weight / weight.sum()), 1, capacity).astype(np.int64)
    while (gap := n_positions - int(count.sum())) != 0:
        room = np.flatnonzero(count < capacity) if gap > 0 else np.flatnonzero(count > 1)
        chosen = rng.choice(room, size=min(abs(gap), room.size), replace=False)
        count[chosen] += 1 if gap > 0 else -1
    return count


def make_book(n_positions: int, n_accounts: int, seed: int) -> Book:
    """A Binance USDⓈ-M-like book as arrays, positions sorted by account (what `resolve` would build)."""
    rng = np.random.default_rng(seed)
    instruments, mark = _instruments()
    n_instruments = len(instruments)
    asset_price = np.array(ASSET_PRICE)
    asset_of = {name: i for i, name in enumerate(ASSETS)}
    underlying = np.array([asset_of[i.underlying] for i in instruments], dtype=np.int32)
    quote = np.array([asset_of[i.quote] for i in instruments], dtype=np.int32)
    settlement = np.array([asset_of[i.settlement] for i in instruments], dtype=np.int32)
    kind = np.full(n_instruments, PERPETUAL, dtype=np.int8)
    inverse = np.zeros(n_instruments, dtype=bool)
    contract_size = np.ones(n_instruments)
    tick_size = np.array([i.tick_size for i in instruments], dtype=np.float64)

    # Accounts: mostly cross, some isolated; some in hedge mode (separate long and short legs).
    account_mode = np.where(rng.random(n_accounts) < 0.85, CROSS, ISOLATED).astype(np.int8)
    hedge_mode = rng.random(n_accounts) < 0.12
    slots = 2 * n_instruments  # slot s: instrument s % n_instruments, leg s // n_instruments (hedge mode)
    capacity = np.where(hedge_mode, slots, n_instruments).astype(np.int64)
    count = _positions_per_account(rng, n_positions, capacity)

    # Which legs each account holds: weighted sampling without replacement (USDT listings most popular).
    popularity = np.array([(3.0 if k == 0 else 1.5 if k == 1 else 1.0) * (1.4 if i < LISTINGS_PER_UNDERLYING else 1.0)
                           for i in range(n_instruments) for k in [i % LISTINGS_PER_UNDERLYING]])
    key = rng.random((n_accounts, slots)) ** (1.0 / np.tile(popularity, 2))
    key[~hedge_mode, n_instruments:] = -1.0
    order = np.argsort(-key, axis=1)
    held = np.zeros((n_accounts, slots), dtype=bool)
    np.put_along_axis(held, order, np.arange(slots)[None, :] < count[:, None], axis=1)
    position_account, slot = np.nonzero(held)  # row-major: sorted by account
    position_account = position_account.astype(np.int32)
    position_instrument = (slot % n_instruments).astype(np.int32)
    hedge = hedge_mode[position_account]
    long_leg = slot < n_instruments
    is_long = np.where(hedge, long_leg, rng.random(n_positions) < 0.55)
    position_side = np.where(hedge, np.where(long_leg, SIDE_LONG, SIDE_SHORT), SIDE_BOTH).astype(np.int8)

    # Sizes: lognormal notionals (median ~20k USD) reaching the higher brackets; lots of 0.001 coin.
    position_mark = mark[position_instrument]
    notional_usd = np.minimum(rng.lognormal(math.log(20_000.0), 1.9, n_positions), 1.5e8)
    size = np.maximum(np.round(notional_usd / (position_mark * asset_price[quote[position_instrument]]), 3), 0.001)
    quantity = np.where(is_long, size, -size)
    tick = tick_size[position_instrument]
    entry_price = np.round(position_mark * np.exp(rng.normal(0.0, 0.04, n_positions)) / tick) * tick
    leverage = rng.choice(np.array(LEVERAGE_CHOICES), size=n_positions, p=np.array(LEVERAGE_WEIGHTS))

    # Collateral: a multiple of the initial margin at entry (some accounts thin), in USDT and partly USDC;
    # isolated one-way accounts assign a wallet to about half their positions, the rest default to IM at entry.
    fx = asset_price[quote[position_instrument]]
    im_entry_usd = size * entry_price * fx / np.where(leverage > 0, leverage, 125.0)
    isolated = account_mode[position_account] == ISOLATED
    has_isolated_wallet = isolated & ~hedge & (rng.random(n_positions) < 0.5)
    isolated_wallet_usd = np.where(has_isolated_wallet, im_entry_usd * rng.uniform(1.0, 2.5, n_positions), 0.0)
    account_im = np.bincount(position_account, weights=im_entry_usd, minlength=n_accounts)
    account_assigned = np.bincount(position_account, weights=isolated_wallet_usd, minlength=n_accounts)
    usd = account_im * np.exp(rng.normal(0.4, 0.7, n_accounts)) + account_assigned
    usdc_share = np.where(rng.random(n_accounts) < 0.3, rng.uniform(0.1, 0.9, n_accounts), 0.0)
    collateral = np.zeros((n_accounts, len(ASSETS)))
    collateral[:, asset_of["USDT"]] = np.where(usdc_share > 0, usd * (1.0 - usdc_share), usd)
    collateral[:, asset_of["USDC"]] = usd * usdc_share / asset_price[asset_of["USDC"]]
    # Isolated wallets are assigned in USDT: make sure the USDT balance covers them (the book format's rule).
    collateral[:, asset_of["USDT"]] = np.maximum(collateral[:, asset_of["USDT"]], account_assigned * 1.05)

    quote_to_settlement = asset_price[quote] / asset_price[settlement]
    return Book(
        as_of=datetime(2025, 8, 21, 8, 0, tzinfo=UTC),
        assets=ASSETS,
        asset_price=asset_price,
        instruments=instruments,
        kind=kind,
        inverse=inverse,
        contract_size=contract_size,
        tick_size=tick_size,
        strike=np.zeros(n_instruments),
        is_call=np.zeros(n_instruments, dtype=bool),
        years=np.zeros(n_instruments),
        underlying=underlying,
        quote=quote,
        settlement=settlement,
        mark=mark,
        underlying_price=asset_price[underlying] / asset_price[quote],
        open_interest=np.zeros(n_instruments),
        account_ids=tuple(f"acct-{a:07d}" for a in range(n_accounts)),
        account_mode=account_mode,
        hedge_mode=hedge_mode,
        collateral=collateral,
        position_account=position_account,
        position_instrument=position_instrument,
        quantity=quantity,
        entry_price=entry_price,
        leverage=leverage,
        position_side=position_side,
        isolated_wallet_usd=isolated_wallet_usd,
        has_isolated_wallet=has_isolated_wallet,
        position_value=position_values(kind, inverse, contract_size, mark, quote_to_settlement,
                                       position_instrument, quantity, entry_price),
        position_matrix=sparse.csr_matrix(
            (quantity, (position_account, position_instrument)), shape=(n_accounts, n_instruments)
        ),
    )


# ----------------------------------------------------------------------------------------------------------
# The reference: a plain per-position Python loop over the same formulas
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Reference:
    initial_margin: list[float]
    maintenance_margin: list[float]
    liquidation_price: list[float]  # NaN where undefined (no positive finite price)
    bankruptcy_price: list[float]
    fallbacks: int  # liquidation prices where the bracket iteration did not settle and all brackets were tried


def bracket_tables(profile: Profile, instruments: tuple[Instrument, ...]) -> list[tuple[list[float], ...]]:
    """Per instrument: (caps, rates, amounts, max leverages) read straight from the profile's parameters."""
    tables = {}
    for key, table in profile.parameters["underlyings"].items():
        brackets = table["brackets"]
        tables[key] = (
            [math.inf if b.get("max_notional") is None else float(b["max_notional"]) for b in brackets],
            [float(b["maintenance_rate"]) for b in brackets],
            [float(b["maintenance_amount"]) for b in brackets],
            [float(b["max_leverage"]) for b in brackets],
        )
    return [tables[i.underlying] for i in instruments]


def bracket_of(caps: list[float], notional: float) -> int:
    """The first bracket whose cap the notional does not exceed (the last one beyond every cap)."""
    b = 0
    last = len(caps) - 1
    while b < last and notional > caps[b]:
        b += 1
    return b


def liquidation_price(legs: list[tuple[float, float, float, tuple[list[float], ...], int]], wallet: float,
                      floor: float) -> tuple[float, bool]:
    """Binance's liquidation price for one contract (one leg, or a hedge-mode long and short leg).

    LP = (WB − TMM1 + UPNL1 + Σ cum − Σ side·size·EP) / (Σ size·MMR − Σ side·size), in quote units, with
    `wallet` = WB − TMM1 + UPNL1 and each leg's bracket (MMR, cum) looked up again at the notional at LP
    until the brackets settle. A price at or below `floor` (1e-9 of the mark: rounding noise of a root at 0)
    is none. Returns (price or NaN, whether the iteration had to fall back to a scan).
    """
    brackets = [leg[4] for leg in legs]
    for _ in range(50):
        numerator = wallet
        denominator = 0.0
        for (side, size, entry, (_, rates, amounts, _), _), b in zip(legs, brackets, strict=True):
            numerator += amounts[b] - side * size * entry
            denominator += size * rates[b] - side * size
        if denominator == 0.0:
            return math.nan, False
        price = numerator / denominator
        settled = [bracket_of(leg[3][0], leg[1] * price) for leg in legs]
        if settled == brackets:
            return (price if price > floor and math.isfinite(price) else math.nan), False
        brackets = settled
    # The iteration cycles: try every combination of brackets, keep the self-consistent solution.
    counts = [len(leg[3][0]) for leg in legs]
    combinations = [[b] for b in range(counts[0])]
    for n in counts[1:]:
        combinations = [[*c, b] for c in combinations for b in range(n)]
    for combination in combinations:
        numerator = wallet
        denominator = 0.0
        for (side, size, entry, (_, rates, amounts, _), _), b in zip(legs, combination, strict=True):
            numerator += amounts[b] - side * size * entry
            denominator += size * rates[b] - side * size
        if denominator != 0.0:
            price = numerator / denominator
            if [bracket_of(leg[3][0], leg[1] * price) for leg in legs] == combination:
                return (price if price > floor and math.isfinite(price) else math.nan), True
    return math.nan, True


def reference_loop(data: dict[str, Any]) -> Reference:
    """IM, MM, liquidation and bankruptcy prices per position with Python floats, lists and dicts."""
    account, instrument, quantity = data["account"], data["instrument"], data["quantity"]
    entry_price, leverage_set, mode = data["entry_price"], data["leverage"], data["mode"]
    hedge, wallet_usd, has_wallet = data["hedge"], data["wallet_usd"], data["has_wallet"]
    mark, quote_usd, tables, collateral_usd = data["mark"], data["quote_usd"], data["tables"], data["collateral_usd"]
    n = len(quantity)
    initial = [0.0] * n
    maintenance = [0.0] * n
    pnl = [0.0] * n
    bracket_now = [0] * n
    wallet = [0.0] * n
    account_maintenance: dict[int, float] = {}
    account_pnl: dict[int, float] = {}
    legs_of: dict[tuple[int, int], list[int]] = {}

    # Pass 1: notional, bracket, IM, MM, unrealised P&L per position; the account's sums.
    for p in range(n):
        i = instrument[p]
        caps, rates, amounts, max_leverages = tables[i]
        fx = quote_usd[i]
        size = abs(quantity[p])
        notional = size * mark[i]
        b = bracket_of(caps, notional)
        leverage = min(leverage_set[p], max_leverages[b]) if leverage_set[p] > 0 else max_leverages[b]
        initial[p] = notional / leverage * fx
        maintenance[p] = max(notional * rates[b] - amounts[b], 0.0) * fx
        pnl[p] = quantity[p] * (mark[i] - entry_price[p]) * fx
        bracket_now[p] = b
        a = account[p]
        if mode[a] == CROSS:
            account_maintenance[a] = account_maintenance.get(a, 0.0) + maintenance[p]
            account_pnl[a] = account_pnl.get(a, 0.0) + pnl[p]
            if hedge[a]:
                legs_of.setdefault((a, i), []).append(p)
        else:
            wallet[p] = wallet_usd[p] if has_wallet[p] else size * entry_price[p] / leverage * fx

    # Pass 2: liquidation price (bracket at the liquidation price) and bankruptcy price per position.
    liquidation = [math.nan] * n
    bankruptcy = [math.nan] * n
    fallbacks = 0
    for p in range(n):
        a = account[p]
        i = instrument[p]
        fx = quote_usd[i]
        group = legs_of.get((a, i), [p]) if mode[a] == CROSS and hedge[a] else [p]
        if mode[a] == CROSS:
            others_maintenance = account_maintenance[a] - sum(maintenance[g] for g in group)
            others_pnl = account_pnl[a] - sum(pnl[g] for g in group)
            balance = collateral_usd[a] + others_pnl  # WB + UPNL1
        else:
            others_maintenance = 0.0
            balance = wallet[p]
        legs = [(1.0 if quantity[g] > 0 else -1.0, abs(quantity[g]), entry_price[g], tables[i], bracket_now[g])
                for g in group]
        floor = NO_PRICE_BELOW * mark[i]
        liquidation[p], fell_back = liquidation_price(legs, (balance - others_maintenance) / fx, floor)
        fallbacks += fell_back
        exposure = sum(side * size * entry for side, size, entry, _, _ in legs)
        net = sum(side * size for side, size, _, _, _ in legs)
        price = (exposure - balance / fx) / net if net != 0.0 else math.nan
        bankruptcy[p] = price if price > floor and math.isfinite(price) else math.nan
    return Reference(initial, maintenance, liquidation, bankruptcy, fallbacks)


def reference_inputs(book: Book, profile: Profile, stop: int) -> dict[str, Any]:
    """The first `stop` positions (whole accounts) as Python lists, accounts renumbered from 0."""
    accounts = int(book.position_account[stop - 1]) + 1
    collateral_usd = book.collateral[:accounts] @ book.asset_price
    return {
        "account": book.position_account[:stop].tolist(),
        "instrument": book.position_instrument[:stop].tolist(),
        "quantity": (book.quantity[:stop] * book.contract_size[book.position_instrument[:stop]]).tolist(),
        "entry_price": book.entry_price[:stop].tolist(),
        "leverage": book.leverage[:stop].tolist(),
        "wallet_usd": book.isolated_wallet_usd[:stop].tolist(),
        "has_wallet": book.has_isolated_wallet[:stop].tolist(),
        "mode": book.account_mode[:accounts].tolist(),
        "hedge": book.hedge_mode[:accounts].tolist(),
        "collateral_usd": collateral_usd.tolist(),
        "mark": book.mark.tolist(),
        "quote_usd": (book.asset_price[book.quote] / book.asset_price[book.asset_index["USD"]]).tolist(),
        "tables": bracket_tables(profile, book.instruments),
    }


# ----------------------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------------------


def compare_prices(name: str, ours: F64, ours_defined: NDArray[np.bool_], theirs: F64) -> str:
    theirs_defined = np.isfinite(theirs)
    both = ours_defined & theirs_defined
    disagree = int(np.count_nonzero(ours_defined != theirs_defined))
    difference = max_relative_difference(ours[both], theirs[both])
    return (f"  {name:<18} max rel diff {difference:.2e} over {int(both.sum()):,} positions defined in both; "
            f"defined in one only: {disagree}")


def subset_end(book: Book, target: int) -> int:
    """The end of the first whole accounts that hold at least `target` positions (or all of them)."""
    if target >= book.position_count:
        return book.position_count
    last_account = book.position_account[target - 1]
    return int(np.searchsorted(book.position_account, last_account, side="right"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--reference-positions", type=int, default=20_000,
                        help="positions the Python loop runs over (whole accounts), extrapolated linearly")
    parser.add_argument("--runs", type=int, default=TIMED_RUNS, help="timed runs of marginkit (best is kept)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    profile = shipped_profile(PROFILE)
    started = time.perf_counter()
    book = make_book(args.positions, args.accounts, args.seed)
    built = time.perf_counter() - started
    n = book.position_count

    cross = book.account_mode == CROSS
    print(f"marginkit tiered throughput - profile {profile.name} ({profile.version}), seed {args.seed}")
    print(f"book: {n:,} positions over {book.account_count:,} accounts, built from arrays in {built:.1f} s")
    btc = sum(i.underlying == "BTC" for i in book.instruments)
    print(f"  instruments: {len(book.instruments)} linear perpetuals ({btc} on BTC, "
          f"{len(book.instruments) - btc} on ETH; USDT and USDC quoted)")
    print(f"  accounts: {int(cross.sum()):,} cross, {int((~cross).sum()):,} isolated; "
          f"{int(book.hedge_mode.sum()):,} in hedge mode; positions per account "
          f"{n / book.account_count:.1f} on average, at most {int(np.bincount(book.position_account).max())}")
    print(f"  positions: {int((book.quantity > 0).sum()):,} long, {int((book.quantity < 0).sum()):,} short, "
          f"{int(book.has_isolated_wallet.sum()):,} with an assigned isolated wallet")

    # Warm-up on a small book: compiles (or loads) the numba kernels.
    small = make_book(2_000, 200, args.seed + 2)
    warm_start = time.perf_counter()
    margin(small, profile)
    print(f"warm-up: margin() on {small.position_count:,} positions took {time.perf_counter() - warm_start:.2f} s "
          "(numba compilation or cache load)")

    times, result = timed(lambda: margin(book, profile), args.runs)
    seconds = min(times)
    assert isinstance(result, Requirements) and result.positions is not None
    figures = result.positions
    rate = n / seconds
    brackets = np.bincount(np.asarray(figures.details["bracket"]))[1:]
    print("  brackets at the mark (1, 2, ...): " + ", ".join(f"{int(c):,}" for c in brackets))
    print(f"  liquidation price defined for {int(figures.liquidation_price_defined.sum()):,} positions, "
          f"bankruptcy price for {int(figures.bankruptcy_price_defined.sum()):,}")
    goal = "meets" if rate >= 1e7 else "misses"
    print(f"marginkit: margin(book, profile) best of {args.runs}: {seconds * 1e3:.1f} ms "
          f"(median {statistics.median(times) * 1e3:.1f} ms) -> {rate / 1e6:.2f} M positions/s "
          f"({goal} the goal of 10 M/s, one core)")

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
    print(f"reference: Python loop over the first {stop:,} positions (whole accounts), best of {REFERENCE_RUNS}: "
          f"{loop_seconds:.3f} s -> "
          f"{loop_rate:,.0f} positions/s; extrapolated linearly to {n:,} positions: {n / loop_rate:.1f} s")
    print(f"speed ratio marginkit / Python loop: {rate / loop_rate:,.0f}x")
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory: {peak / 2**20:.0f} MiB allocated at peak during one margin() call (tracemalloc); "
          f"process peak RSS {maxrss_kib / 1024:.0f} MiB (book, warm-up, reference included)")

    print(f"agreement on the {stop:,} subset positions (loop vs marginkit on the full book):")
    print(f"  {'initial margin':<18} max rel diff "
          f"{max_relative_difference(figures.initial_margin[:stop], np.array(reference.initial_margin)):.2e}")
    print(f"  {'maintenance margin':<18} max rel diff "
          f"{max_relative_difference(figures.maintenance_margin[:stop], np.array(reference.maintenance_margin)):.2e}")
    print(compare_prices("liquidation price", figures.liquidation_price[:stop],
                         figures.liquidation_price_defined[:stop], np.array(reference.liquidation_price)))
    print(compare_prices("bankruptcy price", figures.bankruptcy_price[:stop],
                         figures.bankruptcy_price_defined[:stop], np.array(reference.bankruptcy_price)))
    print(f"  bracket iteration fell back to a full scan for {reference.fallbacks} liquidation prices")
    return 0


if __name__ == "__main__":
    sys.exit(main())

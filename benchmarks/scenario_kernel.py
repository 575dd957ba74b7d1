"""The scenario kernel on a 1,000,000-account book: full and incremental recompute against scipy.sparse and a loop.

Run: .venv/bin/python benchmarks/scenario_kernel.py [--accounts N] [--sample K] [--moves M]

The book (fixed seed): 20 underlyings × 100 instruments (20 delta-one contracts and 80 Black-76 options on
each), 1,000,000 accounts × 10 positions. Fifteen underlyings are widely held; each of the other five is
held by exactly 10,000 accounts, so that one of them moving touches 10,000 accounts. The instruments ×
scenarios P&L matrix is a real revaluation (Black-76 on a price × vol grid; 27 = 9 × 3 and 63 = 21 × 3
scenarios), P&L per unit of quantity, + gain.

Full recompute: marginkit's `reduce_scenarios` (worst scenario P&L and its index per account) is timed on one
core, best of several runs after a warm-up that compiles the numba kernel, beside two references measured
in the same run on the same work: `scipy.sparse` (the accounts × instruments CSR matrix @ the instruments ×
scenarios matrix, then the minimum of each row; the reference does not find the worst scenario's index,
marginkit does) and a per-account Python loop over the same formulas, run on a sample of accounts spread
over the book and scaled linearly. The three must agree.

Incremental: a `ScenarioState` of the whole book; one of the five thinly held underlyings moves (a random
index move), its 100 instruments are revalued and `apply_moves` re-reduces the 10,000 accounts holding them.
Each timed move starts with cold caches (a 64 MB buffer is rewritten first), as when a price event arrives
in a live engine; after all moves the state must equal a full recompute of the current matrix, bit for bit.

Memory: tracemalloc's peak during the full recompute (every NumPy allocation, the kernel's outputs included;
the compiled kernel allocates nothing) beside the size of an accounts × scenarios float64 matrix and the
scipy reference's own peak, and the process's peak RSS at the end.
"""

from __future__ import annotations

import os

# One core: set before numpy, scipy and numba are imported.
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from marginkit.pricing import black76_price  # noqa: E402
from marginkit.scenarios.incremental import IncrementalIndex, ScenarioState  # noqa: E402
from marginkit.scenarios.kernel import GroupedPositions, ScenarioMatrix, group_positions, reduce_scenarios  # noqa: E402

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
SEED = 20250907
UNDERLYINGS = 20
THIN = 5  # the last THIN underlyings are each held by exactly THIN_HOLDERS accounts
THIN_HOLDERS = 10_000
DELTA_ONE_PER_UNDERLYING = 20
OPTIONS_PER_UNDERLYING = 80
PER_UNDERLYING = DELTA_ONE_PER_UNDERLYING + OPTIONS_PER_UNDERLYING
POSITIONS_PER_ACCOUNT = 10
TIMED_RUNS = 5
SCIPY_RUNS = 3
GRIDS = ((9, 3), (21, 3))  # price moves × vol moves: 27 and 63 scenarios
PRICE_RANGE = 0.15  # ±15 % in equal steps
VOL_MOVES = (-0.25, 0.0, 0.25)  # relative
GOAL_FULL_SECONDS = 0.3  # 63 scenarios
GOAL_RATIO = 3.0  # × faster than the scipy product
GOAL_INCREMENTAL_SECONDS = 0.005
EVICT_BYTES = 64 * 2**20


# ----------------------------------------------------------------------------------------------------------
# Instruments, the scenario grid and revaluation
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Instruments:
    """Per instrument: underlying, whether an option, strike, years, vol, call flag; per underlying: spot."""

    underlying: I64
    option: NDArray[np.bool_]
    strike: F64
    years: F64
    vol: F64
    call: NDArray[np.bool_]
    spot: F64

    @property
    def count(self) -> int:
        return int(self.underlying.shape[0])


def make_instruments(rng: np.random.Generator) -> Instruments:
    underlying = np.repeat(np.arange(UNDERLYINGS, dtype=np.int64), PER_UNDERLYING)
    spot = np.exp(rng.uniform(np.log(5.0), np.log(60_000.0), UNDERLYINGS))
    slot = np.tile(np.arange(PER_UNDERLYING), UNDERLYINGS)
    option = slot >= DELTA_ONE_PER_UNDERLYING
    count = underlying.shape[0]
    strike = spot[underlying] * rng.uniform(0.7, 1.3, count)
    years = rng.uniform(7.0, 180.0, count) / 365.0
    vol = rng.uniform(0.35, 0.9, count)
    call = rng.random(count) < 0.5
    return Instruments(underlying, option, strike, years, vol, call, spot)


def scenario_grid(price_steps: int) -> tuple[F64, F64]:
    """(relative price move, relative vol move) per scenario, price-major."""
    price = np.linspace(-PRICE_RANGE, PRICE_RANGE, price_steps)
    move, vol = np.meshgrid(price, np.array(VOL_MOVES), indexing="ij")
    return move.ravel(), vol.ravel()


def revalue(inst: Instruments, rows: I64, grid: tuple[F64, F64]) -> F64:
    """P&L per unit (quote currency) of instruments `rows` under each scenario: value(shocked) − value(now)."""
    move, vol_move = grid
    spot = inst.spot[inst.underlying[rows]][:, None]
    option = inst.option[rows][:, None]
    linear = spot * move[None, :]
    strike = inst.strike[rows][:, None]
    years = inst.years[rows][:, None]
    vol = inst.vol[rows][:, None]
    call = inst.call[rows][:, None]
    now = black76_price(spot, strike, years, vol, call, 1.0)
    shocked = black76_price(spot * (1.0 + move[None, :]), strike, years, vol * (1.0 + vol_move[None, :]), call, 1.0)
    result: F64 = np.where(option, shocked - now, linear)
    return result


# ----------------------------------------------------------------------------------------------------------
# The book
# ----------------------------------------------------------------------------------------------------------


def make_positions(rng: np.random.Generator, accounts: int, instrument_count: int) -> tuple[I64, I64, F64]:
    """(account, instrument, quantity) of accounts × 10 positions; thin underlyings held by 10,000 each."""
    wide_instruments = (UNDERLYINGS - THIN) * PER_UNDERLYING
    account = np.repeat(np.arange(accounts, dtype=np.int64), POSITIONS_PER_ACCOUNT)
    instrument = rng.integers(0, wide_instruments, account.shape[0]).astype(np.int64)
    holders = min(THIN_HOLDERS, accounts // THIN)
    chosen = rng.choice(accounts, THIN * holders, replace=False).reshape(THIN, holders)
    for k in range(THIN):
        u = UNDERLYINGS - THIN + k
        slot = chosen[k] * POSITIONS_PER_ACCOUNT + rng.integers(0, POSITIONS_PER_ACCOUNT, holders)
        instrument[slot] = u * PER_UNDERLYING + rng.integers(0, PER_UNDERLYING, holders)
    quantity = np.round(rng.normal(0.0, 5.0, account.shape[0]), 1)
    quantity[quantity == 0.0] = 0.1
    return account, instrument, quantity


# ----------------------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------------------


def python_loop(start: list[int], instrument: list[int], quantity: list[float], pnl: list[list[float]],
                accounts: list[int]) -> tuple[list[float], list[int]]:
    """Worst scenario P&L and its index, one account at a time, in plain Python."""
    worst: list[float] = []
    where: list[int] = []
    scenarios = len(pnl[0])
    for a in accounts:
        row = [0.0] * scenarios
        for r in range(start[a], start[a + 1]):
            q = quantity[r]
            values = pnl[instrument[r]]
            for s in range(scenarios):
                row[s] += q * values[s]
        best, best_s = row[0], 0
        for s in range(1, scenarios):
            if row[s] < best:
                best, best_s = row[s], s
        worst.append(best)
        where.append(best_s)
    return worst, where


def timed(function: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """(best, median, last result) of `runs` timed calls."""
    times = []
    result = None
    for _ in range(runs):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times), result


def traced_peak(function: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes tracemalloc sees during one call (above what was allocated before it)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    result = function()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak, result


def megabytes(count: float) -> str:
    return f"{count / 2**20:,.1f} MB"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# ----------------------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------------------


def full_recompute(grouped: GroupedPositions, matrix_csr: sparse.csr_matrix, pnl: F64, sample: I64,
                   lists: tuple[list[int], list[int], list[float]], label: str) -> dict[str, float]:
    accounts = grouped.group_count
    scenarios = pnl.shape[1]
    reduce_scenarios(grouped, pnl)  # warm-up (compiles on the first run, then loads numba's cache)
    best, median, ours = timed(lambda: reduce_scenarios(grouped, pnl), TIMED_RUNS)
    scipy_best, _, scipy_worst = timed(lambda: (matrix_csr @ pnl).min(axis=1), SCIPY_RUNS)
    dense = matrix_csr @ pnl
    scipy_where = dense.argmin(axis=1)
    del dense
    pnl_lists = pnl.tolist()
    began = time.perf_counter()
    loop_worst, loop_where = python_loop(*lists, pnl_lists, sample.tolist())
    loop_seconds = (time.perf_counter() - began) * accounts / sample.shape[0]

    scipy_gap = float(np.max(np.abs(ours.worst_pnl - scipy_worst)))
    scipy_where_differs = int(np.count_nonzero(ours.worst_scenario != scipy_where))
    loop_gap = float(np.max(np.abs(ours.worst_pnl[sample] - np.array(loop_worst))))
    loop_where_differs = int(np.count_nonzero(ours.worst_scenario[sample] != np.array(loop_where)))
    print(f"\n{scenarios} scenarios ({label})")
    print(f"  marginkit reduce_scenarios           {best:9.4f} s   best of {TIMED_RUNS} (median {median:.4f} s)")
    print(f"  scipy.sparse CSR @ dense, row min    {scipy_best:9.4f} s   best of {SCIPY_RUNS}"
          f"   → marginkit {scipy_best / best:5.1f}× faster")
    print(f"  Python per-account loop, scaled      {loop_seconds:9.1f} s   ({sample.shape[0]:,} accounts, "
          f"×{accounts / sample.shape[0]:,.0f})   → marginkit {loop_seconds / best:,.0f}× faster")
    print(f"  agreement: max |marginkit − scipy| = {scipy_gap:.2e} (worst scenario differs for "
          f"{scipy_where_differs} accounts); max |marginkit − loop| = {loop_gap:.2e} on the sample "
          f"(worst scenario differs for {loop_where_differs})")
    agree = scipy_gap <= 1e-9 * max(1.0, float(np.max(np.abs(scipy_worst)))) and loop_gap == 0.0
    return {"best": best, "scipy": scipy_best, "agree": float(agree)}


def evict(buffer: F64) -> None:
    buffer += 1.0


def incremental(grouped: GroupedPositions, index: IncrementalIndex, inst: Instruments, grid: tuple[F64, F64],
                pnl: F64, moves: int, rng: np.random.Generator) -> tuple[float, bool]:
    began = time.perf_counter()
    state = ScenarioState(grouped, pnl, index)
    build_seconds = time.perf_counter() - began
    current = pnl.copy()
    buffer = np.zeros(EVICT_BYTES // 8)
    thin = list(range(UNDERLYINGS - THIN, UNDERLYINGS))
    # Warm-up move (compiles nothing new, but pages in the code paths), not timed.
    warm = thin[0]
    state.apply_moves(warm, revalue(inst, index.instruments_on(warm), grid))
    current[index.instruments_on(warm)] = state.matrix.values[index.instruments_on(warm)]
    kernel_times: list[float] = []
    revalue_times: list[float] = []
    affected_counts: list[int] = []
    for k in range(moves):
        u = thin[k % THIN]
        inst.spot[u] *= 1.0 + rng.normal(0.0, 0.01)
        evict(buffer)
        began = time.perf_counter()
        rows = index.instruments_on(u)
        new = revalue(inst, rows, grid)
        revalued = time.perf_counter()
        affected = state.apply_moves(u, new)
        done = time.perf_counter()
        revalue_times.append(revalued - began)
        kernel_times.append(done - revalued)
        affected_counts.append(int(affected.shape[0]))
        current[rows] = new
    # A widely held underlying, for scale.
    wide = 0
    inst.spot[wide] *= 1.01
    evict(buffer)
    rows = index.instruments_on(wide)
    new = revalue(inst, rows, grid)
    began = time.perf_counter()
    wide_affected = state.apply_moves(wide, new)
    wide_seconds = time.perf_counter() - began
    current[rows] = new

    full = reduce_scenarios(grouped, current)
    equal = bool(np.array_equal(full.worst_pnl, state.worst_pnl)
                 and np.array_equal(full.worst_scenario, state.worst_scenario))
    median_kernel = statistics.median(kernel_times)
    total = [a + b for a, b in zip(kernel_times, revalue_times, strict=True)]
    print(f"\nincremental recompute, {grid[0].shape[0]} scenarios: {moves} moves of one thinly held underlying "
          f"(cold caches each)")
    print(f"  ScenarioState of the whole book (one-off)   {build_seconds:8.4f} s")
    print(f"  accounts affected per move                 {min(affected_counts):,} to {max(affected_counts):,}")
    revalue_median = statistics.median(revalue_times) * 1e3
    print(f"  revalue the underlying's {PER_UNDERLYING} instruments     {revalue_median:8.3f} ms median")
    print(f"  apply_moves (rows in, affected re-reduced) {median_kernel * 1e3:8.3f} ms median, "
          f"{max(kernel_times) * 1e3:.3f} ms max, {min(kernel_times) * 1e3:.3f} ms min")
    print(f"  revalue + apply_moves                      {statistics.median(total) * 1e3:8.3f} ms median"
          f"   goal ≤ {GOAL_INCREMENTAL_SECONDS * 1e3:.0f} ms: {verdict(statistics.median(total) <= 0.005)}")
    print(f"  for scale: a widely held underlying moves  {wide_seconds * 1e3:8.1f} ms for "
          f"{wide_affected.shape[0]:,} accounts")
    print(f"  state equals a full recompute of the current matrix after {moves + 2} moves: "
          f"{'yes, bit for bit' if equal else 'NO'}")
    return median_kernel, equal


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000, help="accounts in the Python loop reference")
    parser.add_argument("--moves", type=int, default=25, help="timed incremental moves")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    began = time.perf_counter()
    inst = make_instruments(rng)
    account, instrument, quantity = make_positions(rng, args.accounts, inst.count)
    made = time.perf_counter() - began
    began = time.perf_counter()
    grouped = group_positions(account, instrument, quantity, args.accounts)
    grouping = time.perf_counter() - began
    began = time.perf_counter()
    index = IncrementalIndex.build(grouped, inst.underlying, UNDERLYINGS)
    indexing = time.perf_counter() - began
    matrix_csr = sparse.csr_matrix((quantity, (account, instrument)), shape=(args.accounts, inst.count))
    sample = np.linspace(0, args.accounts - 1, min(args.sample, args.accounts)).astype(np.int64)
    lists = (grouped.start.tolist(), grouped.instrument.tolist(), grouped.quantity.tolist())

    print(f"scenario kernel: {args.accounts:,} accounts × {POSITIONS_PER_ACCOUNT} positions "
          f"({account.shape[0]:,}) over {inst.count:,} instruments ({UNDERLYINGS} underlyings × {PER_UNDERLYING}: "
          f"{DELTA_ONE_PER_UNDERLYING} delta-one, {OPTIONS_PER_UNDERLYING} Black-76 options), one core, seed {SEED}")
    print(f"  one-off: book {made:.2f} s, group_positions {grouping:.2f} s, IncrementalIndex.build {indexing:.2f} s")

    results = {}
    pnls = {}
    for price_steps, vol_steps in GRIDS:
        grid = scenario_grid(price_steps)
        began = time.perf_counter()
        pnl = revalue(inst, np.arange(inst.count, dtype=np.int64), grid)
        revaluation = time.perf_counter() - began
        label = f"{price_steps} price × {vol_steps} vol moves; revaluing every instrument {revaluation * 1e3:.1f} ms"
        results[pnl.shape[1]] = full_recompute(grouped, matrix_csr, pnl, sample, lists, label)
        pnls[pnl.shape[1]] = (grid, pnl)
    r63 = results[63]
    print(f"\n  goals (63 scenarios): ≤ {GOAL_FULL_SECONDS} s: {verdict(r63['best'] <= GOAL_FULL_SECONDS)}; "
          f"≥ {GOAL_RATIO:.0f}× the scipy product: {verdict(r63['scipy'] / r63['best'] >= GOAL_RATIO)}; "
          f"all three agree: {'yes' if all(r['agree'] for r in results.values()) else 'NO'}")

    grid, pnl = pnls[63]
    _, equal = incremental(grouped, index, inst, grid, pnl, args.moves, rng)

    scenarios = 63
    kernel_peak, _ = traced_peak(lambda: reduce_scenarios(grouped, ScenarioMatrix(pnl)))
    scipy_peak, _ = traced_peak(lambda: (matrix_csr @ pnl).min(axis=1))
    dense_bytes = args.accounts * scenarios * 8
    print(f"\nmemory ({scenarios} scenarios)")
    print(f"  peak traced during a full recompute     {megabytes(kernel_peak):>10}   (results: 2 × {args.accounts:,} × "
          f"8 B = {megabytes(2 * args.accounts * 8)}; padded P&L matrix {megabytes(inst.count * 64 * 8)})")
    print(f"  an accounts × scenarios float64 matrix  {megabytes(dense_bytes):>10}   — never built by the kernel "
          f"(peak is {kernel_peak / dense_bytes:.1%} of it)")
    print(f"  peak traced during the scipy reference  {megabytes(scipy_peak):>10}   (its dense product)")
    print(f"  process peak RSS (everything above, book and references included) "
          f"{megabytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")
    ok = (r63["best"] <= GOAL_FULL_SECONDS and r63["scipy"] / r63["best"] >= GOAL_RATIO and equal
          and kernel_peak < dense_bytes / 4)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

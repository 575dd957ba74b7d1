"""Portfolio margin of 10,000,000 accounts × 10 positions on a 2-worker Dask LocalCluster against 1 worker.

Run: .venv/bin/python benchmarks/cluster_scaling.py [--accounts N] [--chunk C] [--workers W]

The book: Deribit-style coin-settled BTC and ETH perpetuals, futures (2 expiries) and Black-76 options (5 strikes,
calls and puts) in portfolio-mode accounts of 10 positions each: half hold one coin and margin in it (S:PM), half
hold both with BTC, ETH and USDC collateral (X:PM, in USD). The model is `portfolio` with the `deribit-pm` profile
(standard grid × volatility up/unchanged/down, extended moves, roll and delta shocks). The book is never in one
place: it is cut into partitions of C accounts (250,000 by default, 40 for 10,000,000), and the worker that runs
partition k builds it (as `Book` arrays, seeded by k, so every run builds the same one) and margins it, keeping
only a checksum of its initial and maintenance margins; the client holds nothing but the partition numbers.

Timed, in the same run, on the same partitions (the same total work): a LocalCluster of 1 worker process and one
of W (2) worker processes, each worker 1 thread, started as `marginkit … --cluster local:N` starts them (the
scheduler and this client share the machine's 2 cores with the workers). Before each timed run every worker
margins a small partition, so that numba's compiled kernels are loaded. Printed: wall time of each, speed-up
T(1)/T(W), scaling efficiency = speed-up / W (goal ≥ 0.7), each worker's peak resident memory, and the reference:
the same partitions margined in this process with no cluster (a few of them, extrapolated to the whole book).
The checksums of every partition must agree between the three runs, bit for bit. No timed asserts.
"""

from __future__ import annotations

import os

# One thread per process: set before NumPy, SciPy and numba are imported (Dask's workers set the same).
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from functools import cache  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402

from marginkit.book import OPTION, PORTFOLIO, Book, position_values, resolve  # noqa: E402
from marginkit.distributed.cluster import ClusterClient, ClusterSpec, open_client  # noqa: E402
from marginkit.domain import BookSpec, Instrument, InstrumentType, MarketSnapshot, OptionType  # noqa: E402
from marginkit.models import MODELS  # noqa: E402
from marginkit.profiles import shipped_profile  # noqa: E402

SEED = 20261124
AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
INDEX = {"BTC": 95_000.0, "ETH": 3_300.0, "USDC": 1.0}
POSITIONS_PER_ACCOUNT = 10
PROFILE = "deribit-pm"
GOAL_EFFICIENCY = 0.7
REFERENCE_PARTITIONS = 2
WARM_UP = 1_000_000  # partition numbers of the small warm-up partitions


@cache
def instrument_book() -> Book:
    """The instruments and market resolved once per process (an empty book): marks, forwards, vols, discounts."""
    instruments: list[Instrument] = []
    vols: dict[str, float] = {}
    forwards: dict[tuple[str, datetime], float] = {}
    for coin, size in (("BTC", 10.0), ("ETH", 1.0)):
        spot = INDEX[coin]
        instruments.append(Instrument(id=f"{coin}-PERPETUAL", type=InstrumentType.PERPETUAL, underlying=coin,
                                      quote="USD", settlement=coin, inverse=True, contract_size=size))
        for days in (30, 90):
            expiry = AS_OF + timedelta(days=days)
            code = expiry.strftime("%d%b%y").upper()
            forwards[(coin, expiry)] = spot * (1.0 + 0.05 * days / 365.0)
            instruments.append(Instrument(id=f"{coin}-{code}", type=InstrumentType.FUTURE, underlying=coin,
                                          quote="USD", settlement=coin, inverse=True, contract_size=size,
                                          expiry=expiry))
            for moneyness in (0.8, 0.9, 1.0, 1.1, 1.25):
                strike = round(spot * moneyness, -2 if coin == "BTC" else 0)
                for kind in (OptionType.CALL, OptionType.PUT):
                    identifier = f"{coin}-{code}-{strike:.0f}-{'C' if kind == OptionType.CALL else 'P'}"
                    vols[identifier] = 0.5 + 0.4 * (moneyness - 1.0) ** 2 + 0.02 * (days == 30)
                    instruments.append(Instrument(id=identifier, type=InstrumentType.OPTION, underlying=coin,
                                                  quote="USD", settlement=coin, inverse=True, contract_size=1.0,
                                                  expiry=expiry, option_type=kind, strike=strike))
    market = MarketSnapshot(index=dict(INDEX), vols=vols, forwards=forwards)
    return resolve(BookSpec(as_of=AS_OF, instruments=tuple(instruments), market=market, accounts=()))


def partition_book(index: int, accounts: int) -> Book:
    """Partition `index` of the book: `accounts` portfolio accounts × 10 positions, seeded by the index."""
    base = instrument_book()
    rng = np.random.default_rng((SEED, index))
    count = len(base.instruments)
    per_coin = count // 2  # BTC's instruments, then ETH's
    single = rng.random(accounts) < 0.5
    coin = rng.integers(0, 2, accounts)
    n = accounts * POSITIONS_PER_ACCOUNT
    position_account = np.repeat(np.arange(accounts, dtype=np.int32), POSITIONS_PER_ACCOUNT)
    instrument = rng.integers(0, count, n)
    one_coin = single[position_account]
    instrument = np.where(one_coin, coin[position_account] * per_coin + instrument % per_coin, instrument)
    position_instrument = instrument.astype(np.int32)
    option = base.kind[position_instrument] == OPTION
    quantity = np.where(option, np.round(rng.normal(0.0, 3.0, n), 1), np.round(rng.normal(0.0, 2_000.0, n), -1))
    quantity[quantity == 0.0] = 1.0
    entry = np.where(option, base.mark[position_instrument], base.underlying_price[position_instrument]) * \
        rng.uniform(0.9, 1.1, n)
    assets = base.asset_index
    balance = rng.lognormal(0.0, 1.0, (accounts, 3))
    collateral = np.zeros((accounts, len(base.assets)))
    spm_coin = np.where(coin == 0, assets["BTC"], assets["ETH"])
    collateral[np.flatnonzero(single), spm_coin[single]] = balance[single, 0] * np.where(coin[single] == 0, 10.0,
                                                                                        150.0)
    mixed = ~single
    collateral[mixed, assets["BTC"]] = balance[mixed, 0]
    collateral[mixed, assets["ETH"]] = balance[mixed, 1] * 20.0
    collateral[mixed, assets["USDC"]] = balance[mixed, 2] * 50_000.0
    quote_to_settlement = base.asset_price[base.quote] / base.asset_price[base.settlement]
    zeros = np.zeros(n)
    return replace(
        base, account_ids=tuple(f"p{index}-{a}" for a in range(accounts)),
        account_mode=np.full(accounts, PORTFOLIO, dtype=np.int8), hedge_mode=np.zeros(accounts, dtype=bool),
        collateral=collateral, position_account=position_account, position_instrument=position_instrument,
        quantity=quantity, entry_price=entry, leverage=zeros, position_side=np.zeros(n, dtype=np.int8),
        isolated_wallet_usd=zeros, has_isolated_wallet=np.zeros(n, dtype=bool),
        position_value=position_values(base.kind, base.inverse, base.contract_size, base.mark, quote_to_settlement,
                                       position_instrument, quantity, entry),
        position_matrix=sparse.csr_matrix((quantity, (position_account, position_instrument)),
                                          shape=(accounts, count)),
        account_class=(), credit_tier=(), lot_account=None, lot_asset=None, lot_chain=None, lot_amount=None,
        deposit_lot=None, deposit_amount=None, deposit_age=None)


def margin_partition(index: int, accounts: int) -> tuple[int, str, float, float, float]:
    """Build and margin one partition where this runs: (index, checksum, build s, margin s, Σ initial margin)."""
    began = time.perf_counter()
    book = partition_book(index, accounts)
    built = time.perf_counter()
    requirements = MODELS["portfolio"](book, shipped_profile(PROFILE))
    done = time.perf_counter()
    digest = hashlib.blake2b(requirements.initial_margin.tobytes() + requirements.maintenance_margin.tobytes(),
                             digest_size=16).hexdigest()
    return index, digest, built - began, done - built, float(requirements.initial_margin.sum())


def peak_memory() -> int:
    """This process's peak resident set size in bytes: VmHWM of its address space (Linux), else ru_maxrss.

    (ru_maxrss survives exec, so a worker spawned by a large client would report the client's peak.)
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_on_cluster(workers: int, partitions: int, accounts: int) -> tuple[float, dict[int, str], list[int], float]:
    """Wall seconds to margin every partition on a `workers`-process LocalCluster, checksums, peaks, task seconds."""
    with open_client(ClusterSpec(workers=workers), memory_limit=0) as client:
        warm_up(client, workers)
        began = time.perf_counter()
        results = client.gather([client.submit(margin_partition, k, accounts) for k in range(partitions)])
        seconds = time.perf_counter() - began
        peaks = sorted(client.run(peak_memory).values())
    busy = sum(r[2] + r[3] for r in results)
    return seconds, {r[0]: r[1] for r in results}, peaks, busy


def warm_up(client: ClusterClient, workers: int) -> None:
    """Every worker margins a small partition first: numba's kernels loaded, the instrument book cached."""
    addresses = list(client.client.nthreads())
    futures = [client.client.submit(margin_partition, WARM_UP + w, 2_000, workers=[address], pure=False)
               for w, address in enumerate(addresses[:workers])]
    client.gather(futures)


def megabytes(count: float) -> str:
    return f"{count / 2**20:,.0f} MB"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=250_000, help="accounts per partition")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    partitions = -(-args.accounts // args.chunk)
    accounts = args.accounts // partitions
    total = accounts * partitions
    print(f"cluster scaling: portfolio margin ({PROFILE}) of {total:,} accounts × {POSITIONS_PER_ACCOUNT} positions "
          f"({total * POSITIONS_PER_ACCOUNT:,}), {partitions} partitions of {accounts:,} accounts built on the "
          f"workers; {os.cpu_count()} cores")

    margin_partition(WARM_UP, 2_000)  # this process's warm-up
    began = time.perf_counter()
    reference = [margin_partition(k, accounts) for k in range(REFERENCE_PARTITIONS)]
    reference_seconds = (time.perf_counter() - began) * partitions / REFERENCE_PARTITIONS
    build = sum(r[2] for r in reference) / REFERENCE_PARTITIONS
    model = sum(r[3] for r in reference) / REFERENCE_PARTITIONS
    print(f"  one process, no cluster:     {reference_seconds:8.1f} s  (extrapolated from {REFERENCE_PARTITIONS} "
          f"partitions: {build:.2f} s to build and {model:.2f} s to margin each; peak RSS "
          f"{megabytes(peak_memory())})")

    one_seconds, one_sums, one_peaks, one_busy = run_on_cluster(1, partitions, accounts)
    print(f"  LocalCluster, 1 worker:      {one_seconds:8.1f} s  (tasks busy {one_busy:.1f} s; worker peak RSS "
          f"{', '.join(megabytes(p) for p in one_peaks)})")
    many_seconds, many_sums, many_peaks, many_busy = run_on_cluster(args.workers, partitions, accounts)
    print(f"  LocalCluster, {args.workers} workers:     {many_seconds:8.1f} s  (tasks busy {many_busy:.1f} s; "
          f"worker peak RSS {', '.join(megabytes(p) for p in many_peaks)})")

    speed_up = one_seconds / many_seconds
    efficiency = speed_up / args.workers
    print(f"  speed-up {speed_up:.2f}×, scaling efficiency {efficiency:.2f} of linear "
          f"(goal ≥ {GOAL_EFFICIENCY}: {'met' if efficiency >= GOAL_EFFICIENCY else 'NOT met'}); "
          f"{total / many_seconds:,.0f} accounts/s on {args.workers} workers, {total / one_seconds:,.0f} on 1")
    agree = one_sums == many_sums and all(one_sums[k] == r[1] for k, r in enumerate(reference))
    print(f"  every partition's margins equal across the three runs, bit for bit: {'yes' if agree else 'NO'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Throughput of the engine's monitor: price events per second over 100,000 accounts, 2,000 instruments.

Run: .venv/bin/python benchmarks/monitor_throughput.py [--accounts N] [--instruments M] [--underlyings U]
     [--events E] [--window SECONDS]

The book (built directly as a `Book` from NumPy arrays, fixed seed): N accounts, 60 % cross and 40 %
isolated, each holding 1 to 4 of M linear perpetuals spread over U underlyings, long and short, 2x to 8x
leverage; a tiered profile written here (maintenance 1 %, initial 10 %). The feed: E price events on random
instruments, a ±0.05 % random walk per event, event times 50 µs apart (20,000 events/s of feed time).

Measured, single-threaded, in the same run:
  * incremental, one event at a time: each event re-margins only the accounts holding its instrument
    (`Monitor.process([event])`), through the async loop (`Monitor.run` over an async stream);
  * incremental with coalescing: events grouped into windows of `--window` seconds of feed time (10 ms by
    default); within a window only each instrument's latest price counts (the coalesced count is printed);
  * the reference: a full recompute of every account's status per event (`RiskState.account_status` of all
    accounts), timed over a few events and extrapolated.
Printed, not asserted: the goal is ≥ 20,000 price events/s sustained.
"""

from __future__ import annotations

import os

for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Sequence  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402

from marginkit.book import CROSS, ISOLATED, PERPETUAL, Book, position_values  # noqa: E402
from marginkit.domain import Instrument, InstrumentType  # noqa: E402
from marginkit.engine import LiquidationEngine, Monitor, MonitorSettings, PriceEvent, RiskState  # noqa: E402
from marginkit.io.profile_file import parse_profile  # noqa: E402
from marginkit.models.tiered import margin  # noqa: E402

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def build_book(accounts: int, instruments: int, underlyings: int, seed: int = 11) -> Book:
    rng = np.random.default_rng(seed)
    names = tuple(f"U{u:02d}" for u in range(underlyings))
    assets = (*names, "USD", "USDT")
    asset_price = np.concatenate([rng.uniform(1.0, 50_000.0, underlyings), [1.0, 1.0]])
    underlying = (np.arange(instruments) % underlyings).astype(np.int32)
    usd, usdt = underlyings, underlyings + 1
    listing = [Instrument(id=f"{names[u]}-P{i:04d}", type=InstrumentType.PERPETUAL, underlying=names[u], quote="USD",
                          settlement="USDT", inverse=False, contract_size=1.0) for i, u in enumerate(underlying)]
    mark = asset_price[underlying] * rng.uniform(0.999, 1.001, instruments)
    held = rng.integers(1, 5, accounts)
    position_account = np.repeat(np.arange(accounts, dtype=np.int32), held)
    count = position_account.size
    # Distinct instruments per account: a random start and a random stride.
    offsets = np.arange(count) - np.repeat(np.cumsum(held) - held, held)
    start = np.repeat(rng.integers(0, instruments, accounts), held)
    stride = np.repeat(rng.integers(1, 50, accounts), held)
    position_instrument = ((start + offsets * stride) % instruments).astype(np.int32)
    notional = rng.uniform(1_000.0, 50_000.0, count)
    side = np.where(rng.random(count) < 0.6, 1.0, -1.0)
    price = mark[position_instrument]
    quantity = side * notional / price
    entry_price = price * rng.uniform(0.99, 1.01, count)
    leverage_of = rng.uniform(2.0, 8.0, accounts)
    collateral = np.zeros((accounts, len(assets)))
    collateral[:, usdt] = np.bincount(position_account, weights=notional, minlength=accounts) / leverage_of
    account_mode = np.where(rng.random(accounts) < 0.6, CROSS, ISOLATED).astype(np.int8)
    kind = np.full(instruments, PERPETUAL, dtype=np.int8)
    inverse = np.zeros(instruments, dtype=bool)
    contract_size = np.ones(instruments)
    quote = np.full(instruments, usd, dtype=np.int32)
    settlement = np.full(instruments, usdt, dtype=np.int32)
    return Book(
        as_of=AS_OF, assets=assets, asset_price=asset_price, instruments=tuple(listing), kind=kind, inverse=inverse,
        contract_size=contract_size, tick_size=np.zeros(instruments), strike=np.zeros(instruments),
        is_call=np.zeros(instruments, dtype=bool), years=np.zeros(instruments), underlying=underlying, quote=quote,
        settlement=settlement, mark=mark, underlying_price=asset_price[underlying],
        open_interest=np.zeros(instruments), account_ids=tuple(f"acct-{a:07d}" for a in range(accounts)),
        account_mode=account_mode, hedge_mode=np.zeros(accounts, dtype=bool), collateral=collateral,
        position_account=position_account, position_instrument=position_instrument, quantity=quantity,
        entry_price=entry_price, leverage=np.zeros(count), position_side=np.zeros(count, dtype=np.int8),
        isolated_wallet_usd=np.zeros(count), has_isolated_wallet=np.zeros(count, dtype=bool),
        position_value=position_values(kind, inverse, contract_size, mark, np.ones(instruments), position_instrument,
                                       quantity, entry_price),
        position_matrix=sparse.csr_matrix((quantity, (position_account, position_instrument)),
                                          shape=(accounts, instruments)),
    )


def profile(underlyings: int):  # type: ignore[no-untyped-def]
    return parse_profile({
        "model": "tiered", "name": "benchmark-flat", "version": "1", "source": "benchmark",
        "parameters": {"defaults": {"mm_basis": "mark"}, "underlyings": {
            f"U{u:02d}": {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.01, "max_leverage": 10}]}
            for u in range(underlyings)}}})


def feed(book: Book, count: int, seed: int = 5) -> list[PriceEvent]:
    rng = np.random.default_rng(seed)
    instruments = rng.integers(0, len(book.instruments), count)
    marks = book.mark.copy()
    moves = np.exp(rng.normal(0.0, 0.0005, count))
    start = AS_OF.timestamp()
    events = []
    ids = book.instrument_ids
    for n in range(count):
        i = int(instruments[n])
        marks[i] *= moves[n]
        events.append(PriceEvent(float(marks[i]), start + 5e-5 * (n + 1), instrument=ids[i]))
    return events


async def stream(events: Sequence[PriceEvent]) -> AsyncIterator[PriceEvent]:
    for event in events:
        yield event


def monitor_for(book: Book, requirements_profile: object, window: float) -> Monitor:
    requirements = margin(book, requirements_profile)  # type: ignore[arg-type]
    state = RiskState.from_book(book, requirements, requirements_profile)  # type: ignore[arg-type]
    return Monitor(state, LiquidationEngine(state),
                   MonitorSettings(margin_call_seconds=3600.0, stale_after_seconds=1e9, coalesce_seconds=window))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--instruments", type=int, default=2_000)
    parser.add_argument("--underlyings", type=int, default=20)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=0.010)
    parser.add_argument("--reference-events", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    book = build_book(args.accounts, args.instruments, args.underlyings)
    chosen = profile(args.underlyings)
    events = feed(book, args.events)
    print(f"book: {book.account_count:,} accounts, {book.position_count:,} positions, "
          f"{len(book.instruments):,} instruments over {args.underlyings} underlyings "
          f"(~{book.position_count / len(book.instruments):.0f} positions per instrument); "
          f"built in {time.perf_counter() - started:.1f} s")

    results: dict[str, float] = {}
    for label, window in (("incremental, one event per batch", 0.0),
                          (f"incremental, coalescing {args.window * 1e3:g} ms windows", args.window)):
        monitor = monitor_for(book, chosen, window)
        asyncio.run(monitor.run(stream(events[:1_000])))  # warm-up
        monitor = monitor_for(book, chosen, window)
        t0 = time.perf_counter()
        out = asyncio.run(monitor.run(stream(events)))
        elapsed = time.perf_counter() - t0
        rate = len(events) / elapsed
        results[label] = rate
        print(f"{label}: {len(events):,} events in {elapsed:.2f} s = {rate:,.0f} events/s; "
              f"{monitor.batches:,} batches, {monitor.coalesced:,} events coalesced, "
              f"{len(out):,} engine events out")

    monitor = monitor_for(book, chosen, 0.0)
    everyone = np.arange(book.account_count, dtype=np.int64)
    t0 = time.perf_counter()
    for event in events[:args.reference_events]:
        monitor.state.mark[monitor.instrument_of[str(event.instrument)]] = event.price
        monitor.state.account_status(everyone)
    reference = args.reference_events / (time.perf_counter() - t0)
    print(f"reference, full recompute of every account per event: {reference:,.1f} events/s "
          f"(timed over {args.reference_events} events)")
    for label, rate in results.items():
        print(f"  {label}: {rate / reference:,.0f}x the reference")
    goal = 20_000
    best = max(results.values())
    print(f"goal ≥ {goal:,} events/s sustained: {'met' if best >= goal else 'NOT met'} "
          f"(best {best:,.0f} events/s)")


if __name__ == "__main__":
    main()

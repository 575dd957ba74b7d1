"""Throughput of marginkit's Black-76 price + delta, gamma, vega and theta against QuantLib's BlackCalculator.

Run: .venv/bin/python benchmarks/black76_throughput.py [--options N] [--reference-options K] [--inverse]

A book of N options (default 4,000,000) is drawn with a fixed seed: BTC- and ETH-like forwards, expiries from
one day to two years, strikes with |ln K/F| up to 1.5 around the forward, vols from 20 % to 150 %, calls and
puts, discounting at 4 %. marginkit's `black76_greeks` (one vectorised call returning price, delta, gamma,
vega and theta for every option) is timed single-threaded, best of several runs after a warm-up that compiles
(or loads) the numba kernels. The reference is QuantLib's per-option `BlackCalculator` (constructed per
option, then value, deltaForward, gammaForward, vega and theta), driven by a plain Python loop over the first
K options (default 20,000) and extrapolated linearly to N: that is how a Python caller would use it, so the
figure includes the loop and the SWIG call overhead. The script prints both throughputs, their ratio, the
goal (≥ 20 million options per second on one core) and how far the two disagree on that subset.
"""

from __future__ import annotations

import os

# Single-threaded: set before numpy, scipy and numba are imported.
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from marginkit.pricing import Black76Result, black76_greeks  # noqa: E402

F64 = NDArray[np.float64]
SEED = 20251124
RATE = 0.04
GOAL = 20e6  # options per second
TIMED_RUNS = 7
PRICE_FLOOR = 1e-6  # × F: where QuantLib's textbook formula is compared


def build_book(size: int, inverse: bool) -> dict[str, Any]:
    """Forwards, strikes, expiries, vols, call flags and discount factors of `size` options."""
    rng = np.random.default_rng(SEED)
    forward = np.where(rng.random(size) < 0.6, 95_400.0, 3_300.0) * np.exp(rng.normal(0.0, 0.01, size))
    years = rng.choice(np.array([1, 2, 7, 14, 30, 60, 91, 182, 273, 365, 730]) / 365.0, size)
    strike = forward * np.exp(rng.uniform(-1.5, 1.5, size) * np.sqrt(np.minimum(years, 1.0)))
    volatility = rng.uniform(0.2, 1.5, size)
    is_call = rng.random(size) < 0.5
    discount = np.exp(-RATE * years)
    return {"forward": forward, "strike": strike, "years": years, "volatility": volatility, "is_call": is_call,
            "discount": discount, "inverse": inverse}


def best_time(run: Callable[[], object], runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def marginkit_greeks(book: dict[str, Any]) -> Black76Result:
    return black76_greeks(book["forward"], book["strike"], book["years"], book["volatility"], book["is_call"],
                          book["discount"], inverse=book["inverse"])


def quantlib_greeks(book: dict[str, Any], count: int) -> tuple[float, F64]:
    """Seconds for a Python loop of BlackCalculator over the first `count` options, and its five results each."""
    import QuantLib as ql  # noqa: N813 - the package's own name

    forward, strike, years = book["forward"][:count].tolist(), book["strike"][:count].tolist(), \
        book["years"][:count].tolist()
    volatility, is_call, discount = book["volatility"][:count].tolist(), book["is_call"][:count].tolist(), \
        book["discount"][:count].tolist()
    results = np.empty((count, 5))
    call, put = ql.Option.Call, ql.Option.Put
    start = time.perf_counter()
    for i in range(count):
        calculator = ql.BlackCalculator(ql.PlainVanillaPayoff(call if is_call[i] else put, strike[i]), forward[i],
                                        volatility[i] * math.sqrt(years[i]), discount[i])
        results[i] = (calculator.value(), calculator.deltaForward(), calculator.gammaForward(),
                      calculator.vega(years[i]), calculator.theta(forward[i], years[i]))
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", type=int, default=4_000_000, help="options in the book (default 4,000,000)")
    parser.add_argument("--reference-options", type=int, default=20_000,
                        help="options the QuantLib loop prices, extrapolated to the book (default 20,000)")
    parser.add_argument("--inverse", action="store_true", help="coin-settled options (premium in coin)")
    arguments = parser.parse_args()

    book = build_book(arguments.options, arguments.inverse)
    small = {key: (value[:1000] if isinstance(value, np.ndarray) else value) for key, value in book.items()}
    start = time.perf_counter()
    marginkit_greeks(small)
    warm_up = time.perf_counter() - start
    seconds = best_time(lambda: marginkit_greeks(book), TIMED_RUNS)
    ours = arguments.options / seconds

    print(f"machine: {platform.machine()} {platform.processor() or platform.platform()}, one thread")
    print(f"book: {arguments.options:,} options ({'coin-settled' if arguments.inverse else 'linear'}), "
          f"price + delta + gamma + vega + theta")
    print(f"marginkit black76_greeks: {seconds * 1e3:.1f} ms best of {TIMED_RUNS} "
          f"(warm-up incl. compile/cache load {warm_up:.2f} s) → {ours / 1e6:.1f} million options/s "
          f"({seconds / arguments.options * 1e9:.1f} ns per option)")
    print(f"goal ≥ {GOAL / 1e6:.0f} million options/s on one core: {'met' if ours >= GOAL else 'NOT met'}")

    try:
        reference_seconds, reference = quantlib_greeks(book, arguments.reference_options)
    except ImportError:
        print("QuantLib is not installed (pip install -e '.[dev]'): no reference timing")
        return
    theirs = arguments.reference_options / reference_seconds
    print(f"QuantLib BlackCalculator, Python loop over the first {arguments.reference_options:,} options: "
          f"{reference_seconds:.2f} s → {theirs / 1e6:.3f} million options/s, "
          f"extrapolated {arguments.options / theirs:.1f} s for the book")
    print(f"ratio marginkit / QuantLib: {ours / theirs:,.0f}×")

    subset = {key: (value[:arguments.reference_options] if isinstance(value, np.ndarray) else value)
              for key, value in book.items()}
    linear = black76_greeks(subset["forward"], subset["strike"], subset["years"], subset["volatility"],
                            subset["is_call"], subset["discount"])
    computed = np.stack([linear.price, linear.delta, linear.gamma, linear.vega, linear.theta], axis=1)
    compared = reference[:, 0] >= PRICE_FLOOR * subset["forward"]
    scale = np.maximum(np.abs(reference[compared]), 1e-9 * subset["forward"][compared, None])
    difference = np.max(np.abs(computed[compared] - reference[compared]) / scale, axis=0)
    print(f"largest relative difference from QuantLib (linear terms, {int(compared.sum()):,} options priced above "
          f"{PRICE_FLOOR:g}·F): " + ", ".join(f"{name} {value:.1e}" for name, value in
                                         zip(("price", "delta", "gamma", "vega", "theta"), difference, strict=True)))


if __name__ == "__main__":
    main()

"""Helpers shared by the benchmark scripts: timing, comparison with a reference, and synthetic book shapes.

Not a benchmark itself (`make bench` skips it). Scripts import it as `synthetic_books` (Python puts the script's
folder on the path); set thread-count variables before importing it, as it imports NumPy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import Book

F64 = NDArray[np.float64]
SINGLE_THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def timed(function: Callable[[], object], runs: int) -> tuple[list[float], Any]:
    """Wall-clock seconds of each of `runs` calls, and the last call's result."""
    seconds = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def max_relative_difference(ours: F64, theirs: F64) -> float:
    """max |ours − theirs| / max(|ours|, |theirs|) elementwise (0 where both are 0)."""
    scale = np.maximum(np.maximum(np.abs(ours), np.abs(theirs)), 1e-300)
    return float(np.max(np.abs(ours - theirs) / scale, initial=0.0))


def subset_end(book: Book, target: int) -> int:
    """The end of the first whole accounts that hold at least `target` positions (or all of them)."""
    if target >= book.position_count:
        return book.position_count
    last_account = book.position_account[target - 1]
    return int(np.searchsorted(book.position_account, last_account, side="right"))


def positions_per_account(rng: np.random.Generator, n_positions: int, capacity: NDArray[np.int64],
                          spread: float = 0.5) -> NDArray[np.int64]:
    """Positions per account: lognormal around the mean (log-sd `spread`), 1 to `capacity`, summing to n_positions."""
    n_accounts = capacity.size
    if n_positions < n_accounts or n_positions > int(capacity.sum()):
        raise SystemExit(f"{n_positions} positions do not fit {n_accounts} accounts (1 to {int(capacity.max())} "
                         "legs each)")
    weight = rng.lognormal(0.0, spread, n_accounts)
    count: NDArray[np.int64] = np.clip(np.rint(n_positions * weight / weight.sum()), 1, capacity).astype(np.int64)
    while (gap := n_positions - int(count.sum())) != 0:
        room = np.flatnonzero(count < capacity) if gap > 0 else np.flatnonzero(count > 1)
        chosen = rng.choice(room, size=min(abs(gap), room.size), replace=False)
        count[chosen] += 1 if gap > 0 else -1
    return count

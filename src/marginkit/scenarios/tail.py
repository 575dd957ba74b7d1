"""Tail statistics on the scenario kernel: per group, the k largest scenario losses by partial selection.

The VaR/ES reduction of the one kernel (DESIGN.md principle 3). Each group's scenario P&L vector is accumulated
in a scratch row exactly as `reduce_scenarios` does (same order of additions, plain IEEE float64), turned into
losses (loss = −P&L, + is a loss) and the k largest are kept in a small sorted buffer (insertion: a scenario
enters only when its loss exceeds the k-th largest so far, so the pass costs one comparison per scenario plus
a few insertions). No groups × scenarios matrix is kept: memory is groups × k.

From the k largest losses L(1) ≥ L(2) ≥ … ≥ L(k): historical VaR at level α with N scenarios is L(⌈N(1−α)⌉)
and ES is the mean of the ⌈N(1−α)⌉ largest (shared/reference/risk-models.md, "Definitions"); the interpolated
quantile and the Acerbi–Tasche fractional ES need one more, L(⌈N(1−α)⌉ + 1) — see `marginkit.models.var`.
Ties keep the lowest scenario index first, so results do not depend on the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from marginkit.errors import InputError
from marginkit.scenarios.kernel import (
    GroupedPositions,
    ScenarioMatrix,
    _accumulate,
    _aligned_zeros,
    _as_matrix,
    _check_rows,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TailStatistics:
    """Per group: the k largest scenario losses, largest first (groups × k, + is a loss), and their scenarios.

    `scenarios[g, j]` is the scenario index of `losses[g, j]`; among equal losses the lower index comes first.
    A group with no positions has k zero losses at scenarios 0, 1, …, k−1.
    """

    losses: F64
    scenarios: I64

    @property
    def worst_loss(self) -> F64:
        """Per group: the largest scenario loss (may be negative when every scenario gains)."""
        result: F64 = self.losses[:, 0]
        return result

    @property
    def worst_scenario(self) -> I64:
        """Per group: the index of the scenario with the largest loss (lowest index among ties)."""
        result: I64 = self.scenarios[:, 0]
        return result


@njit(cache=True, nogil=True)
def _tail_groups(start: I64, instrument: I64, quantity: F64, pnl: F64, scenarios: int, k: int, row: F64,
                 losses: F64, where: I64) -> None:  # pragma: no cover - compiled
    count = start.shape[0] - 1
    buffer = np.empty(k, dtype=np.float64)
    index = np.empty(k, dtype=np.int64)
    for g in range(count):
        _accumulate(row, start[g], start[g + 1], instrument, quantity, pnl)
        # Seed with the first k scenarios, insertion-sorted (descending loss, stable).
        for s in range(k):
            value = -row[s]
            j = s
            while j > 0 and buffer[j - 1] < value:
                buffer[j] = buffer[j - 1]
                index[j] = index[j - 1]
                j -= 1
            buffer[j] = value
            index[j] = s
        threshold = buffer[k - 1]
        for s in range(k, scenarios):
            value = -row[s]
            if value > threshold:
                j = k - 1
                while j > 0 and buffer[j - 1] < value:
                    buffer[j] = buffer[j - 1]
                    index[j] = index[j - 1]
                    j -= 1
                buffer[j] = value
                index[j] = s
                threshold = buffer[k - 1]
        for j in range(k):
            losses[g, j] = buffer[j] + 0.0  # −0.0 (a zero P&L) reported as 0.0
            where[g, j] = index[j]


def tail_statistics(positions: GroupedPositions, instrument_pnl: ArrayLike | ScenarioMatrix, k: int) -> TailStatistics:
    """The k largest scenario losses of every group, largest first, without a groups × scenarios matrix.

    `instrument_pnl` is instruments × scenarios P&L per unit of quantity (+ gain), as for `reduce_scenarios`;
    a group's loss in scenario s is −Σ quantity × instrument_pnl[instrument, s]. 1 ≤ k ≤ scenarios; every held
    instrument's P&L must be finite (InputError otherwise). Cost: positions × scenarios multiply-adds plus one
    comparison per group and scenario; memory groups × k.
    """
    matrix = _as_matrix(instrument_pnl)
    _check_rows(positions, matrix)
    scenarios = matrix.scenario_count
    if not 1 <= k <= scenarios:
        raise InputError(f"must be between 1 and the scenario count {scenarios}, got {k}", field="k")
    count = positions.group_count
    losses = np.empty((count, k), dtype=np.float64)
    where = np.empty((count, k), dtype=np.int64)
    _tail_groups(np.ascontiguousarray(positions.start, dtype=np.int64),
                 np.ascontiguousarray(positions.instrument, dtype=np.int64),
                 np.ascontiguousarray(positions.quantity, dtype=np.float64), matrix.padded, scenarios, int(k),
                 _aligned_zeros(1, matrix.padded.shape[1])[0], losses, where)
    return TailStatistics(losses=losses, scenarios=where)

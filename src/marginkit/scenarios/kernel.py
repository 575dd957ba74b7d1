"""The scenario kernel: Σ quantity × instrument P&L per scenario for each group of positions, then a reduction.

A model revalues every instrument once per scenario (an instruments × scenarios matrix of P&L per unit
of quantity, + gain, in the margin currency), chooses how positions group (an account, or an account ×
combined commodity for SPAN), and the kernel does the rest in one compiled pass over the groups:
accumulate the group's scenario vector in a small scratch row, weight positive entries (gain offsets,
capped), take the worst (most negative) weighted P&L and remember its scenario. No groups × scenarios
matrix is kept for the whole book; `scenario_pnl` gives the full vectors for a chosen few groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class GroupedPositions:
    """Positions sorted by group: group g holds rows start[g]:start[g+1] of `instrument` and `quantity`."""

    start: I64
    instrument: I64
    quantity: F64
    order: I64  # position index in the Book of each sorted row

    @property
    def group_count(self) -> int:
        return int(self.start.shape[0] - 1)


@dataclass(frozen=True, eq=False)
class ScenarioReduction:
    """Per group: the worst weighted scenario P&L (≤ 0 is a loss; never above 0 unless every entry gains)."""

    worst_pnl: F64
    worst_scenario: I64


def group_positions(group: I64, instrument: NDArray[np.integer], quantity: F64, group_count: int) -> GroupedPositions:
    """Sort positions by group (stable) and cut the CSR-style row ranges."""
    order = np.argsort(group, kind="stable").astype(np.int64)
    counts = np.bincount(group, minlength=group_count)
    start = np.zeros(group_count + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return GroupedPositions(start=start, instrument=instrument[order].astype(np.int64), quantity=quantity[order],
                            order=order)


@njit(cache=True)
def _reduce(start: I64, instrument: I64, quantity: F64, pnl: F64, gain_weight: F64, gain_cap: F64,
            groups: I64) -> tuple[F64, I64]:  # pragma: no cover - compiled
    scenarios = pnl.shape[1]
    n = groups.shape[0]
    worst = np.empty(n, dtype=np.float64)
    where = np.empty(n, dtype=np.int64)
    row = np.empty(scenarios, dtype=np.float64)
    for k in range(n):
        g = groups[k]
        for s in range(scenarios):
            row[s] = 0.0
        for r in range(start[g], start[g + 1]):
            q = quantity[r]
            i = instrument[r]
            for s in range(scenarios):
                row[s] += q * pnl[i, s]
        best = np.inf
        best_s = 0
        weight = gain_weight[g]
        cap = gain_cap[g]
        for s in range(scenarios):
            value = row[s]
            if value > 0.0:
                value = min(value * weight, cap)
            if value < best:
                best = value
                best_s = s
        worst[k] = best
        where[k] = best_s
    return worst, where


def reduce_scenarios(positions: GroupedPositions, instrument_pnl: F64, gain_weight: F64 | None = None,
                     gain_cap: F64 | None = None, groups: I64 | None = None) -> ScenarioReduction:
    """Worst weighted scenario P&L per group (all groups, or only `groups` for an incremental recompute).

    A positive (gain) entry counts as min(gain × gain_weight, gain_cap); the default weight 1 and cap ∞ keep
    gains as they are, weight 0 drops them (no gain offsets). Units are those of `instrument_pnl` per unit
    of quantity.
    """
    count = positions.group_count
    weight = np.ones(count) if gain_weight is None else np.asarray(gain_weight, dtype=np.float64)
    cap = np.full(count, np.inf) if gain_cap is None else np.asarray(gain_cap, dtype=np.float64)
    chosen = np.arange(count, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    worst, where = _reduce(positions.start, positions.instrument, positions.quantity,
                           np.ascontiguousarray(instrument_pnl, dtype=np.float64), weight, cap, chosen)
    return ScenarioReduction(worst_pnl=worst, worst_scenario=where)


@njit(cache=True)
def _vectors(start: I64, instrument: I64, quantity: F64, pnl: F64, groups: I64) -> F64:  # pragma: no cover
    out = np.zeros((groups.shape[0], pnl.shape[1]), dtype=np.float64)
    for k in range(groups.shape[0]):
        g = groups[k]
        for r in range(start[g], start[g + 1]):
            for s in range(pnl.shape[1]):
                out[k, s] += quantity[r] * pnl[instrument[r], s]
    return out


def scenario_pnl(positions: GroupedPositions, instrument_pnl: F64, groups: I64) -> F64:
    """The full scenario P&L vectors (groups × scenarios) of the chosen groups, for explanations."""
    return _vectors(positions.start, positions.instrument, positions.quantity,
                    np.ascontiguousarray(instrument_pnl, dtype=np.float64), np.asarray(groups, dtype=np.int64))


def groups_holding(positions: GroupedPositions, instruments: NDArray[np.integer], group_count: int) -> I64:
    """The groups that hold any of `instruments` (for an incremental recompute after their prices move)."""
    held = np.isin(positions.instrument, instruments)
    rows = np.flatnonzero(held)
    group_of_row = np.searchsorted(positions.start, rows, side="right") - 1
    return np.unique(group_of_row).astype(np.int64)

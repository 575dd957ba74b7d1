"""Incremental scenario recompute: when one underlying's index moves, reduce only the groups holding it.

`IncrementalIndex` is built once from the grouped positions and each instrument's underlying: for every
underlying, the sorted instruments on it and the sorted groups holding any of them (two CSR-style tables),
so the groups to recompute after a move are a slice, not a scan of every position. `ScenarioState` keeps a
`ScenarioMatrix` and the per-group worst P&L and worst scenario of the whole book, and `apply_moves` rewrites
the moved instruments' P&L rows and re-reduces the affected groups in place. Because a group's result does
not depend on which other groups are reduced with it, the state after any sequence of moves equals, bit for
bit, a full `reduce_scenarios` on the current matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from marginkit.errors import InputError
from marginkit.scenarios.kernel import (
    F64,
    I64,
    GroupedPositions,
    ScenarioMatrix,
    ScenarioReduction,
    reduce_scenarios,
)


@njit(cache=True)
def _groups_by_underlying(start: I64, instrument: I64, underlying: I64,
                          underlying_count: int) -> tuple[I64, I64]:  # pragma: no cover - compiled
    """CSR of underlying → sorted distinct groups holding an instrument on it (two passes over positions)."""
    group_count = start.shape[0] - 1
    last = np.full(underlying_count, -1, dtype=np.int64)
    offsets = np.zeros(underlying_count + 1, dtype=np.int64)
    for g in range(group_count):
        for r in range(start[g], start[g + 1]):
            u = underlying[instrument[r]]
            if last[u] != g:
                last[u] = g
                offsets[u + 1] += 1
    for u in range(underlying_count):
        offsets[u + 1] += offsets[u]
    groups = np.empty(offsets[underlying_count], dtype=np.int64)
    fill = offsets[:-1].copy()
    last[:] = -1
    for g in range(group_count):
        for r in range(start[g], start[g + 1]):
            u = underlying[instrument[r]]
            if last[u] != g:
                last[u] = g
                groups[fill[u]] = g
                fill[u] += 1
    return offsets, groups


def _read_only(array: I64) -> I64:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class IncrementalIndex:
    """Which instruments are on each underlying and which groups hold any of them (CSR tables, built once).

    `underlying[i]` is instrument i's underlying (an index below `underlying_count`); underlying u's
    instruments are `instruments[instrument_start[u]:instrument_start[u+1]]` and the groups holding any of
    them `groups[group_start[u]:group_start[u+1]]`, both sorted. Arrays are read-only; rebuild the index
    when positions change.
    """

    underlying: I64
    instrument_start: I64
    instruments: I64
    group_start: I64
    groups: I64

    @classmethod
    def build(cls, positions: GroupedPositions, underlying: ArrayLike,
              underlying_count: int | None = None) -> IncrementalIndex:
        """Index `positions` by underlying: O(positions) once; `underlying` has one entry per instrument."""
        of = np.array(underlying, dtype=np.int64)  # our own copy: it is made read-only below
        if of.ndim != 1 or of.shape[0] < positions.instrument_span:
            raise InputError(f"needs one underlying per instrument (at least {positions.instrument_span})",
                             field="underlying")
        count = int(of.max()) + 1 if underlying_count is None and of.size else int(underlying_count or 0)
        if of.size and (of.min() < 0 or of.max() >= count):
            raise InputError(f"underlying index out of range 0..{count - 1}", field="underlying")
        order = np.argsort(of, kind="stable").astype(np.int64)
        instrument_start = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(np.bincount(of, minlength=count), out=instrument_start[1:])
        group_start, groups = _groups_by_underlying(np.ascontiguousarray(positions.start, dtype=np.int64),
                                                    np.ascontiguousarray(positions.instrument, dtype=np.int64),
                                                    of, count)
        return cls(underlying=_read_only(of), instrument_start=_read_only(instrument_start),
                   instruments=_read_only(order), group_start=_read_only(group_start), groups=_read_only(groups))

    @property
    def underlying_count(self) -> int:
        return int(self.instrument_start.shape[0] - 1)

    def _underlyings(self, underlyings: int | Sequence[int] | ArrayLike) -> I64:
        chosen = np.unique(np.asarray(underlyings, dtype=np.int64).reshape(-1))
        if chosen.size and (chosen[0] < 0 or chosen[-1] >= self.underlying_count):
            raise InputError(f"underlying index out of range 0..{self.underlying_count - 1}", field="underlyings")
        return chosen

    def instruments_on(self, underlyings: int | Sequence[int] | ArrayLike) -> I64:
        """The sorted instruments on any of `underlyings` (the P&L rows a move of them changes)."""
        chosen = self._underlyings(underlyings)
        if chosen.size == 1:
            u = int(chosen[0])
            one: I64 = self.instruments[self.instrument_start[u]: self.instrument_start[u + 1]]
            return one
        parts = [self.instruments[self.instrument_start[u]: self.instrument_start[u + 1]] for u in chosen]
        result: I64 = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        return result

    def groups_holding(self, underlyings: int | Sequence[int] | ArrayLike) -> I64:
        """The sorted groups holding an instrument on any of `underlyings` (a slice for one underlying)."""
        chosen = self._underlyings(underlyings)
        if chosen.size == 1:
            u = int(chosen[0])
            one: I64 = self.groups[self.group_start[u]: self.group_start[u + 1]]
            return one
        parts = [self.groups[self.group_start[u]: self.group_start[u + 1]] for u in chosen]
        result: I64 = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        return result


class ScenarioState:
    """The book's per-group worst scenario, kept current as underlyings move (the one stateful helper here).

    Built with a full reduction of `instrument_pnl` (instruments × scenarios, P&L per unit of quantity,
    + gain); afterwards `apply_moves(underlyings, rows)` takes the revalued P&L rows of the instruments on
    the moved underlyings (`index.instruments_on(underlyings)`, in that order), writes them into the kept
    matrix and re-reduces only `index.groups_holding(underlyings)`, updating `worst_pnl` and
    `worst_scenario` in place. Gain weights and caps are fixed per group as in `reduce_scenarios`.
    Memory: the padded matrix plus two arrays of one entry per group; no groups × scenarios matrix.
    """

    def __init__(self, positions: GroupedPositions, instrument_pnl: ArrayLike | ScenarioMatrix,
                 index: IncrementalIndex, gain_weight: ArrayLike | None = None,
                 gain_cap: ArrayLike | None = None) -> None:
        if index.underlying.shape[0] < positions.instrument_span:
            raise InputError("the index does not cover these positions' instruments", field="index")
        source = instrument_pnl.values if isinstance(instrument_pnl, ScenarioMatrix) else instrument_pnl
        self.positions = positions
        self.index = index
        self.matrix = ScenarioMatrix(source)  # our own copy: the state rewrites its rows
        count = positions.group_count
        self._weight = None if gain_weight is None else np.array(gain_weight, dtype=np.float64)
        self._cap = None if gain_cap is None else np.array(gain_cap, dtype=np.float64)
        self._result = ScenarioReduction(worst_pnl=np.empty(count, dtype=np.float64),
                                         worst_scenario=np.empty(count, dtype=np.int64))
        reduce_scenarios(positions, self.matrix, self._weight, self._cap, out=self._result)

    @property
    def worst_pnl(self) -> F64:
        """Per group: the worst weighted scenario P&L (a read-only view of the live array)."""
        view: F64 = self._result.worst_pnl.view()
        view.flags.writeable = False
        return view

    @property
    def worst_scenario(self) -> I64:
        """Per group: the index of the worst scenario (a read-only view of the live array)."""
        view: I64 = self._result.worst_scenario.view()
        view.flags.writeable = False
        return view

    def reduction(self) -> ScenarioReduction:
        """A copy of the current per-group results."""
        return ScenarioReduction(worst_pnl=self._result.worst_pnl.copy(),
                                 worst_scenario=self._result.worst_scenario.copy())

    def recompute(self, groups: ArrayLike) -> None:
        """Re-reduce `groups` from the kept matrix (e.g. after `matrix.set_rows` of your own)."""
        reduce_scenarios(self.positions, self.matrix, self._weight, self._cap, groups, out=self._result)

    def update(self, instruments: ArrayLike, rows: ArrayLike) -> I64:
        """Replace the P&L rows of `instruments` and re-reduce every group holding an instrument on their
        underlyings; returns those groups (sorted)."""
        chosen = np.asarray(instruments, dtype=np.int64).reshape(-1)
        if chosen.size and (chosen.min() < 0 or chosen.max() >= self.index.underlying.shape[0]):
            raise InputError("instrument index out of range", field="instruments")
        affected = self.index.groups_holding(self.index.underlying[chosen])
        self._apply(chosen, rows, affected)
        return affected

    def apply_moves(self, underlyings: int | Sequence[int] | ArrayLike, rows: ArrayLike) -> I64:
        """After `underlyings` move: `rows` are the new P&L rows of `index.instruments_on(underlyings)`, in
        that order; re-reduce `index.groups_holding(underlyings)` and return them."""
        instruments = self.index.instruments_on(underlyings)
        affected = self.index.groups_holding(underlyings)
        self._apply(instruments, rows, affected)
        return affected

    def _apply(self, instruments: I64, rows: ArrayLike, affected: I64) -> None:
        # Validate before writing anything, so that a rejected update changes nothing.
        new = np.asarray(rows, dtype=np.float64)
        if new.shape != (instruments.shape[0], self.matrix.scenario_count):
            raise InputError(f"rows must be {instruments.shape[0]} × {self.matrix.scenario_count}, "
                             f"got shape {new.shape}", field="rows")
        finite = np.isfinite(new)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=1))
            span = self.positions.instrument_span
            held = [k for k in bad if instruments[k] < span and self.positions.held[instruments[k]]]
            if held:
                k = int(held[0])
                scenario = int(np.flatnonzero(~finite[k])[0])
                raise InputError("must be finite for every held instrument",
                                 field=f"rows[{k}, {scenario}] (instrument {int(instruments[k])})")
        self.matrix.set_rows(instruments, new)
        if affected.size:
            reduce_scenarios(self.positions, self.matrix, self._weight, self._cap, affected, out=self._result)

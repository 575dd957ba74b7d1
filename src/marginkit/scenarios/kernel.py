"""The scenario kernel: Σ quantity × instrument P&L per scenario for each group of positions, then a reduction.

A model revalues every instrument once per scenario (an instruments × scenarios matrix of P&L per unit
of quantity, + gain, in the margin currency), chooses how positions group (an account, or an account ×
combined commodity for SPAN), and the kernel does the rest in one compiled pass over the groups:
accumulate the group's scenario vector in a small scratch row, weight positive entries (gain offsets,
capped), take the worst (most negative) weighted P&L and remember its scenario. No groups × scenarios
matrix is kept for the whole book; `scenario_pnl` gives the full vectors for a chosen few groups.

How the pass is laid out (all of it plain IEEE float64 arithmetic, no fast-math, so results are the same on
every run and for every subset of groups):

- The P&L matrix is copied once per call (or kept, see `ScenarioMatrix`) with each instrument row padded
  with zeros to a whole number of 64-byte cache lines and the matrix aligned to 64 bytes, so the loops over
  scenarios run on whole vectors with no remainder and each row load touches the fewest cache lines.
- A group's positions are added four (then one) at a time: row[s] = (((row[s] + q₀p₀[s]) + q₁p₁[s]) +
  q₂p₂[s]) + q₃p₃[s], the same order of additions as one position at a time, with a quarter of the scratch
  row's loads and stores.
- The worst scenario is found without a data-dependent branch: weighted entries are mapped to int64 keys
  that order like the floats (−0 counted as +0), an integer minimum and a "first index equal to it" pass
  both vectorise, and ties go to the lowest scenario index.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from marginkit.errors import InputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

# Scenario columns are padded to a multiple of LANES float64 (one 64-byte cache line, one AVX-512 vector).
LANES = 8
ALIGNMENT = 64
_KEY_MAX = np.int64(0x7FFFFFFFFFFFFFFF)
# Groups per chunk of an incremental recompute (see `_reduce_groups`).
TOUCH_CHUNK = 256


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

    @cached_property
    def instrument_span(self) -> int:
        """1 + the largest instrument index held (0 with no positions): the P&L matrix needs this many rows."""
        return int(self.instrument.max()) + 1 if self.instrument.size else 0

    @cached_property
    def held(self) -> B:
        """Per instrument index (below `instrument_span`): whether any group holds it."""
        held: B = np.bincount(self.instrument, minlength=self.instrument_span) > 0
        return held


@dataclass(frozen=True, eq=False)
class ScenarioReduction:
    """Per group: the worst weighted scenario P&L (≤ 0 is a loss; never above 0 unless every entry gains)."""

    worst_pnl: F64
    worst_scenario: I64


def _aligned_zeros(rows: int, columns: int) -> F64:
    """A C-contiguous rows × columns float64 array of zeros whose data starts on a 64-byte boundary."""
    size = rows * columns
    buffer = np.zeros(size + ALIGNMENT // 8, dtype=np.float64)
    offset = (-buffer.ctypes.data % ALIGNMENT) // 8
    result: F64 = buffer[offset: offset + size].reshape(rows, columns)
    return result


class ScenarioMatrix:
    """An instruments × scenarios P&L matrix stored the way the kernel reads it (rows padded, 64-byte aligned).

    `reduce_scenarios` pads a plain matrix on every call (a copy of instruments × scenarios floats); a model
    that reduces the same matrix several times, or keeps it and rewrites the rows of moved instruments
    (`ScenarioState`), builds one `ScenarioMatrix` instead. Units are those of the P&L per unit of quantity.
    """

    __slots__ = ("padded", "scenario_count")

    def __init__(self, instrument_pnl: ArrayLike) -> None:
        values = np.asarray(instrument_pnl, dtype=np.float64)
        if values.ndim != 2:
            raise InputError(f"must be instruments × scenarios (2-D), got shape {values.shape}",
                             field="instrument_pnl")
        if values.shape[1] < 1:
            raise InputError("needs at least one scenario", field="instrument_pnl")
        count = int(values.shape[1])
        width = -(-count // LANES) * LANES
        self.scenario_count = count
        self.padded = _aligned_zeros(int(values.shape[0]), width)
        self.padded[:, :count] = values

    @property
    def instrument_count(self) -> int:
        return int(self.padded.shape[0])

    @property
    def values(self) -> F64:
        """The instruments × scenarios P&L (a view; writes go through `set_rows`)."""
        view: F64 = self.padded[:, : self.scenario_count]
        return view

    def set_rows(self, instruments: ArrayLike, rows: ArrayLike) -> None:
        """Replace the P&L rows of `instruments` (rows: len(instruments) × scenarios) in place."""
        chosen = np.asarray(instruments, dtype=np.int64)
        new = np.asarray(rows, dtype=np.float64)
        if new.shape != (chosen.shape[0], self.scenario_count):
            raise InputError(f"rows must be {chosen.shape[0]} × {self.scenario_count}, got shape {new.shape}",
                             field="instrument_pnl")
        if chosen.size and (chosen.min() < 0 or chosen.max() >= self.instrument_count):
            raise InputError(f"instrument index out of range 0..{self.instrument_count - 1}", field="instruments")
        self.padded[chosen, : self.scenario_count] = new


def group_positions(group: I64, instrument: NDArray[np.integer], quantity: F64, group_count: int) -> GroupedPositions:
    """Sort positions by group (stable) and cut the CSR-style row ranges."""
    group = np.asarray(group)
    if group.size and (group.min() < 0 or group.max() >= group_count):
        raise InputError(f"group index out of range 0..{group_count - 1}", field="group")
    if instrument.size and instrument.min() < 0:
        raise InputError("instrument index must not be negative", field="instrument")
    if not np.isfinite(quantity).all():
        raise InputError("must be finite", field=f"quantity[{int(np.flatnonzero(~np.isfinite(quantity))[0])}]")
    order = np.argsort(group, kind="stable").astype(np.int64)
    counts = np.bincount(group, minlength=group_count)
    start = np.zeros(group_count + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return GroupedPositions(start=start, instrument=instrument[order].astype(np.int64),
                            quantity=np.ascontiguousarray(quantity[order], dtype=np.float64), order=order)


@njit(inline="always")
def _accumulate(row: F64, first: int, end: int, instrument: I64, quantity: F64,
                pnl: F64) -> None:  # pragma: no cover - compiled
    """row ← Σ quantity × pnl[instrument] over rows first:end, added in row order."""
    width = row.shape[0]
    for s in range(width):
        row[s] = 0.0
    r = first
    while r + 4 <= end:
        q0 = quantity[r]
        q1 = quantity[r + 1]
        q2 = quantity[r + 2]
        q3 = quantity[r + 3]
        p0 = pnl[instrument[r]]
        p1 = pnl[instrument[r + 1]]
        p2 = pnl[instrument[r + 2]]
        p3 = pnl[instrument[r + 3]]
        for s in range(width):
            row[s] = (((row[s] + q0 * p0[s]) + q1 * p1[s]) + q2 * p2[s]) + q3 * p3[s]
        r += 4
    while r < end:
        q0 = quantity[r]
        p0 = pnl[instrument[r]]
        for s in range(width):
            row[s] = row[s] + q0 * p0[s]
        r += 1


@njit(inline="always")
def _worst_of_row(row: F64, key: I64, scenarios: int, weight: float,
                  cap: float) -> tuple[float, int]:  # pragma: no cover - compiled
    """The minimum over the first `scenarios` entries of the weighted row and its first index.

    Gains become min(gain × weight, cap); + 0.0 turns −0 into +0. The float64 bits, read as int64 through
    `key` (a view of `row`), become keys that order like the floats: negative numbers have every bit but
    the sign flipped. Padding columns get the largest key, so they never win.
    """
    width = row.shape[0]
    for s in range(width):
        value = row[s]
        gain = value * weight
        gain = gain if gain < cap else cap
        row[s] = (gain if value > 0.0 else value) + 0.0
    for s in range(width):
        bits = key[s]
        bits = bits ^ ((bits >> 63) & _KEY_MAX)
        key[s] = bits if s < scenarios else _KEY_MAX
    best = _KEY_MAX
    for s in range(width):
        bits = key[s]
        best = bits if bits < best else best
    first = width
    for s in range(width):
        candidate = s if key[s] == best else width
        first = candidate if candidate < first else first
    key[0] = best ^ ((best >> 63) & _KEY_MAX)
    return row[0], (first if first < scenarios else 0)


@njit(cache=True, nogil=True)
def _reduce_groups(start: I64, instrument: I64, quantity: F64, pnl: F64, scenarios: int, weight: F64,
                   weight_step: int, cap: F64, cap_step: int, groups: I64, all_groups: bool, row: F64,
                   worst: F64, where: I64, in_place: bool) -> int:  # pragma: no cover - compiled
    """Reduce each chosen group into worst/where (at the group's index if `in_place`, else at k).

    Chosen groups are scattered over the book, so they go in chunks of TOUCH_CHUNK: a first loop reads a
    few words of each group's data (independent loads the CPU overlaps, bringing the cache lines in), the
    second computes. The returned number is those reads' sum, only so that they are not optimised away.
    """
    key = row.view(np.int64)
    count = start.shape[0] - 1 if all_groups else groups.shape[0]
    chunk = max(count, 1) if all_groups else TOUCH_CHUNK
    # Integer views: the touching loads only move bits, never floating-point values.
    quantity_bits = quantity.view(np.int64)
    weight_bits = weight.view(np.int64)
    cap_bits = cap.view(np.int64)
    worst_bits = worst.view(np.int64)
    touched = 0
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        if not all_groups:
            for k in range(first, last):
                g = groups[k]
                begin = start[g]
                end = start[g + 1]
                if end > begin:
                    middle = (begin + end) // 2
                    touched += quantity_bits[begin] ^ quantity_bits[middle] ^ quantity_bits[end - 1]
                    touched += instrument[begin] ^ instrument[middle] ^ instrument[end - 1]
                touched += weight_bits[g * weight_step] ^ cap_bits[g * cap_step]
                if in_place:
                    touched += worst_bits[g] ^ where[g]
        for k in range(first, last):
            g = k if all_groups else groups[k]
            _accumulate(row, start[g], start[g + 1], instrument, quantity, pnl)
            value, scenario = _worst_of_row(row, key, scenarios, weight[g * weight_step], cap[g * cap_step])
            out = g if in_place else k
            worst[out] = value
            where[out] = scenario
    return touched


def _as_matrix(instrument_pnl: ArrayLike | ScenarioMatrix) -> ScenarioMatrix:
    return instrument_pnl if isinstance(instrument_pnl, ScenarioMatrix) else ScenarioMatrix(instrument_pnl)


def _check_rows(positions: GroupedPositions, matrix: ScenarioMatrix) -> None:
    """The matrix must cover every held instrument, and each held instrument's P&L must be finite."""
    if matrix.instrument_count < positions.instrument_span:
        raise InputError(f"has {matrix.instrument_count} instrument rows; the positions need "
                         f"{positions.instrument_span}", field="instrument_pnl")
    finite = np.isfinite(matrix.values).all(axis=1)
    if finite.all():
        return
    rows = np.flatnonzero(~finite)
    rows = rows[rows < positions.instrument_span]
    held = rows[positions.held[rows]]
    if held.size:
        row = int(held[0])
        scenario = int(np.flatnonzero(~np.isfinite(matrix.values[row]))[0])
        raise InputError("must be finite for every held instrument", field=f"instrument_pnl[{row}, {scenario}]")


def _per_group(values: ArrayLike | None, default: float, count: int, name: str,
               groups: I64 | None) -> tuple[F64, int]:
    """A per-group parameter as (array, step): step 0 reads element 0 for every group."""
    if values is None:
        return np.full(1, default), 0
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.shape != (count,):
        raise InputError(f"must have one entry per group ({count}), got shape {array.shape}", field=name)
    used = array if groups is None else array[groups]
    bad = np.isnan(used) | (used == -np.inf) if name == "gain_cap" else ~np.isfinite(used)
    if bad.any():
        index = int(np.flatnonzero(bad)[0]) if groups is None else int(groups[np.flatnonzero(bad)[0]])
        raise InputError("must be a number" + (" (+inf for no cap)" if name == "gain_cap" else " (finite)"),
                         field=f"{name}[{index}]")
    return array, 1


def _chosen(groups: ArrayLike | None, count: int) -> I64 | None:
    if groups is None:
        return None
    chosen = np.ascontiguousarray(groups, dtype=np.int64)
    if not chosen.flags.writeable:
        chosen = chosen.copy()  # one compiled signature: numba types read-only arrays apart
    if chosen.ndim != 1:
        raise InputError("must be a 1-D array of group indices", field="groups")
    if chosen.size and (chosen.min() < 0 or chosen.max() >= count):
        raise InputError(f"group index out of range 0..{count - 1}", field="groups")
    return chosen


def reduce_scenarios(positions: GroupedPositions, instrument_pnl: ArrayLike | ScenarioMatrix,
                     gain_weight: ArrayLike | None = None, gain_cap: ArrayLike | None = None,
                     groups: ArrayLike | None = None, *, out: ScenarioReduction | None = None) -> ScenarioReduction:
    """Worst weighted scenario P&L per group (all groups, or only `groups` for an incremental recompute).

    A positive (gain) entry counts as min(gain × gain_weight, gain_cap); the default weight 1 and cap ∞ keep
    gains as they are, weight 0 drops them (no gain offsets). Units are those of `instrument_pnl` per unit
    of quantity. The worst scenario is the lowest scenario index reaching the minimum; a group with no
    positions gets 0.0 at scenario 0. Every held instrument's P&L must be finite (InputError otherwise);
    the result is the same bit for bit whether a group is reduced with all groups or in a chosen few.

    `out` (optional): a reduction over all groups whose arrays are updated in place, at each chosen group's
    index, and returned; without it the result has one entry per chosen group, in the order given.
    """
    count = positions.group_count
    matrix = _as_matrix(instrument_pnl)
    _check_rows(positions, matrix)
    chosen = _chosen(groups, count)
    weight, weight_step = _per_group(gain_weight, 1.0, count, "gain_weight", chosen)
    cap, cap_step = _per_group(gain_cap, np.inf, count, "gain_cap", chosen)
    size = count if chosen is None else int(chosen.shape[0])
    if out is None:
        result = ScenarioReduction(worst_pnl=np.empty(size, dtype=np.float64),
                                   worst_scenario=np.empty(size, dtype=np.int64))
    else:
        if out.worst_pnl.shape != (count,) or out.worst_scenario.shape != (count,):
            raise InputError(f"out must hold one entry per group ({count})", field="out")
        if out.worst_pnl.dtype != np.float64 or out.worst_scenario.dtype != np.int64:
            raise InputError("out must be float64 worst_pnl and int64 worst_scenario", field="out")
        if not all(a.flags.c_contiguous and a.flags.writeable for a in (out.worst_pnl, out.worst_scenario)):
            raise InputError("out's arrays must be contiguous and writeable", field="out")
        result = out
    _reduce_groups(np.ascontiguousarray(positions.start, dtype=np.int64),
                   np.ascontiguousarray(positions.instrument, dtype=np.int64),
                   np.ascontiguousarray(positions.quantity, dtype=np.float64), matrix.padded,
                   matrix.scenario_count, weight, weight_step, cap, cap_step,
                   np.zeros(0, dtype=np.int64) if chosen is None else chosen, chosen is None,
                   _aligned_zeros(1, matrix.padded.shape[1])[0], result.worst_pnl, result.worst_scenario,
                   out is not None)
    return result


@njit(cache=True)
def _vectors(start: I64, instrument: I64, quantity: F64, pnl: F64, groups: I64) -> F64:  # pragma: no cover
    out = np.zeros((groups.shape[0], pnl.shape[1]), dtype=np.float64)
    for k in range(groups.shape[0]):
        g = groups[k]
        for r in range(start[g], start[g + 1]):
            for s in range(pnl.shape[1]):
                out[k, s] += quantity[r] * pnl[instrument[r], s]
    return out


def scenario_pnl(positions: GroupedPositions, instrument_pnl: ArrayLike | ScenarioMatrix, groups: ArrayLike) -> F64:
    """The full scenario P&L vectors (groups × scenarios) of the chosen groups, for explanations."""
    values = instrument_pnl.values if isinstance(instrument_pnl, ScenarioMatrix) else instrument_pnl
    return _vectors(positions.start, positions.instrument, positions.quantity,
                    np.ascontiguousarray(values, dtype=np.float64), np.asarray(groups, dtype=np.int64))


def groups_holding(positions: GroupedPositions, instruments: NDArray[np.integer], group_count: int) -> I64:
    """The groups that hold any of `instruments` (a scan of every position; `IncrementalIndex` answers by lookup)."""
    held = np.isin(positions.instrument, instruments)
    rows = np.flatnonzero(held)
    group_of_row = np.searchsorted(positions.start, rows, side="right") - 1
    return np.unique(group_of_row).astype(np.int64)

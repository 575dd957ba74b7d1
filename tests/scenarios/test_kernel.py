"""The scenario kernel: hand-computed reductions, the incremental index, and incremental = full recompute.

Conventions: instrument P&L is per unit of quantity, + gain; a group's scenario P&L is Σ quantity × P&L; a
gain counts as min(gain × weight, cap); the worst scenario is the first one reaching the minimum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginkit.errors import InputError
from marginkit.scenarios.incremental import IncrementalIndex, ScenarioState
from marginkit.scenarios.kernel import (
    GroupedPositions,
    ScenarioMatrix,
    ScenarioReduction,
    group_positions,
    groups_holding,
    reduce_scenarios,
    scenario_pnl,
)

PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _grouped(group: list[int], instrument: list[int], quantity: list[float], count: int) -> GroupedPositions:
    return group_positions(np.array(group, dtype=np.int64), np.array(instrument, dtype=np.int64),
                           np.array(quantity, dtype=np.float64), count)


def _naive(positions: GroupedPositions, pnl: np.ndarray, weight: np.ndarray | None = None,
           cap: np.ndarray | None = None) -> tuple[list[float], list[int]]:
    """One group at a time in plain Python, positions added in row order (the kernel's order)."""
    worst: list[float] = []
    where: list[int] = []
    for g in range(positions.group_count):
        row = [0.0] * pnl.shape[1]
        for r in range(positions.start[g], positions.start[g + 1]):
            for s in range(pnl.shape[1]):
                row[s] += float(positions.quantity[r]) * float(pnl[positions.instrument[r], s])
        w = 1.0 if weight is None else float(weight[g])
        c = math.inf if cap is None else float(cap[g])
        weighted = [min(v * w, c) if v > 0.0 else v for v in row]
        best, best_s = math.inf, 0
        for s, value in enumerate(weighted):
            if value < best:
                best, best_s = value, s
        worst.append(best)
        where.append(best_s)
    return worst, where


# ----------------------------------------------------------------------------------------------------------
# Hand-computed reductions
# ----------------------------------------------------------------------------------------------------------

# Three instruments, three scenarios (P&L per unit, + gain).
PNL = np.array([[1.0, -2.0, 3.0],
                [-1.0, 0.5, 2.0],
                [4.0, 1.0, 2.0]])


def test_worst_loss_and_scenario_by_hand() -> None:
    # group 0: 2 × inst 0 + 1 × inst 1 = [2 − 1, −4 + 0.5, 6 + 2] = [1, −3.5, 8] → −3.5 at scenario 1
    # group 1: −1 × inst 0 = [−1, 2, −3] → −3 at scenario 2
    # group 2: no positions → 0 at scenario 0
    # group 3: 1 × inst 2 = [4, 1, 2] → every scenario gains: the smallest gain, 1 at scenario 1
    positions = _grouped([0, 1, 0, 3], [0, 0, 1, 2], [2.0, -1.0, 1.0, 1.0], 4)
    result = reduce_scenarios(positions, PNL)
    assert result.worst_pnl.tolist() == [-3.5, -3.0, 0.0, 1.0]
    assert result.worst_scenario.tolist() == [1, 2, 0, 1]


def test_gain_weight_and_cap_by_hand() -> None:
    # All four groups hold 1 × inst 2 = [4, 1, 2] except group 3 = 2 × inst 0 + 1 × inst 1 = [1, −3.5, 8].
    positions = _grouped([0, 1, 2, 3, 3], [2, 2, 2, 0, 1], [1.0, 1.0, 1.0, 2.0, 1.0], 4)
    weight = np.array([0.5, 0.5, 0.0, 0.0])
    cap = np.array([1.5, 0.4, np.inf, np.inf])
    result = reduce_scenarios(positions, PNL, weight, cap)
    # group 0: [min(2, 1.5), min(0.5, 1.5), min(1, 1.5)] = [1.5, 0.5, 1] → 0.5 at scenario 1
    # group 1: [min(2, 0.4), min(0.5, 0.4), min(1, 0.4)] = [0.4, 0.4, 0.4] → 0.4, first tie: scenario 0
    # group 2: weight 0 drops gains: [0, 0, 0] → 0 at scenario 0
    # group 3: weight 0: [0, −3.5, 0] → losses are never weighted: −3.5 at scenario 1
    assert result.worst_pnl.tolist() == [0.5, 0.4, 0.0, -3.5]
    assert result.worst_scenario.tolist() == [1, 0, 0, 1]


def test_ties_go_to_the_first_scenario_and_zero_is_positive() -> None:
    pnl = np.array([[-2.0, -2.0, 1.0, -2.0], [0.0, 0.0, 1.0, 2.0]])
    # group 0: [−2, −2, 1, −2] → −2, first at scenario 0
    # group 1: −1 × inst 1 = [0, 0, −1, −2] → −2 at scenario 3
    # group 2: 1 × inst 1 − 1 × inst 1 = [0, 0, 0, 0] → 0 at scenario 0
    # group 3: −1 × inst 1, weight 0 (no gains): [0, 0, −1, −2] → −2 at 3 (losses are not weighted)
    positions = _grouped([0, 1, 2, 2, 3], [0, 1, 1, 1, 1], [1.0, -1.0, 1.0, -1.0, -1.0], 4)
    result = reduce_scenarios(positions, pnl, gain_weight=np.array([1.0, 1.0, 1.0, 0.0]))
    assert result.worst_pnl.tolist() == [-2.0, -2.0, 0.0, -2.0]
    assert result.worst_scenario.tolist() == [0, 3, 0, 3]
    # A short position times a zero P&L is −0 alone, but a zero result is reported as +0.
    zero = reduce_scenarios(_grouped([0, 1], [0, 0], [-1.0, 1.0], 2), np.array([[0.0, 0.0]]),
                            gain_weight=np.array([1.0, 0.0]))
    assert zero.worst_scenario.tolist() == [0, 0]
    assert [math.copysign(1.0, v) for v in zero.worst_pnl] == [1.0, 1.0]


@pytest.mark.parametrize("scenarios", [1, 2, 7, 8, 9, 16, 27, 63, 64, 65])
def test_matches_a_plain_loop_for_every_width_and_position_count(scenarios: int) -> None:
    # Position counts 0..13 exercise the four-at-a-time loop and its remainder; widths around multiples of 8
    # exercise the padding. Integer P&L makes many exact ties.
    rng = np.random.default_rng(scenarios)
    counts = np.arange(14)
    group = np.repeat(np.arange(counts.size), counts)
    instrument = rng.integers(0, 6, group.size)
    quantity = rng.integers(-3, 4, group.size).astype(np.float64)
    positions = group_positions(group, instrument, quantity, counts.size)
    for pnl in (rng.integers(-2, 3, (6, scenarios)).astype(np.float64), rng.normal(size=(6, scenarios))):
        weight = rng.uniform(0.0, 1.0, counts.size)
        cap = np.where(rng.random(counts.size) < 0.5, np.inf, rng.uniform(0.0, 2.0, counts.size))
        for w, c in ((None, None), (weight, cap)):
            result = reduce_scenarios(positions, pnl, w, c)
            worst, where = _naive(positions, pnl, w, c)
            assert result.worst_pnl.tolist() == worst
            assert result.worst_scenario.tolist() == where


def test_chosen_groups_in_place_and_a_scenario_matrix_give_the_same_numbers() -> None:
    rng = np.random.default_rng(7)
    group = rng.integers(0, 30, 200)
    positions = group_positions(group, rng.integers(0, 12, 200), rng.normal(size=200), 30)
    pnl = rng.normal(size=(12, 11))
    weight, cap = rng.uniform(0, 1, 30), rng.uniform(0, 3, 30)
    full = reduce_scenarios(positions, pnl, weight, cap)
    chosen = np.array([29, 3, 3, 0, 17])
    some = reduce_scenarios(positions, pnl, weight, cap, groups=chosen)
    np.testing.assert_array_equal(some.worst_pnl, full.worst_pnl[chosen])
    np.testing.assert_array_equal(some.worst_scenario, full.worst_scenario[chosen])
    matrix = ScenarioMatrix(pnl)
    again = reduce_scenarios(positions, matrix, weight, cap)
    np.testing.assert_array_equal(again.worst_pnl, full.worst_pnl)
    np.testing.assert_array_equal(matrix.values, pnl)
    out = ScenarioReduction(worst_pnl=np.full(30, 99.0), worst_scenario=np.full(30, -1, dtype=np.int64))
    returned = reduce_scenarios(positions, pnl, weight, cap, groups=chosen, out=out)
    assert returned is out
    touched = np.isin(np.arange(30), chosen)
    np.testing.assert_array_equal(out.worst_pnl[touched], full.worst_pnl[touched])
    assert (out.worst_pnl[~touched] == 99.0).all() and (out.worst_scenario[~touched] == -1).all()
    vectors = scenario_pnl(positions, matrix, chosen)
    assert vectors.shape == (5, 11)
    unweighted = reduce_scenarios(positions, pnl, groups=chosen)
    np.testing.assert_array_equal(unweighted.worst_pnl, vectors.min(axis=1))
    np.testing.assert_array_equal(unweighted.worst_scenario, vectors.argmin(axis=1))


def test_bad_input_is_refused_and_names_the_field() -> None:
    positions = _grouped([0, 1], [0, 1], [1.0, 2.0], 2)
    held_nan = PNL.copy()
    held_nan[1, 2] = np.nan
    with pytest.raises(InputError) as caught:
        reduce_scenarios(positions, held_nan)
    assert caught.value.field == "instrument_pnl[1, 2]"
    unheld_nan = PNL.copy()
    unheld_nan[2, 0] = np.inf  # nobody holds instrument 2: its row is never read
    assert reduce_scenarios(positions, unheld_nan).worst_pnl.tolist() == [-2.0, -2.0]
    with pytest.raises(InputError, match="instrument rows"):
        reduce_scenarios(positions, PNL[:1])
    with pytest.raises(InputError, match="at least one scenario"):
        reduce_scenarios(positions, np.zeros((3, 0)))
    with pytest.raises(InputError) as caught:
        reduce_scenarios(positions, PNL, gain_weight=np.array([1.0, np.nan]))
    assert caught.value.field == "gain_weight[1]"
    with pytest.raises(InputError) as caught:
        reduce_scenarios(positions, PNL, gain_cap=np.array([-np.inf, 1.0]))
    assert caught.value.field == "gain_cap[0]"
    with pytest.raises(InputError, match="one entry per group"):
        reduce_scenarios(positions, PNL, gain_weight=np.ones(3))
    with pytest.raises(InputError, match="out of range"):
        reduce_scenarios(positions, PNL, groups=np.array([2]))
    with pytest.raises(InputError) as caught:
        _grouped([0, 1], [0, 1], [1.0, np.inf], 2)
    assert caught.value.field == "quantity[1]"
    with pytest.raises(InputError, match="group index"):
        _grouped([0, 2], [0, 1], [1.0, 1.0], 2)


# ----------------------------------------------------------------------------------------------------------
# The incremental index and state
# ----------------------------------------------------------------------------------------------------------


def test_index_by_hand() -> None:
    # Instruments 0..5 on underlyings [0, 0, 1, 1, 2, 2]. Group 0 holds 0 and 2, group 1 holds 1, group 2
    # holds 4 and 5, group 3 nothing, group 4 holds 3 and 0 (and 0 again).
    positions = _grouped([0, 0, 1, 2, 2, 4, 4, 4], [0, 2, 1, 4, 5, 3, 0, 0], [1.0] * 8, 5)
    index = IncrementalIndex.build(positions, [0, 0, 1, 1, 2, 2])
    assert index.underlying_count == 3
    assert index.instruments_on(1).tolist() == [2, 3]
    assert index.instruments_on([2, 0]).tolist() == [0, 1, 4, 5]
    assert index.groups_holding(0).tolist() == [0, 1, 4]
    assert index.groups_holding(1).tolist() == [0, 4]
    assert index.groups_holding(2).tolist() == [2]
    assert index.groups_holding([0, 2]).tolist() == [0, 1, 2, 4]
    assert index.group_start.tolist() == [0, 3, 5, 6]
    assert not index.groups.flags.writeable
    with pytest.raises(InputError, match="out of range"):
        index.groups_holding(3)
    with pytest.raises(InputError, match="one underlying per instrument"):
        IncrementalIndex.build(positions, [0, 0, 1])


def test_index_agrees_with_the_scan() -> None:
    rng = np.random.default_rng(11)
    positions = group_positions(rng.integers(0, 500, 3000), rng.integers(0, 40, 3000), rng.normal(size=3000), 500)
    underlying = rng.integers(0, 7, 40)
    index = IncrementalIndex.build(positions, underlying, 8)  # underlying 7: nothing on it
    for u in range(8):
        instruments = np.flatnonzero(underlying == u)
        assert index.instruments_on(u).tolist() == instruments.tolist()
        assert index.groups_holding(u).tolist() == groups_holding(positions, instruments, 500).tolist()


def test_state_updates_only_the_affected_groups_and_a_rejected_move_changes_nothing() -> None:
    positions = _grouped([0, 0, 1, 2, 2, 4, 4], [0, 2, 1, 4, 5, 3, 0], [1.0, -2.0, 3.0, 1.0, 1.0, -1.0, 2.0], 5)
    rng = np.random.default_rng(3)
    pnl = rng.normal(size=(6, 5))
    index = IncrementalIndex.build(positions, [0, 0, 1, 1, 2, 2])
    state = ScenarioState(positions, pnl, index)
    before = state.reduction()
    rows = rng.normal(size=(2, 5))
    affected = state.apply_moves(2, rows)  # instruments 4 and 5: only group 2 holds them
    assert affected.tolist() == [2]
    pnl[[4, 5]] = rows
    full = reduce_scenarios(positions, pnl)
    np.testing.assert_array_equal(state.worst_pnl, full.worst_pnl)
    np.testing.assert_array_equal(state.worst_scenario, full.worst_scenario)
    unchanged = np.arange(5) != 2
    np.testing.assert_array_equal(state.worst_pnl[unchanged], before.worst_pnl[unchanged])
    # A held instrument's P&L must be finite: the move is refused and nothing changes.
    snapshot, matrix = state.reduction(), state.matrix.values.copy()
    bad = rng.normal(size=(2, 5))
    bad[1, 3] = np.nan
    with pytest.raises(InputError) as caught:
        state.apply_moves(1, bad)  # instruments 2 and 3
    assert caught.value.field == "rows[1, 3] (instrument 3)"
    np.testing.assert_array_equal(state.matrix.values, matrix)
    np.testing.assert_array_equal(state.worst_pnl, snapshot.worst_pnl)
    with pytest.raises(InputError, match="rows must be"):
        state.apply_moves(0, np.zeros((3, 5)))
    assert not state.worst_pnl.flags.writeable
    # update(): rows of single instruments; every group holding their underlying is recomputed.
    assert state.update([3], rng.normal(size=(1, 5))).tolist() == [0, 4]


@st.composite
def _books(draw: st.DrawFn) -> tuple[GroupedPositions, np.ndarray, np.ndarray, np.ndarray | None,
                                     np.ndarray | None, list[tuple[list[int], int]], int]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    groups = draw(st.integers(1, 12))
    instruments = draw(st.integers(1, 10))
    underlyings = draw(st.integers(1, 4))
    scenarios = draw(st.integers(1, 20))
    count = draw(st.integers(0, 40))
    positions = group_positions(rng.integers(0, groups, count), rng.integers(0, instruments, count),
                                rng.integers(-3, 4, count).astype(np.float64), groups)
    underlying = rng.integers(0, underlyings, instruments)
    weighted = draw(st.booleans())
    weight = rng.uniform(0.0, 1.0, groups) if weighted else None
    cap = np.where(rng.random(groups) < 0.5, np.inf, rng.uniform(0.0, 2.0, groups)) if weighted else None
    moves = draw(st.lists(st.tuples(st.lists(st.integers(0, underlyings - 1), min_size=1, max_size=3),
                                    st.integers(0, 2**32 - 1)), min_size=1, max_size=8))
    return positions, rng.integers(-2, 3, (instruments, scenarios)).astype(np.float64), underlying, weight, cap, \
        moves, underlyings


@PROPERTY_SETTINGS
@given(_books())
def test_incremental_recompute_equals_a_full_recompute_after_any_moves(
    book: tuple[GroupedPositions, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None,
                list[tuple[list[int], int]], int],
) -> None:
    positions, pnl, underlying, weight, cap, moves, underlyings = book
    index = IncrementalIndex.build(positions, underlying, underlyings)
    state = ScenarioState(positions, pnl, index, weight, cap)
    current = pnl.copy()
    for moved, seed in moves:
        rng = np.random.default_rng(seed)
        instruments = index.instruments_on(moved)
        # Integer rows half the time: exact ties between scenarios test the first-scenario rule.
        rows = (rng.integers(-2, 3, (instruments.size, pnl.shape[1])).astype(np.float64) if seed % 2
                else rng.normal(size=(instruments.size, pnl.shape[1])))
        affected = state.apply_moves(moved, rows)
        current[instruments] = rows
        full = reduce_scenarios(positions, current, weight, cap)
        np.testing.assert_array_equal(state.worst_pnl, full.worst_pnl)
        np.testing.assert_array_equal(state.worst_scenario, full.worst_scenario)
        holders = groups_holding(positions, instruments, positions.group_count)
        assert affected.tolist() == holders.tolist()
    worst, where = _naive(positions, current, weight, cap)
    assert state.worst_pnl.tolist() == worst
    assert state.worst_scenario.tolist() == where

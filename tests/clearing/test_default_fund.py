"""Cover-N default fund sizing and contributions (clearing/default_fund.py), every figure by hand.

Method: PFMI Principle 4 (Cover 2, members counted with affiliates; risk-models.md "Clearing house mechanics").
The clearing house of tests/clearing/data/drill-house.yaml margins every account with span-flat-10, so a
future's IM is |quantity| × 100 × 10 %: A.house 1000 → 10,000; A.C1 100 → 1,000 (ported); B −400 → 4,000;
C 400 → 4,000; D −1100 → 11,000. IM per member over all accounts: A 11,000, B 4,000, C 4,000, D 11,000 (30,000).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marginkit.clearing.default_fund import (
    COMMON_SCENARIO,
    WORST_PER_GROUP,
    allocate_contributions,
    cover_requirement,
    money,
    size_default_fund,
)
from marginkit.clearing.margin import ClearingMargins, clearing_margins
from marginkit.clearing.spec import ClearingSpec, load_clearing
from marginkit.clearing.stress import Shock, StressResult, hypothetical_scenarios, stress_test
from marginkit.errors import InputError

DATA = Path(__file__).parent / "data"
D = Decimal
# crash: XYZ −30 %, rally: XYZ +20 % (moves over the MPOR)
SCENARIOS = hypothetical_scenarios({"crash": {"XYZ": Shock(-0.30)}, "rally": {"XYZ": Shock(0.20)}})


@pytest.fixture(scope="module")
def house() -> tuple[ClearingSpec, ClearingMargins]:
    spec = load_clearing(DATA / "drill-house.yaml")
    return spec, clearing_margins(spec)


def stressed(spec: ClearingSpec, margins: ClearingMargins) -> StressResult:
    return stress_test(spec, SCENARIOS, margins)


def with_fund(spec: ClearingSpec, **settings: Any) -> ClearingSpec:
    return replace(spec, settings=replace(spec.settings, default_fund=replace(spec.settings.default_fund,
                                                                              **settings)))


# ---------------------------------------------------------------------------------------------- cover-N


LOSSES = np.array([[100.0, 0.0],   # G1
                   [0.0, 80.0],    # G2
                   [30.0, 60.0]])  # G3


def test_common_scenario_takes_the_worst_pair_in_one_scenario() -> None:
    # s0: top two 100 + 30 = 130; s1: 80 + 60 = 140 → 140 in s1, groups G2 (80) then G3 (60).
    cover = cover_requirement(LOSSES, 2, COMMON_SCENARIO)
    assert cover.amount == 140.0
    assert cover.scenario == 1
    assert cover.groups == (1, 2)
    assert cover.group_losses.tolist() == [80.0, 60.0]


def test_worst_per_group_takes_each_group_at_its_own_worst() -> None:
    # each group's worst: G1 100, G2 80, G3 60 → the two largest 100 + 80 = 180 (never below the common figure).
    cover = cover_requirement(LOSSES, 2, WORST_PER_GROUP)
    assert cover.amount == 180.0
    assert cover.scenario == -1
    assert cover.groups == (0, 1)


def test_cover_one_and_cover_beyond_the_group_count() -> None:
    # Cover 1: s0 100, s1 80 → 100 (G1 in s0). Cover 5 with 3 groups: all of them: s0 130, s1 140 → 140.
    assert cover_requirement(LOSSES, 1).amount == 100.0
    assert cover_requirement(LOSSES, 1).groups == (0,)
    assert cover_requirement(LOSSES, 5).amount == 140.0
    # nothing beyond margin: 0 and no scenario
    none = cover_requirement(np.zeros((2, 3)), 2)
    assert (none.amount, none.scenario) == (0.0, -1)


@pytest.mark.parametrize(("matrix", "cover", "method", "field"), [
    (np.zeros((0, 2)), 2, COMMON_SCENARIO, "group_excess"),
    (np.array([[-1.0]]), 2, COMMON_SCENARIO, "group_excess"),
    (np.array([[np.nan]]), 2, COMMON_SCENARIO, "group_excess"),
    (np.zeros((1, 1)), 0, COMMON_SCENARIO, "default_fund.cover"),
    (np.zeros((1, 1)), 2, "largest", "method"),
])
def test_bad_cover_inputs(matrix: np.ndarray, cover: int, method: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        cover_requirement(matrix, cover, method)
    assert caught.value.field == field


# ---------------------------------------------------------------------------------------------- contributions


def test_floor_first_then_the_rest_pro_rata() -> None:
    # fund 1000, weights 10:20:30:940, floor 100: pro-rata shares 10, 20, 30, 940 → the first three pay the floor;
    # the rest 1000 − 300 = 700 goes to the last.
    assert allocate_contributions(1000, [10, 20, 30, 940], 100) == [100, 100, 100, 700]


def test_the_floor_cascades() -> None:
    # fund 1000, weights 10:20:30:40, floor 200.
    # pass 1: shares 100, 200, 300, 400 → the first (100 < 200) is floored;
    # pass 2: 800 over 20:30:40 → 177.8 (< 200, floored), 266.7, 355.6;
    # pass 3: 600 over 30:40 → 257.14…, 342.86… → 257 + 342 = 599, the unit to the larger remainder (.857): 343.
    assert allocate_contributions(1000, [10, 20, 30, 40], 200) == [200, 200, 257, 343]


def test_zero_weights_share_equally_and_too_small_a_fund_is_refused() -> None:
    # 10 units over three zero weights: 3.33… each → 4, 3, 3 (the unit to the first).
    assert allocate_contributions(10, [0, 0, 0], 0) == [4, 3, 3]
    with pytest.raises(InputError):
        allocate_contributions(250, [1, 1, 1], 100)  # three floors of 100 do not fit in 250


def test_money_removes_float_noise_before_rounding() -> None:
    # 0.1 × 3 = 0.30000000000000004 in float64: a requirement of 0.30, not 0.31.
    assert money(0.1 * 3, 2) == D("0.30")
    assert money(100.001, 2) == D("100.01")  # requirements round up
    assert money(100.009, 2, ROUND_FLOOR) == D("100.00")  # credits round down
    assert money(-0.0, 2) == D("0.00")


# ---------------------------------------------------------------------------------------------- the fund


def test_cover_two_fund_and_contributions(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    assert margins.initial_margin.tolist() == [10000.0, 1000.0, 4000.0, 4000.0, 11000.0]
    fund = size_default_fund(spec, stressed(spec, margins), margins)
    # Loss beyond IM (A.C1 ported: A counts A.house only, IM 10,000):
    #   crash: A 1000 × −30 = −30,000 → 20,000; C 400 × −30 = −12,000 → 8,000; B, D gain → top two 28,000
    #   rally: B −400 × 20 = −8,000 → 4,000; D −1100 × 20 = −22,000 → 11,000 → top two 15,000
    # Cover 2 = 28,000 in crash (A and C); floors 4 × 5,000 = 20,000 ≤ 28,000.
    assert fund.requirement == D("28000.00")
    assert fund.size == D("28000.00")
    assert fund.scenario == "crash"
    assert fund.covered_losses == {"A": D("20000.00"), "C": D("8000.00")}
    # Pro rata to IM 11:4:4:11 (30,000): 10,266.67, 3,733.33, 3,733.33, 10,266.67 → B and C get the floor 5,000;
    # the rest 28,000 − 10,000 = 18,000 over A and D (11,000 each) → 9,000 each.
    assert fund.contributions == {"A": D("9000.00"), "B": D("5000.00"), "C": D("5000.00"), "D": D("9000.00")}
    assert fund.floored == ("B", "C")
    assert sum(fund.contributions.values()) == fund.size


def test_worst_per_group_fund(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    fund = size_default_fund(spec, stressed(spec, margins), margins, WORST_PER_GROUP)
    # each member's worst: A 20,000 (crash), D 11,000 (rally), C 8,000, B 4,000 → 20,000 + 11,000 = 31,000.
    # Pro rata: 31,000 × 11/30 = 11,366.67 for A and D, 4,133.33 for B and C → floored at 5,000;
    # the rest 21,000 over A and D → 10,500 each.
    assert fund.size == D("31000.00")
    assert fund.scenario is None
    assert fund.contributions == {"A": D("10500.00"), "B": D("5000.00"), "C": D("5000.00"), "D": D("10500.00")}


def test_minimum_contributions_can_set_the_size(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    floored = with_fund(spec, minimum_contribution=10000.0)
    fund = size_default_fund(floored, stressed(floored, margins), margins)
    # Cover 2 still 28,000, but four floors of 10,000 = 40,000: the size is 40,000 and everyone pays 10,000.
    assert fund.requirement == D("28000.00")
    assert fund.size == D("40000.00")
    assert set(fund.contributions.values()) == {D("10000.00")}


def test_affiliates_default_together(house: tuple[ClearingSpec, ClearingMargins]) -> None:
    spec, margins = house
    cover_one = with_fund(spec, cover=1)
    alone = size_default_fund(cover_one, stressed(cover_one, margins), margins)
    # Cover 1, no affiliates: the largest single loss, A's 20,000 in crash.
    assert alone.size == D("20000.00")
    affiliated = replace(cover_one, members=tuple(replace(m, affiliate_group="AC") if m.id in ("A", "C") else m
                                                  for m in cover_one.members))
    together = size_default_fund(affiliated, stressed(affiliated, margins), margins)
    # A and C affiliated: in crash the group loses 20,000 + 8,000 = 28,000 beyond margin (rally: D's 11,000).
    assert together.size == D("28000.00")
    assert together.covered_groups == ("AC",)

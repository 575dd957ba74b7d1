"""The default waterfall (clearing/waterfall.py): layers by hand, largest-remainder splits, and its properties.

Order (risk-models.md "Clearing house mechanics"): defaulter's IM → defaulter's default-fund contribution →
first skin in the game → survivors' contributions pro rata → second skin in the game → capped assessments →
variation-margin gains haircutting → uncovered. Every expected amount's arithmetic is in the comments.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.clearing.waterfall import (
    ASSESSMENTS,
    DEFAULTER_DEFAULT_FUND,
    DEFAULTER_INITIAL_MARGIN,
    FIRST_SKIN_IN_THE_GAME,
    LAYERS,
    SECOND_SKIN_IN_THE_GAME,
    SURVIVORS_DEFAULT_FUND,
    VARIATION_MARGIN_HAIRCUT,
    Waterfall,
    WaterfallResources,
    allocate_loss,
    pro_rata,
)
from marginkit.errors import InputError

D = Decimal


def resources(**overrides: object) -> WaterfallResources:
    base: dict[str, object] = {
        "initial_margin": {"X": D("100.00")},
        "defaulter_contributions": {"X": D("50.00")},
        "survivor_contributions": {"S1": D("30.00"), "S2": D("70.00")},
        "first_skin_in_the_game": D("20.00"),
        "second_skin_in_the_game": D("40.00"),
        "assessment_multiple": D("0.5"),
        "variation_margin_gains": {"S1": D("300.00"), "S2": D("100.00")},
        "clearing_house": "CCP",
    }
    base.update(overrides)
    return WaterfallResources(**base)  # type: ignore[arg-type]


def test_pro_rata_largest_remainder_by_hand() -> None:
    # 100 units by weights 1:1:1 → 33.33… each: floors 33, 33, 33 (99), remainders equal → the first gets the unit.
    assert pro_rata(100, [1, 1, 1]) == [34, 33, 33]
    # 10 by 5:9 → 3.571… and 6.428…: floors 3 + 6 = 9; remainders 0.571 (5·10 mod 14 = 8) > 0.428 (90 mod 14 = 6).
    assert pro_rata(10, [5, 9]) == [4, 6]
    # all weights 0: equal weights; nothing to share: zeros.
    assert pro_rata(3, [0, 0]) == [2, 1]
    assert pro_rata(0, [7, 3]) == [0, 0]


def test_every_layer_by_hand() -> None:
    # Loss 400.00 of defaulter X:
    #   1 X's IM 100.00                         → 300.00 left
    #   2 X's contribution 50.00                → 250.00
    #   3 first SITG 20.00                      → 230.00
    #   4 survivors' fund S1 30 + S2 70 = 100   → 130.00 (each in full)
    #   5 second SITG 40.00                     → 90.00
    #   6 assessments capped at 0.5 × contribution: S1 15.00, S2 35.00 = 50.00 → 40.00
    #   7 VM gains S1 300, S2 100: 40 pro rata → S1 40 × 300/400 = 30.00, S2 40 × 100/400 = 10.00 → 0
    result = allocate_loss({"X": D("400.00")}, resources())
    used = {layer.name: layer.used for layer in result.layers}
    assert used == {DEFAULTER_INITIAL_MARGIN: D("100.00"), DEFAULTER_DEFAULT_FUND: D("50.00"),
                    FIRST_SKIN_IN_THE_GAME: D("20.00"), SURVIVORS_DEFAULT_FUND: D("100.00"),
                    SECOND_SKIN_IN_THE_GAME: D("40.00"), ASSESSMENTS: D("50.00"),
                    VARIATION_MARGIN_HAIRCUT: D("40.00")}
    assert result.layer(ASSESSMENTS).by_party == {"S1": D("15.00"), "S2": D("35.00")}
    assert result.layer(VARIATION_MARGIN_HAIRCUT).by_party == {"S1": D("30.00"), "S2": D("10.00")}
    assert result.layer(FIRST_SKIN_IN_THE_GAME).by_party == {"CCP": D("20.00")}
    assert result.uncovered == D("0.00")
    # who lost what: X 150, CCP 20 + 40 = 60, S1 30 + 15 + 30 = 75, S2 70 + 35 + 10 = 115; Σ = 400
    assert result.by_party() == {"X": D("150.00"), "CCP": D("60.00"), "S1": D("75.00"), "S2": D("115.00")}


def test_partial_survivor_layer_splits_pro_rata_to_contribution() -> None:
    # Loss 200.00: IM 100 → 100 left; contribution 50 → 50; SITG 20 → 30; survivors' fund pays 30 of 100:
    # S1 30 × 30/100 = 9.00, S2 30 × 70/100 = 21.00; later layers untouched.
    result = allocate_loss({"X": D("200.00")}, resources())
    assert result.layer(SURVIVORS_DEFAULT_FUND).by_party == {"S1": D("9.00"), "S2": D("21.00")}
    assert result.layer(SECOND_SKIN_IN_THE_GAME).used == D("0.00")
    assert result.layer(VARIATION_MARGIN_HAIRCUT).used == D("0.00")


def test_loss_beyond_every_layer_is_uncovered() -> None:
    # Resources: 100 + 50 + 20 + 100 + 40 + 50 + 400 = 760.00; loss 1000.00 → 240.00 uncovered.
    result = allocate_loss({"X": D("1000.00")}, resources())
    assert result.covered == D("760.00")
    assert result.uncovered == D("240.00")


def test_rounding_a_pro_rata_layer_by_largest_remainder() -> None:
    # Survivors' fund 3 × 10.00; a remainder of 10.00 after IM, contribution and SITG (none here) splits 3.333…:
    # in cents 1000 = 333 + 333 + 333 + 1 → the first survivor (ties go first) pays 3.34.
    result = allocate_loss({"X": D("10.00")}, WaterfallResources(
        initial_margin={}, defaulter_contributions={},
        survivor_contributions={"S1": D("10.00"), "S2": D("10.00"), "S3": D("10.00")}))
    assert result.layer(SURVIVORS_DEFAULT_FUND).by_party == {"S1": D("3.34"), "S2": D("3.33"), "S3": D("3.33")}


def test_two_defaulters_each_cover_their_own_loss_first() -> None:
    # X loses 120 (IM 100, fund 50: IM 100 + fund 20 → nothing left); Y loses 10 (IM 80 → 70 of its margin unused,
    # not available to X). Y2 loses 300: IM 10, fund 5 → 285 to the mutual layers: SITG 20 → 265; survivors 100
    # → 165; SITG 40 → 125; assessments 50 → 75; VM haircut 75 of 400 (S1 56.25, S2 18.75) → 0.
    result = allocate_loss({"X": D("120"), "Y": D("10"), "Y2": D("300")}, resources(
        initial_margin={"X": D("100"), "Y": D("80"), "Y2": D("10")},
        defaulter_contributions={"X": D("50"), "Y": D("5"), "Y2": D("5")}))
    assert result.layer(DEFAULTER_INITIAL_MARGIN).by_party == {"X": D("100.00"), "Y": D("10.00"), "Y2": D("10.00")}
    assert result.layer(DEFAULTER_DEFAULT_FUND).by_party == {"X": D("20.00"), "Y": D("0.00"), "Y2": D("5.00")}
    assert result.layer(VARIATION_MARGIN_HAIRCUT).by_party == {"S1": D("56.25"), "S2": D("18.75")}
    assert result.uncovered == D("0.00")


@pytest.mark.parametrize(("losses", "overrides", "field"), [
    ({"X": D("-1")}, {}, "losses.X"),
    ({"X": D("1.001")}, {}, "losses.X"),
    ({"X": D("NaN")}, {}, "losses.X"),
    ({"X": 1.5}, {}, "losses.X"),
    ({"S1": D("1")}, {"initial_margin": {}, "defaulter_contributions": {}}, "survivor_contributions.S1"),
    ({"X": D("1")}, {"initial_margin": {"Z": D("1")}}, "initial_margin.Z"),
    ({"X": D("1")}, {"assessment_multiple": D("-1")}, "assessment_multiple"),
    ({"X": D("1")}, {"first_skin_in_the_game": D("-5")}, "first_skin_in_the_game"),
    ({"X": D("1")}, {"decimals": 19}, "decimals"),
])
def test_bad_amounts_name_the_field(losses: dict[str, object], overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        allocate_loss(losses, resources(**overrides))  # type: ignore[arg-type]
    assert caught.value.field == field


# ---------------------------------------------------------------------------------------------- properties

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
survivor_names = st.lists(st.sampled_from(["S1", "S2", "S3", "S4"]), unique=True, max_size=4)


@st.composite
def waterfall_inputs(draw: st.DrawFn) -> WaterfallResources:
    survivors = draw(survivor_names)
    return WaterfallResources(
        initial_margin={"X": draw(cents)}, defaulter_contributions={"X": draw(cents)},
        survivor_contributions={s: draw(cents) for s in survivors},
        first_skin_in_the_game=draw(cents), second_skin_in_the_game=draw(cents),
        assessment_multiple=draw(st.sampled_from([D(0), D("0.5"), D(1), D("1.37"), D(2)])),
        variation_margin_gains={s: draw(cents) for s in survivors}, clearing_house="CCP")


def total_resources(result: Waterfall) -> Decimal:
    return sum((layer.size for layer in result.layers), Decimal(0))


@settings(max_examples=200, deadline=None)
@given(waterfall_inputs(), cents)
def test_layers_bounded_exact_and_ordered(inputs: WaterfallResources, loss: Decimal) -> None:
    result = allocate_loss({"X": loss}, inputs)
    assert tuple(layer.name for layer in result.layers) == LAYERS
    for layer in result.layers:
        assert D(0) <= layer.used <= layer.size
        assert sum(layer.by_party.values(), D(0)) == layer.used
        for party, amount in layer.by_party.items():
            assert D(0) <= amount <= layer.capacity[party]
    # Σ allocations = min(loss, total resources); the rest is uncovered.
    assert result.covered == min(loss, total_resources(result))
    assert result.covered + result.uncovered == loss
    # a later layer is used only when every earlier one is exhausted.
    for k, layer in enumerate(result.layers):
        if layer.used > 0:
            assert all(earlier.exhausted for earlier in result.layers[:k])


@settings(max_examples=100, deadline=None)
@given(waterfall_inputs())
def test_a_zero_loss_uses_nothing(inputs: WaterfallResources) -> None:
    result = allocate_loss({"X": D("0.00")}, inputs)
    assert all(layer.used == 0 for layer in result.layers)
    assert all(amount == 0 for amount in result.by_party().values())
    assert result.uncovered == 0


@settings(max_examples=200, deadline=None)
@given(waterfall_inputs(), cents, cents)
def test_monotone_in_the_loss(inputs: WaterfallResources, first: Decimal, second: Decimal) -> None:
    low, high = sorted((first, second))
    smaller = allocate_loss({"X": low}, inputs)
    larger = allocate_loss({"X": high}, inputs)
    for a, b in zip(smaller.layers, larger.layers, strict=True):
        assert a.used <= b.used
        # per party within one minor unit (largest-remainder rounding of a pro-rata split)
        for party in a.by_party:
            assert a.by_party[party] <= b.by_party[party] + D("0.01")
    assert smaller.uncovered <= larger.uncovered


@settings(max_examples=100, deadline=None)
@given(waterfall_inputs(), cents, cents, cents, cents)
def test_several_defaulters_use_their_own_resources_first(inputs: WaterfallResources, loss_x: Decimal,
                                                         loss_y: Decimal, margin_y: Decimal, fund_y: Decimal) -> None:
    both = WaterfallResources(
        initial_margin={**inputs.initial_margin, "Y": margin_y},
        defaulter_contributions={**inputs.defaulter_contributions, "Y": fund_y},
        survivor_contributions=inputs.survivor_contributions, first_skin_in_the_game=inputs.first_skin_in_the_game,
        second_skin_in_the_game=inputs.second_skin_in_the_game, assessment_multiple=inputs.assessment_multiple,
        variation_margin_gains=inputs.variation_margin_gains, clearing_house="CCP")
    result = allocate_loss({"X": loss_x, "Y": loss_y}, both)
    own = {"X": inputs.initial_margin["X"] + inputs.defaulter_contributions["X"], "Y": margin_y + fund_y}
    residual = sum((max(loss - own[d], D(0)) for d, loss in (("X", loss_x), ("Y", loss_y))), D(0))
    mutual = sum((layer.size for layer in result.layers[2:]), D(0))
    # each defaulter's loss is met by its own margin and contribution first; the rest meets the mutual layers
    assert result.covered == min(loss_x, own["X"]) + min(loss_y, own["Y"]) + min(residual, mutual)
    if any(layer.used > 0 for layer in result.layers[2:]):
        assert residual > 0

"""The default waterfall: a close-out loss allocated through the clearing house's layers, in exact minor units.

Order (shared/reference/risk-models.md "Clearing house mechanics"; PFMI Principle 4 key consideration 7 and
Principle 13; EMIR Art. 45):

1. `defaulter_initial_margin` — each defaulter's initial margin, against its own loss only;
2. `defaulter_default_fund` — each defaulter's default-fund contribution, against its own loss only;
3. `first_skin_in_the_game` — the clearing house's first tranche of its own capital;
4. `survivors_default_fund` — the surviving members' contributions, pro rata to contribution;
5. `second_skin_in_the_game` — the clearing house's second tranche;
6. `assessments` — calls on survivors, each capped at assessment_multiple × its contribution (rounded down to
   the minor unit), pro rata to the caps (equivalently to contributions);
7. `variation_margin_haircut` — the variation-margin gains owed to survivors over the close-out period, cut pro
   rata to those gains;

and what is left is `uncovered`. With several defaulters, layers 1 and 2 are per defaulter (one member's surplus
margin is not another's; a defaulter with a gain has loss 0) and the remainders of every defaulter flow together
into layers 3–7. Each layer uses min(what is left, its size); a pro-rata layer splits its use by largest remainder
in minor units (each party first gets ⌊use × weight ÷ Σ weights⌋, the units left go one each to the largest
remainders, ties to the party listed first), so a party never gives more than its share rounded up, which is at
most its capacity, and the parts sum exactly to the use. Amounts are Decimals with at most `decimals` places.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from marginkit.errors import InputError

DEFAULTER_INITIAL_MARGIN = "defaulter_initial_margin"
DEFAULTER_DEFAULT_FUND = "defaulter_default_fund"
FIRST_SKIN_IN_THE_GAME = "first_skin_in_the_game"
SURVIVORS_DEFAULT_FUND = "survivors_default_fund"
SECOND_SKIN_IN_THE_GAME = "second_skin_in_the_game"
ASSESSMENTS = "assessments"
VARIATION_MARGIN_HAIRCUT = "variation_margin_haircut"
LAYERS = (DEFAULTER_INITIAL_MARGIN, DEFAULTER_DEFAULT_FUND, FIRST_SKIN_IN_THE_GAME, SURVIVORS_DEFAULT_FUND,
          SECOND_SKIN_IN_THE_GAME, ASSESSMENTS, VARIATION_MARGIN_HAIRCUT)


def pro_rata(total: int, weights: Sequence[int]) -> list[int]:
    """`total` (integer minor units ≥ 0) split pro rata to non-negative integer `weights` by largest remainder.

    Each part is ⌊total × w ÷ W⌋ or one more (the units left go to the largest remainders, ties to the lower
    index); the parts sum to `total`. All weights 0: equal weights.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("pro_rata needs a non-negative total and weights")
    if not weights:
        if total:
            raise ValueError("pro_rata has no party to allocate to")
        return []
    basis = list(weights) if sum(weights) > 0 else [1] * len(weights)
    whole = sum(basis)
    parts = [total * w // whole for w in basis]
    remainders = [total * w % whole for w in basis]
    left = total - sum(parts)
    for k in sorted(range(len(basis)), key=lambda i: (-remainders[i], i))[:left]:
        parts[k] += 1
    return parts


def _minor(value: Any, decimals: int, where: str) -> int:
    """A non-negative amount with at most `decimals` places as integer minor units; InputError names `where`."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InputError("must be a Decimal or an integer amount", field=where)
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise InputError("must be a finite amount ≥ 0", field=where)
    scaled = amount.scaleb(decimals)
    try:
        whole = scaled.to_integral_exact()
    except InvalidOperation:  # pragma: no cover - to_integral_exact raises only on signalling NaN
        raise InputError("is not an amount", field=where) from None
    if whole != scaled:
        raise InputError(f"has more than {decimals} decimal places", field=where)
    return int(whole)


@dataclass(frozen=True)
class WaterfallResources:
    """What stands behind a default, in the clearing house's currency (Decimals, ≤ `decimals` places).

    `initial_margin` and `defaulter_contributions` per defaulter (missing: 0); `survivor_contributions` and
    `variation_margin_gains` (their gains over the close-out period) per surviving member; the clearing house's
    two skin-in-the-game tranches under the party name `clearing_house`; the assessment cap as a multiple of a
    survivor's contribution.
    """

    initial_margin: Mapping[str, Decimal]
    defaulter_contributions: Mapping[str, Decimal]
    survivor_contributions: Mapping[str, Decimal]
    first_skin_in_the_game: Decimal = Decimal(0)
    second_skin_in_the_game: Decimal = Decimal(0)
    assessment_multiple: Decimal = Decimal(1)
    variation_margin_gains: Mapping[str, Decimal] = field(default_factory=dict)
    clearing_house: str = "clearing_house"
    decimals: int = 2


@dataclass(frozen=True)
class LayerUse:
    """One layer: its size, the amount used, and per party its capacity and the amount it lost (same order)."""

    name: str
    size: Decimal
    used: Decimal
    capacity: Mapping[str, Decimal]
    by_party: Mapping[str, Decimal]

    @property
    def exhausted(self) -> bool:
        """Whether the whole layer was used (an empty layer counts as exhausted)."""
        return self.used == self.size


@dataclass(frozen=True)
class Waterfall:
    """A loss through the layers (`LAYERS` order): per layer and party what was used, and what stayed uncovered."""

    losses: Mapping[str, Decimal]
    layers: tuple[LayerUse, ...]
    uncovered: Decimal

    @property
    def loss(self) -> Decimal:
        """Σ of the defaulters' close-out losses."""
        return sum(self.losses.values(), Decimal(0))

    @property
    def covered(self) -> Decimal:
        """Σ used over every layer (= loss − uncovered)."""
        return sum((layer.used for layer in self.layers), Decimal(0))

    def layer(self, name: str) -> LayerUse:
        """The layer called `name`."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def by_party(self) -> dict[str, Decimal]:
        """What each party lost over all layers (defaulters, the clearing house, survivors), in first-use order."""
        totals: dict[str, Decimal] = {}
        for layer in self.layers:
            for party, amount in layer.by_party.items():
                totals[party] = totals.get(party, Decimal(0)) + amount
        return totals


def allocate_loss(losses: Mapping[str, Decimal], resources: WaterfallResources) -> Waterfall:
    """Allocate each defaulter's close-out loss through the waterfall (module docstring), exactly in minor units.

    `losses` per defaulting member (≥ 0). Bad amounts (negative, not finite, more places than `decimals`) and a
    party that is both a defaulter and a survivor raise InputError naming the field.
    """
    decimals = resources.decimals
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 18:
        raise InputError("must be an integer from 0 to 18", field="decimals")
    unit = Decimal(1).scaleb(-decimals)

    def amount(minor: int) -> Decimal:
        return (Decimal(minor) * unit).quantize(unit)

    defaulters = list(losses)
    survivors = list(dict.fromkeys([*resources.survivor_contributions, *resources.variation_margin_gains]))
    both = [d for d in defaulters if d in survivors]
    if both:
        raise InputError(f"{both[0]!r} is both a defaulter and a survivor", field=f"survivor_contributions.{both[0]}")
    for name, mapping in (("initial_margin", resources.initial_margin),
                          ("defaulter_contributions", resources.defaulter_contributions)):
        strangers = [party for party in mapping if party not in losses]
        if strangers:
            raise InputError(f"{strangers[0]!r} is not a defaulter (no loss given)", field=f"{name}.{strangers[0]}")
    loss = {d: _minor(losses[d], decimals, f"losses.{d}") for d in defaulters}
    margin = {d: _minor(resources.initial_margin.get(d, 0), decimals, f"initial_margin.{d}") for d in defaulters}
    own_fund = {d: _minor(resources.defaulter_contributions.get(d, 0), decimals, f"defaulter_contributions.{d}")
                for d in defaulters}
    contribution = [_minor(resources.survivor_contributions.get(s, 0), decimals, f"survivor_contributions.{s}")
                    for s in survivors]
    gains = [_minor(resources.variation_margin_gains.get(s, 0), decimals, f"variation_margin_gains.{s}")
             for s in survivors]
    first = _minor(resources.first_skin_in_the_game, decimals, "first_skin_in_the_game")
    second = _minor(resources.second_skin_in_the_game, decimals, "second_skin_in_the_game")
    multiple = resources.assessment_multiple
    if isinstance(multiple, bool) or not isinstance(multiple, Decimal | int) or not Decimal(multiple).is_finite() \
            or multiple < 0:
        raise InputError("must be a finite Decimal ≥ 0", field="assessment_multiple")
    caps = [int((Decimal(multiple) * c).to_integral_value(rounding=ROUND_FLOOR)) for c in contribution]
    house = resources.clearing_house

    layers: list[LayerUse] = []

    def record(name: str, parties: Sequence[str], capacity: Sequence[int], used: Sequence[int]) -> None:
        layers.append(LayerUse(name, amount(sum(capacity)), amount(sum(used)),
                               {p: amount(c) for p, c in zip(parties, capacity, strict=True)},
                               {p: amount(u) for p, u in zip(parties, used, strict=True)}))

    rest = dict(loss)
    for name, source in ((DEFAULTER_INITIAL_MARGIN, margin), (DEFAULTER_DEFAULT_FUND, own_fund)):
        used = [min(rest[d], source[d]) for d in defaulters]
        for d, u in zip(defaulters, used, strict=True):
            rest[d] -= u
        record(name, defaulters, [source[d] for d in defaulters], used)
    residual = sum(rest.values())

    def shared(name: str, parties: Sequence[str], capacity: Sequence[int]) -> None:
        nonlocal residual
        use = min(residual, sum(capacity))
        record(name, parties, capacity, pro_rata(use, capacity) if parties else [])
        residual -= use

    shared(FIRST_SKIN_IN_THE_GAME, [house], [first])
    shared(SURVIVORS_DEFAULT_FUND, survivors, contribution)
    shared(SECOND_SKIN_IN_THE_GAME, [house], [second])
    shared(ASSESSMENTS, survivors, caps)
    shared(VARIATION_MARGIN_HAIRCUT, survivors, gains)
    return Waterfall(losses={d: amount(loss[d]) for d in defaulters}, layers=tuple(layers), uncovered=amount(residual))

"""Cross-margining between two clearing houses: offsetting positions margined together, the offset haircut.

An agreement (a `cross_margining` block in the parameters of a `var` or `portfolio` profile) names two clearing
houses and the instruments each clears under it:

```yaml
parameters:
  ...                               # the model's own parameters
  cross_margining:
    agreement: ccp-a-ccp-b-2026     # a name for reports
    offset_haircut: 0.25            # share of the offset benefit withheld
    clearing_houses:
      CCP-A: [BTC-FUT-DEC26]
      CCP-B: [BTC-PERP]
```

Per account, with M the profile's model (the same parameters, without the block) on the positions at each
house alone (M_A, M_B) and on all of them together (M_AB, the joint portfolio):

    cross = min(M_A + M_B, M_AB + h × (M_A + M_B − M_AB))

so the account receives (1 − h) of the offset benefit M_A + M_B − M_AB (h = 1: no benefit, h = 0: one joint
portfolio), and never more than margining at each house alone (a joint VaR above the standalone sum, possible
for a measure that is not subadditive, earns nothing). The cross margin is split between the houses pro rata to
their standalone margins (components `cross_margin.<house>`); maintenance margin the same way. This is the
structure of the CME–OCC and CME–FICC cross-margining arrangements, where the combined requirement is the
joint portfolio's plus a haircut on the offset (risk-models.md, clearing house mechanics).

Every position must be in an instrument one of the two houses clears under the agreement (a cross-margin
account holds only eligible products); any other is refused, naming the position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import numpy as np
from pydantic import Field, ValidationError, model_validator

from marginkit.book import Book, with_positions
from marginkit.io.profile_file import Profile, StrictParameters
from marginkit.io.validation_errors import from_validation_error
from marginkit.models.coverage import refuse_positions
from marginkit.models.requirements import Requirements

KEY = "cross_margining"


class CrossMarginAgreement(StrictParameters):
    """Two clearing houses, the instruments each clears under the agreement, and the offset haircut."""

    agreement: Annotated[str, Field(min_length=1)]
    offset_haircut: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    clearing_houses: dict[str, list[Annotated[str, Field(min_length=1)]]]

    @model_validator(mode="after")
    def _two_houses(self) -> CrossMarginAgreement:
        if len(self.clearing_houses) != 2:
            raise ValueError("an agreement joins exactly two clearing houses")
        first, second = (set(v) for v in self.clearing_houses.values())
        if not first or not second:
            raise ValueError("each clearing house lists at least one instrument")
        if first & second:
            raise ValueError(f"instrument {sorted(first & second)[0]!r} is cleared at both houses")
        return self


def agreement_of(profile: Profile) -> tuple[CrossMarginAgreement | None, Profile]:
    """The profile's cross-margining agreement (None if it has none) and the profile without it."""
    if KEY not in profile.parameters:
        return None, profile
    try:
        agreement = CrossMarginAgreement.model_validate(profile.parameters[KEY])
    except ValidationError as error:
        raise from_validation_error(error, prefix=f"parameters.{KEY}").in_file(profile.path or profile.name) \
            from None
    inner = replace(profile, parameters={k: v for k, v in profile.parameters.items() if k != KEY})
    return agreement, inner


def cross_margined(book: Book, profile: Profile, agreement: CrossMarginAgreement, model: str,
                   margin: Callable[[Book], Requirements]) -> Requirements:
    """Margin under the agreement: the joint portfolio plus the haircut share of the offset, split per house."""
    ids = book.instrument_ids
    house_of = np.full(len(ids), -1, dtype=np.int64)
    houses = list(agreement.clearing_houses)
    for h, name in enumerate(houses):
        for instrument in agreement.clearing_houses[name]:
            if instrument in ids:
                house_of[ids.index(instrument)] = h
    position_house = house_of[book.position_instrument]
    refuse_positions(book, model, position_house < 0,
                     f"not cleared under the cross-margining agreement {agreement.agreement!r}")
    joint = margin(book)
    alone = [margin(with_positions(book, position_house == h)) for h in range(2)]
    haircut = agreement.offset_haircut
    components = dict(joint.components)

    def in_joint_currency(requirements: Requirements, kind: str) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        value: np.ndarray[tuple[int], np.dtype[np.float64]] = getattr(requirements, kind)
        if np.array_equal(requirements.margin_asset, joint.margin_asset):
            return value
        converted: np.ndarray[tuple[int], np.dtype[np.float64]] = (
            value * book.asset_price[requirements.margin_asset] / book.asset_price[joint.margin_asset])
        return converted

    def combine(kind: str) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        standalone = [in_joint_currency(r, kind) for r in alone]
        total = standalone[0] + standalone[1]
        together = getattr(joint, kind)
        cross: np.ndarray[tuple[int], np.dtype[np.float64]] = np.minimum(total, together + haircut * (total - together))
        share = np.where(total > 0, cross / np.where(total > 0, total, 1.0), 0.0)
        if kind == "initial_margin":
            components["joint_margin"] = together
            components["offset_benefit"] = total - cross
            for name, part in zip(houses, standalone, strict=True):
                components[f"standalone.{name}"] = part
                components[f"cross_margin.{name}"] = part * share
        return cross

    initial = combine("initial_margin")
    maintenance = combine("maintenance_margin")
    # Per-position figures of the joint run would not add up to the cross margin: none are reported.
    return replace(joint, initial_margin=initial, maintenance_margin=maintenance, components=components,
                   positions=None)

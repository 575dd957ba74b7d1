"""The default fund: Cover-N sizing from stress results and members' contributions, in exact minor units.

Method (PFMI Principle 4 key consideration 4; shared/reference/risk-models.md "Clearing house mechanics"): the
fund must cover, under extreme but plausible conditions, the default of the N (`default_fund.cover`, Cover-2 by
default) members — each counted with its affiliates — whose stressed losses in excess of initial margin are the
largest. marginkit's choices where the issue leaves them open:

- `common_scenario` (default): fund = max over scenarios s of Σ of the N largest affiliate-group losses beyond
  margin in s — the defaults happen together, in one market; `worst_per_group`: Σ of the N largest of each
  group's own worst loss (each in its own scenario; never smaller, more conservative).
- The Cover-N figure is rounded up to the currency's minor unit (a requirement); the fund's size is
  max(Cover-N, members × minimum_contribution) so that every member can pay the floor.
- Contributions are pro rata to each member's initial margin over all its accounts (house and clients, as
  `ClearingMargins.by_member`), with the floor applied first: a member whose pro-rata share of what is left falls
  below `minimum_contribution` pays the floor, and the rest of the fund is shared pro rata among the others, until
  no share falls below the floor (water-filling). Shares are then rounded to minor units by largest remainder
  (`waterfall.pro_rata`), so the contributions sum exactly to the fund and none is below the floor.
- A float risk figure becomes money in two steps: rounded half-even to 6 places beyond the minor unit (float64
  noise such as 0.1 × 3 = 0.30000000000000004 does not move a cent), then by the boundary's rule (requirements
  up, credits down; DESIGN.md principle 5). The currency's minor unit comes from the ledger's shipped assets
  (USD 2 places, BTC 8, …; 2 for a currency it does not ship).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import numpy as np
from numpy.typing import NDArray

from marginkit.clearing.margin import ClearingMargins
from marginkit.clearing.spec import ClearingSpec
from marginkit.clearing.stress import StressResult
from marginkit.clearing.waterfall import pro_rata
from marginkit.errors import InputError
from marginkit.ledger.journal import DEFAULT_ASSETS

F64 = NDArray[np.float64]
COMMON_SCENARIO = "common_scenario"
WORST_PER_GROUP = "worst_per_group"
METHODS = (COMMON_SCENARIO, WORST_PER_GROUP)
NOISE_PLACES = 6


def currency_decimals(currency: str) -> int:
    """Decimal places of a currency's minor unit: the ledger's shipped asset, else 2."""
    return DEFAULT_ASSETS.get(currency, 2)


def money(value: float | Decimal, decimals: int, rounding: str = ROUND_CEILING) -> Decimal:
    """A float risk figure as money with `decimals` places: float noise removed first, then `rounding` (module doc)."""
    exact = Decimal(value)
    if not exact.is_finite():
        raise InputError("a money amount must be finite", field="amount")
    cleaned = exact.quantize(Decimal(1).scaleb(-(decimals + NOISE_PLACES)), rounding=ROUND_HALF_EVEN)
    result = cleaned.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
    return result + 0  # −0 → 0


@dataclass(frozen=True, eq=False)
class CoverRequirement:
    """Cover-N on a groups × scenarios matrix of losses beyond margin: the amount, its scenario (−1 when each group
    is taken at its own worst, or nothing exceeds margin) and the covered groups (indices, largest first) with the
    loss each contributes."""

    amount: float
    scenario: int
    groups: tuple[int, ...]
    group_losses: F64


def cover_requirement(group_excess: F64, cover: int, method: str = COMMON_SCENARIO) -> CoverRequirement:
    """Σ of the `cover` largest group losses beyond margin: in the worst common scenario, or each at its worst."""
    losses = np.asarray(group_excess, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] < 1 or losses.shape[1] < 1:
        raise InputError("needs a groups × scenarios matrix with at least one of each", field="group_excess")
    if not np.isfinite(losses).all() or (losses < 0).any():
        raise InputError("losses beyond margin must be finite and ≥ 0", field="group_excess")
    if method not in METHODS:
        raise InputError(f"must be one of {', '.join(METHODS)}", field="method")
    if cover < 1:
        raise InputError("must be at least 1", field="default_fund.cover")
    n = min(cover, losses.shape[0])
    if method == COMMON_SCENARIO:
        totals = -np.sort(-losses, axis=0)[:n].sum(axis=0)
        scenario = int(np.argmax(totals))
        column = losses[:, scenario]
        order = np.argsort(-column, kind="stable")[:n]
        amount = float(totals[scenario])
        return CoverRequirement(amount, scenario if amount > 0 else -1, tuple(int(g) for g in order),
                                column[order].copy())
    worst = losses.max(axis=1)
    order = np.argsort(-worst, kind="stable")[:n]
    return CoverRequirement(float(worst[order].sum()), -1, tuple(int(g) for g in order), worst[order].copy())


def allocate_contributions(fund: int, weights: Sequence[int], floor: int) -> list[int]:
    """Contributions in minor units: the floor first, the rest pro rata to `weights` (water-filling, module doc).

    Needs fund ≥ len(weights) × floor; the result sums to `fund` and every part is ≥ `floor`.
    """
    return _water_fill(fund, weights, floor)[0]


def _water_fill(fund: int, weights: Sequence[int], floor: int) -> tuple[list[int], list[bool]]:
    """`allocate_contributions` and which parts were held at the floor."""
    count = len(weights)
    if count == 0:
        raise InputError("a default fund needs at least one member", field="members")
    if floor < 0 or fund < count * floor or any(w < 0 for w in weights):
        raise InputError(f"the fund ({fund} minor units) cannot pay {count} floors of {floor}", field="fund")
    floored = [False] * count
    while True:
        free = [k for k in range(count) if not floored[k]]
        rest = fund - floor * (count - len(free))
        basis = [weights[k] for k in free]
        whole = sum(basis)
        if whole == 0:
            basis = [1] * len(free)
            whole = len(free)
        newly = [k for k, w in zip(free, basis, strict=True) if rest * w < floor * whole]
        if not newly:
            break
        for k in newly:
            floored[k] = True
    parts = [floor] * count
    for k, share in zip(free, pro_rata(rest, basis), strict=True):
        parts[k] = share
    return parts, floored


@dataclass(frozen=True)
class DefaultFund:
    """The sized default fund (Decimals in `currency`): the Cover-N requirement and how it was found, the size,
    the pro-rata basis (each member's IM) and each member's contribution, the members held at the floor."""

    currency: str
    method: str
    cover: int
    requirement: Decimal
    minimum_total: Decimal
    size: Decimal
    scenario: str | None
    covered_groups: tuple[str, ...]
    covered_losses: Mapping[str, Decimal]
    margin_basis: Mapping[str, Decimal]
    contributions: Mapping[str, Decimal]
    floored: tuple[str, ...]


def size_default_fund(spec: ClearingSpec, stress: StressResult, margins: ClearingMargins,
                      method: str = COMMON_SCENARIO) -> DefaultFund:
    """Cover-N fund from a stress test and each member's contribution (module docstring), exact in minor units."""
    settings = spec.settings
    decimals = currency_decimals(settings.currency)
    unit = Decimal(1).scaleb(-decimals)
    cover = cover_requirement(stress.group_excess, settings.default_fund.cover, method)
    requirement = money(cover.amount, decimals, ROUND_CEILING)
    members = [member.id for member in spec.members]
    floor = money(settings.default_fund.minimum_contribution, decimals, ROUND_CEILING)
    minimum_total = floor * len(members)
    size = max(requirement, minimum_total)
    by_member = margins.by_member(spec)
    basis = {m: money(by_member[m], decimals, ROUND_CEILING) for m in members}
    parts, floored = _water_fill(int(size / unit), [int(basis[m] / unit) for m in members], int(floor / unit))
    contributions = {m: (Decimal(p) * unit).quantize(unit) for m, p in zip(members, parts, strict=True)}
    return DefaultFund(
        currency=settings.currency, method=method, cover=settings.default_fund.cover, requirement=requirement,
        minimum_total=minimum_total, size=size,
        scenario=stress.scenarios.names[cover.scenario] if cover.scenario >= 0 else None,
        covered_groups=tuple(stress.group_ids[g] for g in cover.groups),
        covered_losses={stress.group_ids[g]: money(float(v), decimals, ROUND_CEILING)
                        for g, v in zip(cover.groups, cover.group_losses.tolist(), strict=True)},
        margin_basis=basis, contributions=contributions,
        floored=tuple(m for m, held in zip(members, floored, strict=True) if held))

"""The `span` model: classic SPAN per combined commodity, summed per account, in USD.

Method (shared/reference/span.md; CME "SPAN components", spread-calculation page and clearing advisories):
- risk arrays: 16 losses (+ loss, USD) of one long contract over a one-day look-ahead, either given (a profile's
  `risk_arrays`, a CME XML SPAN file) or computed here: futures linearly, P&L = size × move; options by Black-76
  on the forward at the shocked price and volatility with the time to expiry shortened by the look-ahead,
  P&L = V(F + p·PSR, σ + v·VSR, T − look-ahead) − mark; the extreme points' losses are multiplied by their weight c;
- scan risk per scan-rate tier = max(0, max_j Σ q·RA_j) through the scenario kernel, one group per
  (account, combined commodity, scan tier); tiers are summed as if uncorrelated;
- composite delta (per contract, in delta units = contract_size / delta_unit for a future): given, or the weighted
  mean of the Black-76 deltas one day ahead at the delta points (default: 0, ±1/3, ±2/3, ±1 of the PSR, weights
  the normal density at 0, ±1, ±2, ±3 standard deviations — marginkit's choice where span.md leaves the weights
  to the clearing house's file);
- intra-commodity spreads (FLAT): in priority order, spreads formed between legs of opposite sides in their ratio
  from the net composite delta per intra tier, charge = rate × spreads, the matched delta consumed;
- delivery-month charge: spread_rate × the spot-month delta consumed by intra spreads (at most the spot-month
  delta of the tiers it sits in) + outright_rate × the rest;
- inter-commodity spreads in priority order on the delta left after intra spreads, delivery-month delta excluded:
  credit per leg = rate × weighted futures price risk × leg ratio × spreads; weighted futures price risk =
  price risk ÷ |net delta| (price risk = mean loss of the active scan point and its paired volatility point less
  the time risk, the mean loss of points 1 and 2), or the price scan range per delta unit (delta-weighted over the
  account's contracts), or the former capped at the latter;
- short option minimum = rate × max(short calls, short puts) per SOM tier, counted in delta units;
- commodity risk = max(scan + intra + delivery − inter credit, SOM); net option value NOV = Σ q·size·mark (USD);
  SPAN requirement = max(0, Σ commodity risk − NOV).

Footing (spec/book-format.md "Equity and currency"): equity already counts the options at q·size·mark, i.e. NOV,
so the requirement is the clearing house's figure plus NOV (max(Σ risk, NOV)); the clearing house's figures are
`venue_maintenance_margin` and `venue_initial_margin`. Initial: max(0, Σ ratio × (commodity risk − commodity
NOV)) with the account class's ratio (CME advisories 13-479 and 15-030: speculators 1.10, hedgers and members
1.00; profile values, a combined commodity may state its own): with one ratio for every commodity this is
maintenance × ratio, so a long option still costs its premium only.

Coverage: linear (USD- or stablecoin-settled) futures and options in cross or portfolio accounts; spot,
perpetuals, coin-settled (inverse) contracts and isolated positions are refused, naming the position. Positions
are netted per account and instrument (hedge-mode legs included), as a clearing house nets them. The Book holds
no forwards or volatilities: an option's forward is the mark of a linear future on the same underlying and
expiry in the book, else the underlying's index (the book format's forward with absent rates); its volatility is
implied from its mark at that forward, undiscounted, so the computed array revalues the mark exactly at no move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import FUTURE, ISOLATED, OPTION, Book
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import position_field, refuse_positions, settlement_margin_assets
from marginkit.models.requirements import LazyRows, Requirements
from marginkit.models.span_parameters import (
    ACCOUNT_CLASSES,
    SCENARIO_COUNT,
    CombinedCommodity,
    DeliveryCharge,
    ExpiryRange,
    SpanParameters,
    parse_span_parameters,
)
from marginkit.pricing import black76_greeks, black76_price, implied_volatility_with_mask
from marginkit.scenarios.kernel import GroupedPositions, group_positions, reduce_scenarios, scenario_pnl

MODEL = "span"
DAYS_PER_YEAR = 365.0
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class RiskArrays:
    """Per instrument: 16 losses of one long contract (USD, + loss, weights applied), composite delta (delta units
    per contract) and the price scan range per delta unit (USD; NaN where unknown)."""

    losses: F64
    composite_delta: F64
    scan_range: F64


def compute_risk_arrays(
    price: F64, strike: F64, years: F64, is_call: B, is_option: B, volatility: F64, contract_size: F64,
    usd_per_quote: F64, price_scan_range: F64, volatility_scan_range: F64, delta_unit: F64,
    parameters: SpanParameters,
) -> RiskArrays:
    """Risk arrays of one long contract of each instrument under the 16 scan points, by our pricer.

    `price` is the future's price or the option's forward and `price_scan_range` the PSR, both quote currency per
    unit of underlying; `volatility` and `volatility_scan_range` annualised; an option's base value is Black-76 at
    no move and no look-ahead (equal to its mark when `volatility` is implied from it). Loss_j = −P&L_j ×
    contract_size × USD per quote × weight_j. The shocked forward is floored at 1e-12 of the forward.
    span.md "Risk arrays"; Black (1976).
    """
    points = parameters.points()
    moves = np.array([p.price for p in points])
    vol_moves = np.array([p.volatility for p in points])
    weights = np.array([p.weight for p in points])
    ahead = np.maximum(years - parameters.look_ahead_days / DAYS_PER_YEAR, 0.0)
    scale = contract_size * usd_per_quote
    shocked = price[:, None] + moves[None, :] * price_scan_range[:, None]
    future_pnl = shocked - price[:, None]
    losses = -future_pnl * scale[:, None] * weights[None, :]
    delta = contract_size / delta_unit
    options = np.flatnonzero(is_option)
    if options.size:
        F = price[options]
        K = strike[options]
        call = is_call[options]
        sigma = volatility[options]
        base = black76_price(F, K, years[options], sigma, call, 1.0)
        forward = np.maximum(shocked[options], 1e-12 * F[:, None])
        sigma_shocked = np.maximum(sigma[:, None] + vol_moves[None, :] * volatility_scan_range[options, None], 0.0)
        value = black76_price(forward, K[:, None], ahead[options, None], sigma_shocked, call[:, None], 1.0)
        losses[options] = -(value - base[:, None]) * scale[options, None] * weights[None, :]
        delta_points = parameters.composite_delta_points()
        delta_moves = np.array([p.price for p in delta_points])
        delta_weights = np.array([p.weight for p in delta_points])
        delta_weights = delta_weights / delta_weights.sum()
        at = np.maximum(F[:, None] + delta_moves[None, :] * price_scan_range[options, None], 1e-12 * F[:, None])
        greeks = black76_greeks(at, K[:, None], ahead[options, None], sigma[:, None], call[:, None], 1.0)
        delta = delta.copy()
        delta[options] = (greeks.delta @ delta_weights) * contract_size[options] / delta_unit[options]
    return RiskArrays(losses=losses, composite_delta=delta,
                      scan_range=price_scan_range * delta_unit * usd_per_quote)


def _in_range(selector: ExpiryRange, days: F64, period: I64) -> B:
    """Instruments a tier selects (ExpiryRange: every given bound holds)."""
    keep = np.ones(days.shape, dtype=bool)
    if selector.start_period is not None:
        keep &= period >= int(selector.start_period)
    if selector.end_period is not None:
        keep &= period <= int(selector.end_period)
    if selector.min_days is not None:
        keep &= days > selector.min_days
    if selector.max_days is not None:
        keep &= days <= selector.max_days
    return keep


@dataclass(frozen=True)
class _Tiers:
    """A flat list of one kind of tier across combined commodities, and each instrument's tier (−1: none)."""

    commodity: I64
    number: tuple[int, ...]
    of_instrument: I64

    @property
    def count(self) -> int:
        return int(self.commodity.shape[0])


def _assign(selectors: Sequence[Sequence[ExpiryRange]], numbers: Sequence[Sequence[int]], commodity_of: I64,
            days: F64, period: I64, eligible: B | None = None) -> _Tiers:
    """Each instrument's first matching tier of its own combined commodity."""
    commodity: list[int] = []
    flat_numbers: list[int] = []
    of_instrument = np.full(commodity_of.shape, -1, dtype=np.int64)
    for c, (tiers, tier_numbers) in enumerate(zip(selectors, numbers, strict=True)):
        for selector, number in zip(tiers, tier_numbers, strict=True):
            free = (commodity_of == c) & (of_instrument < 0) & _in_range(selector, days, period)
            if eligible is not None:
                free &= eligible
            of_instrument[free] = len(commodity)
            commodity.append(c)
            flat_numbers.append(number)
    return _Tiers(np.array(commodity, dtype=np.int64), tuple(flat_numbers), of_instrument)


def _commodities(book: Book, parameters: SpanParameters) -> I64:
    """Each instrument's combined commodity: named by id first, else by underlying; −1 where none."""
    ids = np.array(book.instrument_ids, dtype=object)
    underlyings = np.array([book.assets[u] for u in book.underlying], dtype=object)
    commodity_of = np.full(len(ids), -1, dtype=np.int64)
    commodities = list(parameters.combined_commodities.values())
    for c, commodity in enumerate(commodities):
        named = [*commodity.instruments, *commodity.risk_arrays]
        if named:
            commodity_of[np.isin(ids, named)] = c
    for c, commodity in enumerate(commodities):
        if commodity.underlyings:
            commodity_of[(commodity_of < 0) & np.isin(underlyings, commodity.underlyings)] = c
    return commodity_of


def _account_classes(book: Book, parameters: SpanParameters, given: Sequence[str | None] | None) -> I64:
    """Index into ACCOUNT_CLASSES per account: `given`, else the book's `account_class` (None where the book file
    gives none: the profile's `default_account_class`)."""
    classes = given if given is not None else book.account_class
    default = ACCOUNT_CLASSES.index(parameters.default_account_class)
    if not classes:
        return np.full(book.account_count, default, dtype=np.int64)
    if len(classes) != book.account_count:
        raise ValueError("account_class: one entry per account")
    codes = np.full(book.account_count, default, dtype=np.int64)
    for a, name in enumerate(classes):
        if name is None:
            continue
        if name not in ACCOUNT_CLASSES:
            raise InputError(f"must be one of {', '.join(ACCOUNT_CLASSES)}", field=f"accounts[{a}].account_class")
        codes[a] = ACCOUNT_CLASSES.index(name)
    return codes


def _first_position(book: Book, instruments: B) -> str:
    held = instruments[book.position_instrument]
    return position_field(book, int(np.argmax(held))) if held.any() else "instruments"


def _option_inputs(book: Book, held: B) -> tuple[F64, F64]:
    """Forward and implied volatility of each held option (module docstring: what the Book lacks).

    Forward: the mark of a linear future on the same underlying, quote currency and expiry, else the index.
    """
    forward = book.underlying_price.copy()
    futures = {(int(book.underlying[i]), int(book.quote[i]), float(book.years[i])): float(book.mark[i])
               for i in np.flatnonzero((book.kind == FUTURE) & ~book.inverse)}
    options = np.flatnonzero(held & (book.kind == OPTION))
    for i in options:
        forward[i] = futures.get((int(book.underlying[i]), int(book.quote[i]), float(book.years[i])), forward[i])
    volatility = np.zeros(len(book.instruments))
    if options.size == 0:
        return forward, volatility
    if book.volatility is not None and book.forward is not None and np.allclose(
            forward[options], book.forward[options], rtol=1e-12, atol=0.0) and bool(
            np.all((book.volatility[options] > 0) | (book.years[options] <= 0))):
        # resolve already bound each option's volatility at this forward (given, smile or implied)
        volatility[options] = np.where(book.years[options] > 0, book.volatility[options], 0.0)
        return forward, volatility
    premium = book.mark[options] * book.asset_price[book.settlement[options]] / book.asset_price[book.quote[options]]
    living = book.years[options] > 0
    implied = implied_volatility_with_mask(premium, forward[options], book.strike[options],
                                           np.where(living, book.years[options], 1.0), book.is_call[options], 1.0)
    bad = living & ~implied.valid
    if bad.any():
        worst = int(options[np.argmax(bad)])
        mask = np.zeros(len(book.instruments), dtype=bool)
        mask[worst] = True
        raise InputError(f"{MODEL}: the mark of {book.instruments[worst].id} has no Black-76 implied volatility at the "
                         f"forward {forward[worst]:g} (it is outside the arbitrage bounds)",
                         field=_first_position(book, mask))
    volatility[options] = np.where(living, implied.volatility, 0.0)
    return forward, volatility


def _risk_arrays(book: Book, parameters: SpanParameters, held: B, commodity_of: I64, scan_tiers: _Tiers,
                 usd_per_quote: F64) -> RiskArrays:
    """Given arrays where the parameters have them, computed ones for the other held instruments."""
    n = len(book.instruments)
    names = list(parameters.combined_commodities)
    commodities = list(parameters.combined_commodities.values())
    losses = np.zeros((n, SCENARIO_COUNT))
    delta = np.zeros(n)
    scan_range = np.full(n, np.nan)
    given = np.zeros(n, dtype=bool)
    index = {instrument_id: i for i, instrument_id in enumerate(book.instrument_ids)}
    for commodity in commodities:
        for instrument_id, array in commodity.risk_arrays.items():
            i = index.get(instrument_id)
            if i is None:
                continue
            losses[i] = array.losses
            delta[i] = array.composite_delta
            scan_range[i] = np.nan if array.price_scan_range is None else array.price_scan_range
            given[i] = True
            factor = array.contract_value_factor
            if factor is not None and held[i] and not np.isclose(factor, book.contract_size[i], rtol=1e-9, atol=0):
                mask = np.zeros(n, dtype=bool)
                mask[i] = True
                raise InputError(f"{MODEL}: the SPAN file's contract value factor {factor:g} of {instrument_id} is "
                                 f"not the book's contract_size {book.contract_size[i]:g}",
                                 field=_first_position(book, mask))
    compute = held & ~given
    if not compute.any():
        return RiskArrays(losses, delta, scan_range)
    rate = np.full(n, np.nan)
    absolute = np.full(n, np.nan)
    vsr = np.zeros(n)
    delta_unit = np.ones(n)
    for t in range(scan_tiers.count):
        c = int(scan_tiers.commodity[t])
        tier = commodities[c].scan_tiers[scan_tiers.number[t]]
        members = compute & (scan_tiers.of_instrument == t)
        if not members.any():
            continue
        if tier.price_scan_rate is None and tier.price_scan_range is None:
            raise InputError(f"needed to compute the risk array of {book.instruments[int(np.argmax(members))].id}",
                             field=f"parameters.combined_commodities.{names[c]}.scan_tiers[{scan_tiers.number[t]}]"
                                   ".price_scan_rate")
        rate[members] = np.nan if tier.price_scan_rate is None else tier.price_scan_rate
        absolute[members] = np.nan if tier.price_scan_range is None else tier.price_scan_range
        vsr[members] = tier.volatility_scan_range
        delta_unit[members] = commodities[c].delta_unit
    forward, volatility = _option_inputs(book, compute)
    price = np.where(book.kind == OPTION, forward, book.mark)
    psr = np.where(np.isnan(absolute), np.nan_to_num(rate) * price, absolute)
    rows = np.flatnonzero(compute)
    computed = compute_risk_arrays(
        price[rows], book.strike[rows], book.years[rows], book.is_call[rows], book.kind[rows] == OPTION,
        volatility[rows], book.contract_size[rows], usd_per_quote[rows], psr[rows], vsr[rows], delta_unit[rows],
        parameters,
    )
    losses[rows] = computed.losses
    delta[rows] = computed.composite_delta
    scan_range[rows] = computed.scan_range
    return RiskArrays(losses, delta, scan_range)


def _paired_points(parameters: SpanParameters) -> I64:
    """Each scan point's pair: same price move, opposite volatility move (itself where there is none)."""
    points = parameters.points()
    pairs = np.arange(len(points), dtype=np.int64)
    for j, p in enumerate(points):
        for k, q in enumerate(points):
            if k != j and p.volatility != 0 and q.price == p.price and q.volatility == -p.volatility:
                pairs[j] = k
                break
    return pairs


def _spread_count(remaining: F64, legs: Sequence[tuple[int, float, float]]) -> tuple[F64, F64]:
    """Spreads formed per row from signed deltas `remaining[:, column]`: (count, direction ±1).

    A leg (column, ratio, side ±1) needs side × direction × delta > 0; spreads = min over legs of usable delta ÷ ratio.
    """
    counts = []
    for direction in (1.0, -1.0):
        usable = np.stack([np.maximum(side * direction * remaining[:, column], 0.0) / ratio
                           for column, ratio, side in legs])
        counts.append(usable.min(axis=0))
    forward, backward = counts
    return forward + backward, np.where(forward > 0, 1.0, -1.0)


def _consume(remaining: F64, legs: Sequence[tuple[int, float, float]], count: F64, direction: F64,
             consumed: F64 | None = None) -> None:
    for column, ratio, side in legs:
        remaining[:, column] -= side * direction * ratio * count
        if consumed is not None:
            consumed[:, column] += ratio * count


def _incidence(commodity: I64, commodity_count: int) -> F64:
    """tiers × commodities matrix: 1 where the tier belongs to the commodity (sums tier columns per commodity)."""
    out = np.zeros((commodity.shape[0], commodity_count))
    out[np.arange(commodity.shape[0]), commodity] = 1.0
    return out


def _delivery_range(charge: DeliveryCharge) -> ExpiryRange:
    """The contracts in a delivery definition's month: its period, or the last `within_days` days."""
    if charge.period is not None:
        return ExpiryRange(start_period=charge.period, end_period=charge.period)
    return ExpiryRange(max_days=charge.within_days)


def _delta_units(commodities: Sequence[CombinedCommodity], commodity_of: I64) -> F64:
    units = np.array([c.delta_unit for c in commodities] + [1.0])
    result: F64 = units[np.where(commodity_of >= 0, commodity_of, len(commodities))]
    return result


def _weighted_futures_price_risk(
    parameters: SpanParameters, names: Sequence[str], grouped: GroupedPositions, pnl: F64, worst_scenario: I64,
    group_scan: F64, group_account: I64, group_commodity: I64, account: I64, position_commodity: I64,
    contract: I64, position_delta: F64, arrays: RiskArrays, net_delta: F64, book: Book,
) -> F64:
    """Weighted futures price risk per (account, commodity), USD per delta unit, for commodities in inter spreads.

    price_risk: price risk ÷ |net delta|, price risk = mean loss of the active scan point and its paired
    volatility point − time risk (mean loss of the no-price-move points), at least 0; scan_range: the
    delta-weighted mean price scan range per delta unit of the account's contracts; capped: the lesser.
    span.md "Inter-commodity spread credit".
    """
    shape = net_delta.shape
    result = np.zeros(shape)
    needed = np.zeros(len(names), dtype=bool)
    for spread in parameters.inter_spreads:
        for leg in spread.legs:
            needed[names.index(leg.combined_commodity)] = True
    if not needed.any():
        return result
    points = parameters.points()
    still = [j for j, p in enumerate(points) if p.price == 0 and p.volatility != 0] or [0, 1]
    pairs = _paired_points(parameters)
    chosen = np.flatnonzero(needed[group_commodity] & (group_scan > 0))
    losses = -scenario_pnl(grouped, pnl, chosen)
    rows = np.arange(chosen.size)
    active = worst_scenario[chosen]
    time_risk = losses[:, still].mean(axis=1)
    group_price_risk = np.maximum((losses[rows, active] + losses[rows, pairs[active]]) / 2.0 - time_risk, 0.0)
    price_risk = _accumulate(group_account[chosen], group_commodity[chosen], group_price_risk, shape)
    magnitude = np.abs(net_delta)
    from_price = np.where(magnitude > 0, price_risk / np.where(magnitude > 0, magnitude, 1.0), 0.0)
    commodities = list(parameters.combined_commodities.values())
    methods = np.array([c.weighted_futures_price_risk for c in commodities])
    uses_range = needed & (methods != "price_risk")
    from_range = np.zeros(shape)
    if uses_range.any():
        relevant = uses_range[position_commodity] & (position_delta != 0)
        unknown = relevant & np.isnan(arrays.scan_range[contract])
        if unknown.any():
            i = int(contract[np.argmax(unknown)])
            c = names[int(position_commodity[np.argmax(unknown)])]
            name = book.instrument_ids[i]
            raise InputError(f"needed by weighted_futures_price_risk of {c} (the risk array of {name} gives none)",
                             field=f"parameters.combined_commodities.{c}.risk_arrays.{name}.price_scan_range")
        weight = np.abs(position_delta) * relevant
        weighted = _accumulate(account, position_commodity, weight * np.nan_to_num(arrays.scan_range[contract]), shape)
        total = _accumulate(account, position_commodity, weight, shape)
        from_range = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), 0.0)
    result = np.where(methods == "scan_range", from_range,
                      np.where(methods == "capped", np.minimum(from_price, from_range), from_price))
    result[:, ~needed] = 0.0
    return result


def _explanations(
    book: Book, parameters: SpanParameters, names: Sequence[str], components: Mapping[str, F64], ratios: F64,
    group_account: I64, group_commodity: I64, group_scan: F64, worst_scenario: I64, account: I64,
    position_commodity: I64, to_margin: F64,
) -> LazyRows:
    """Per account (built when read): the worst scenario (the largest commodity's scan point) and each held
    commodity's components, in the margin currency."""
    accounts = book.account_count
    scan = components["scan_risk"]
    held = _accumulate(account, position_commodity, np.ones(account.shape[0]), scan.shape) > 0
    largest = np.argmax(scan, axis=1) if scan.shape[1] else np.zeros(accounts, dtype=np.int64)
    score = np.where(group_commodity == largest[group_account], group_scan, -1.0)
    order = np.lexsort((-score, group_account))
    first_accounts, first = np.unique(group_account[order], return_index=True)
    best_group = np.full(accounts, -1, dtype=np.int64)
    best_group[first_accounts] = order[first]
    points = parameters.points()
    padded = np.append(group_scan, 0.0)  # best_group −1 (no group) reads the trailing 0
    loss = padded[best_group] * to_margin

    def row(a: int) -> Mapping[str, Any]:
        g = int(best_group[a])
        worst: dict[str, Any] | None = None
        if g >= 0 and group_scan[g] > 0:
            point = points[int(worst_scenario[g])]
            worst = {"combined_commodity": names[int(group_commodity[g])], "scenario": int(worst_scenario[g]) + 1,
                     "price_scan_move": point.price,
                     "vol_move": "up" if point.volatility > 0 else "down" if point.volatility < 0 else "none",
                     "loss": float(loss[a])}
        rows = [{"combined_commodity": names[c], **{k: float(v[a, c] * to_margin[a]) for k, v in components.items()},
                 "initial_ratio": float(ratios[a, c])} for c in np.flatnonzero(held[a]).tolist()]
        return {"worst_scenario": worst, "combined_commodities": rows}

    return LazyRows(accounts, row)


def _accumulate(rows: I64, columns: I64, values: F64, shape: tuple[int, int]) -> F64:
    out = np.zeros(shape)
    np.add.at(out, (rows, columns), values)
    return out


def margin(book: Book, profile: Profile, *, account_class: Sequence[str | None] | None = None) -> Requirements:
    """Classic SPAN maintenance and initial margin per account (USD, equity footing; module docstring).

    `account_class` (speculator | hedger | member per account) overrides the book's; absent, the profile's
    `default_account_class` applies. span.md; CME SPAN components and spread-calculation pages.
    """
    parameters = parse_span_parameters(profile)
    instrument = book.position_instrument
    kind = book.kind[instrument]
    refuse_positions(book, MODEL, (kind != FUTURE) & (kind != OPTION),
                     "covers futures and options (classic SPAN), not spot or perpetuals")
    refuse_positions(book, MODEL, book.inverse[instrument],
                     "covers linear (USD- or stablecoin-settled) contracts; coin-settled (inverse) ones are refused")
    refuse_positions(book, MODEL, book.account_mode[book.position_account] == ISOLATED,
                     "margins whole accounts; isolated positions are not covered")
    margin_asset = settlement_margin_assets(book, MODEL)
    classes = _account_classes(book, parameters, account_class)
    names = list(parameters.combined_commodities)
    commodities = list(parameters.combined_commodities.values())
    commodity_of = _commodities(book, parameters)
    refuse_positions(book, MODEL, commodity_of[instrument] < 0,
                     "the profile has no combined commodity for this instrument's underlying")

    days = book.years * DAYS_PER_YEAR
    period = np.array([i.expiry.year * 100 + i.expiry.month if i.expiry else 0 for i in book.instruments],
                      dtype=np.int64)
    scan_tiers = _assign([c.scan_tiers for c in commodities], [range(len(c.scan_tiers)) for c in commodities],
                         commodity_of, days, period)
    refuse_positions(book, MODEL, scan_tiers.of_instrument[instrument] < 0,
                     "the contract falls in none of its combined commodity's scan tiers")
    intra = _assign([c.intra_tiers for c in commodities], [[t.tier for t in c.intra_tiers] for c in commodities],
                    commodity_of, days, period)
    delivery = _assign([[_delivery_range(d) for d in c.delivery] for c in commodities],
                       [range(len(c.delivery)) for c in commodities], commodity_of, days, period)
    som = _assign([c.short_option_minimum for c in commodities],
                  [range(len(c.short_option_minimum)) for c in commodities], commodity_of, days, period,
                  eligible=book.kind == OPTION)

    held = np.zeros(len(book.instruments), dtype=bool)
    held[instrument] = True
    usd_per_quote = book.asset_price[book.quote]
    arrays = _risk_arrays(book, parameters, held, commodity_of, scan_tiers, usd_per_quote)

    # Net positions per (account, instrument): hedge-mode legs and repeated rows add up.
    net = book.position_matrix.tocoo()
    nonzero = net.data != 0
    account = net.row[nonzero].astype(np.int64)
    contract = net.col[nonzero].astype(np.int64)
    quantity = net.data[nonzero].astype(np.float64)
    accounts, commodity_count = book.account_count, len(commodities)
    shape = (accounts, commodity_count)
    position_commodity = commodity_of[contract]

    # Scan risk: one kernel group per (account, scan tier); instrument P&L = −risk array (gains positive).
    tier_count = max(scan_tiers.count, 1)
    keys, group = np.unique(account * tier_count + scan_tiers.of_instrument[contract], return_inverse=True)
    group = group.astype(np.int64)
    group_account = keys // tier_count
    group_commodity = scan_tiers.commodity[keys % tier_count] if keys.size else np.zeros(0, dtype=np.int64)
    grouped = group_positions(group, contract, quantity, int(keys.size))
    pnl = -arrays.losses
    reduction = reduce_scenarios(grouped, pnl)
    group_scan = np.maximum(-reduction.worst_pnl, 0.0)
    scan = _accumulate(group_account, group_commodity, group_scan, shape)

    # Composite deltas: per commodity, per intra tier, per delivery definition and per SOM tier.
    position_delta = quantity * arrays.composite_delta[contract]
    net_delta = _accumulate(account, position_commodity, position_delta, shape)
    bucket = intra.of_instrument[contract]
    in_bucket = bucket >= 0
    remaining = _accumulate(account[in_bucket], bucket[in_bucket], position_delta[in_bucket], (accounts, intra.count))
    bucket_total = remaining @ _incidence(intra.commodity, commodity_count)
    consumed = np.zeros((accounts, intra.count))

    intra_charge = np.zeros(shape)
    tier_column = {(int(intra.commodity[b]), intra.number[b]): b for b in range(intra.count)}
    for c, commodity in enumerate(commodities):
        for intra_spread in sorted(commodity.intra_spreads, key=lambda s: s.priority):
            legs = [(tier_column[(c, leg.tier)], leg.ratio, 1.0 if leg.side == "A" else -1.0)
                    for leg in intra_spread.legs]
            count, direction = _spread_count(remaining, legs)
            _consume(remaining, legs, count, direction, consumed)
            intra_charge[:, c] += intra_spread.rate * count

    # Delivery month: spot delta per delivery definition; the part consumed by intra spreads is charged spread_rate.
    spot_of = delivery.of_instrument[contract]
    in_spot = spot_of >= 0
    spot = _accumulate(account[in_spot], spot_of[in_spot], position_delta[in_spot], (accounts, delivery.count))
    links = np.zeros((delivery.count, intra.count))
    both = (delivery.of_instrument >= 0) & (intra.of_instrument >= 0)
    links[delivery.of_instrument[both], intra.of_instrument[both]] = 1.0
    spot_consumed = np.minimum(np.abs(spot), consumed @ links.T)
    spot_left = np.abs(spot) - spot_consumed
    spread_rates = np.array([d.spread_rate for c in commodities for d in c.delivery])
    outright_rates = np.array([d.outright_rate for c in commodities for d in c.delivery])
    delivery_by_definition = spot_consumed * spread_rates + spot_left * outright_rates
    delivery_charge = delivery_by_definition @ _incidence(delivery.commodity, commodity_count)

    # Inter-commodity spreads on what intra spreads left, delivery-month delta excluded.
    left = net_delta - bucket_total + remaining @ _incidence(intra.commodity, commodity_count)
    left -= (np.sign(spot) * spot_left) @ _incidence(delivery.commodity, commodity_count)
    weighted_risk = _weighted_futures_price_risk(parameters, names, grouped, pnl, reduction.worst_scenario,
                                                 group_scan, group_account, group_commodity, account,
                                                 position_commodity, contract, position_delta, arrays, net_delta,
                                                 book)
    credit = np.zeros(shape)
    column = {name: c for c, name in enumerate(names)}
    for spread in sorted(parameters.inter_spreads, key=lambda s: s.priority):
        legs = [(column[leg.combined_commodity], leg.ratio, 1.0 if leg.side == "A" else -1.0) for leg in spread.legs]
        count, direction = _spread_count(left, legs)
        _consume(left, legs, count, direction)
        for c, ratio, _ in legs:
            credit[:, c] += spread.rate * weighted_risk[:, c] * ratio * count

    # Short option minimum: rate × max(short calls, short puts) per SOM tier, in delta units.
    som_tier = som.of_instrument[contract]
    short = (quantity < 0) & (som_tier >= 0)
    units = -quantity[short] * (book.contract_size / _delta_units(commodities, commodity_of))[contract[short]]
    calls = book.is_call[contract[short]]
    short_calls = _accumulate(account[short][calls], som_tier[short][calls], units[calls], (accounts, som.count))
    short_puts = _accumulate(account[short][~calls], som_tier[short][~calls], units[~calls], (accounts, som.count))
    som_rates = np.array([t.rate for c in commodities for t in c.short_option_minimum])
    minimum = (np.maximum(short_calls, short_puts) * som_rates) @ _incidence(som.commodity, commodity_count)

    # Commodity risk, NOV and the requirement (USD, then the margin currency).
    risk = np.maximum(scan + intra_charge + delivery_charge - credit, minimum)
    ratios = np.array([[parameters.account_class_ratio(name, cls) for cls in ACCOUNT_CLASSES] for name in names])
    option = book.kind[contract] == OPTION
    option_value = np.where(option, quantity * book.contract_size[contract] * book.mark[contract]
                            * book.asset_price[book.settlement[contract]], 0.0)
    commodity_nov = _accumulate(account, position_commodity, option_value, shape)
    nov = commodity_nov.sum(axis=1)
    to_margin = 1.0 / book.asset_price[margin_asset]
    total_risk = risk.sum(axis=1)
    venue_maintenance = np.maximum(total_risk - nov, 0.0)
    account_ratios = ratios[:, classes].T
    venue_initial = np.maximum((account_ratios * (risk - commodity_nov)).sum(axis=1), 0.0)
    per_commodity = {"scan_risk": scan, "intra_commodity_charge": intra_charge, "delivery_charge": delivery_charge,
                     "inter_commodity_credit": credit, "short_option_minimum": minimum, "commodity_risk": risk}
    explanations = _explanations(book, parameters, names, per_commodity, account_ratios, group_account,
                                 group_commodity, group_scan, reduction.worst_scenario, account, position_commodity,
                                 to_margin)
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=(venue_initial + nov) * to_margin,
        maintenance_margin=(venue_maintenance + nov) * to_margin,
        components={
            "scan_risk": scan.sum(axis=1) * to_margin,
            "intra_commodity_charge": intra_charge.sum(axis=1) * to_margin,
            "delivery_charge": delivery_charge.sum(axis=1) * to_margin,
            "inter_commodity_credit": credit.sum(axis=1) * to_margin,
            "short_option_minimum": minimum.sum(axis=1) * to_margin,
            "commodity_risk": total_risk * to_margin,
            "net_option_value": nov * to_margin,
            "venue_maintenance_margin": venue_maintenance * to_margin,
            "venue_initial_margin": venue_initial * to_margin,
        },
        explanations=explanations,
    )

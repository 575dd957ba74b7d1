"""Stress tests of a clearing house's book: P&L per account, member and affiliate group under extreme moves.

Method (PFMI Principle 4, key considerations 4 and 6; shared/reference/risk-models.md "Clearing house
mechanics"): the clearing house revalues every member's portfolio under extreme but plausible scenarios and
measures each member's stressed loss in excess of its initial margin; Cover-2 sizes the default fund on the two
members, counted with their affiliates, whose losses beyond margin are the largest (`default_fund.py`).

Scenarios, each a joint move of every underlying over the margin period of risk (MPOR):
- hypothetical: named shocks per underlying, a relative price move (−0.30 = −30 %, F → F·(1 + move)) and an
  optional absolute implied-volatility move (0.20 = +20 vol points); an underlying a scenario does not name is
  unchanged in it;
- historical: every overlapping MPOR window of a history period (`io/market_history.py`): the move of
  `price.<UNDERLYING>` from the window's first day to its last, S_{t+h}/S_t − 1, and of `vol.<UNDERLYING>` (if the
  history has it) σ_{t+h} − σ_t; one scenario per window, named `<set>@<last day>`, so the cross-underlying moves
  keep their historical correlation and the worst window of each member is found by the reduction below. h is
  the clearing house's `margin_period_of_risk_days` rounded up to whole days.

Revaluation reuses the `var` model's instrument × scenario P&L (`models/var.py` `instrument_pnl`): futures,
perpetuals and spot linearly, size × mark × move; options fully by Black-76 at the shocked forward and volatility
(floored at 0.01), same time to expiry. Linear (quote-settled) contracts only; coin-settled ones are refused,
naming the position. P&L is converted from USD into the clearing house's currency at the book's asset prices.
The kernel (`scenarios/kernel.py`) sums Σ quantity × instrument P&L per clearing account and scenario.

Who counts for a member (marginkit's choice, where the issue leaves it open): its house accounts and its omnibus
client accounts stay with it in a default; its individually segregated client accounts are ported to another
member (EMIR Art. 48(5)-(7)), so with `port_individual_clients` (the default) their P&L and their margin are left
out of the member's figures. A member's P&L is the sum over its counted accounts (netted, as one close-out),
its margin the sum of their IM, and its loss beyond margin in scenario s is max(0, −P&L_s − IM). An affiliate
group's loss in scenario s is the sum of its members' losses beyond margin (one member's surplus margin does not
cover an affiliate: they are separate legal entities).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from marginkit.book import OPTION, Book, resolve
from marginkit.clearing.margin import ClearingMargins, clearing_margins
from marginkit.clearing.spec import CLIENT, INDIVIDUAL, ClearingSpec
from marginkit.errors import InputError
from marginkit.io.market_history import MarketHistory
from marginkit.models.coverage import refuse_positions
from marginkit.models.var import RiskFactors, instrument_pnl
from marginkit.models.var_parameters import VarParameters
from marginkit.scenarios import group_positions, scenario_pnl

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

HYPOTHETICAL = "hypothetical"
HISTORICAL = "historical"
MODEL = "stress"
# Relative price moves and absolute volatility moves, as the var model's revaluation reads them.
_REVALUATION = VarParameters(price_returns="relative", volatility_changes="absolute")


@dataclass(frozen=True)
class Shock:
    """One underlying's move in a hypothetical scenario: relative price move (> −1) and absolute vol move."""

    price: float
    volatility: float = 0.0


@dataclass(frozen=True, eq=False)
class StressScenarios:
    """Scenarios as joint moves: `price_move` (relative) and `volatility_move` (absolute), underlyings × scenarios.

    `sets[k]` names the set scenario k belongs to (a hypothetical scenario is its own set; a historical set holds
    one scenario per MPOR window) and `kinds[k]` is hypothetical or historical.
    """

    names: tuple[str, ...]
    sets: tuple[str, ...]
    kinds: tuple[str, ...]
    underlyings: tuple[str, ...]
    price_move: F64
    volatility_move: F64

    @property
    def count(self) -> int:
        return len(self.names)

    def select(self, names: Sequence[str]) -> StressScenarios:
        """The scenarios whose name or set is in `names` (in this set's order); InputError names an unknown one."""
        known = set(self.names) | set(self.sets)
        for n, name in enumerate(names):
            if name not in known:
                raise InputError(f"no stress scenario or set named {name!r}", field=f"scenarios[{n}]")
        chosen = set(names)
        keep = np.array([name in chosen or group in chosen for name, group in zip(self.names, self.sets, strict=True)],
                        dtype=bool)
        return self._subset(keep)

    def _subset(self, keep: B) -> StressScenarios:
        where = np.flatnonzero(keep)
        return StressScenarios(tuple(self.names[k] for k in where), tuple(self.sets[k] for k in where),
                               tuple(self.kinds[k] for k in where), self.underlyings,
                               self.price_move[:, where], self.volatility_move[:, where])


def hypothetical_scenarios(definitions: Mapping[str, Mapping[str, Shock]]) -> StressScenarios:
    """Named hypothetical scenarios: {scenario: {underlying: Shock}}; an underlying left out does not move."""
    names = tuple(definitions)
    underlyings = tuple(sorted({u for shocks in definitions.values() for u in shocks}))
    row = {u: k for k, u in enumerate(underlyings)}
    price = np.zeros((len(underlyings), len(names)))
    volatility = np.zeros((len(underlyings), len(names)))
    for s, (name, shocks) in enumerate(definitions.items()):
        for underlying, shock in shocks.items():
            if not (math.isfinite(shock.price) and shock.price > -1.0):
                raise InputError("a price move must be finite and above −1 (−100 %)",
                                 field=f"{name}.{underlying}.price")
            if not math.isfinite(shock.volatility):
                raise InputError("must be finite", field=f"{name}.{underlying}.volatility")
            price[row[underlying], s] = shock.price
            volatility[row[underlying], s] = shock.volatility
    return StressScenarios(names, names, (HYPOTHETICAL,) * len(names), underlyings, price, volatility)


def historical_scenarios(history: MarketHistory, days: int, name: str, start: date | None = None,
                         end: date | None = None) -> StressScenarios:
    """Every overlapping `days`-day window of the history between `start` and `end` (inclusive) as a scenario.

    Price moves S_{t+h}/S_t − 1 of each `price.<UNDERLYING>`; volatility moves σ_{t+h} − σ_t of each
    `vol.<UNDERLYING>` whose underlying has a price series (else 0). Scenario names are `<name>@<window's last day>`.
    """
    if days < 1:
        raise InputError("the margin period of risk must be at least one day", field="margin_period_of_risk_days")
    dates = history.dates.astype("datetime64[D]")
    first = 0 if start is None else int(np.searchsorted(dates, np.datetime64(start.isoformat(), "D")))
    last = len(dates) if end is None else int(np.searchsorted(dates, np.datetime64(end.isoformat(), "D"),
                                                              side="right"))
    if last - first <= days:
        raise InputError(f"the history has {max(last - first, 0)} dates in the period, too few for one "
                         f"{days}-day window", field=f"{name}.start")
    underlyings = tuple(sorted(history.prices))
    if not underlyings:
        raise InputError("the history has no price series (price.<UNDERLYING>)", field=name)
    levels = np.vstack([history.prices[u][first:last] for u in underlyings])
    price = levels[:, days:] / levels[:, :-days] - 1.0
    volatility = np.zeros_like(price)
    for k, underlying in enumerate(underlyings):
        if underlying in history.volatilities:
            series = history.volatilities[underlying][first:last]
            volatility[k] = series[days:] - series[:-days]
    names = tuple(f"{name}@{d}" for d in dates[first + days: last])
    count = len(names)
    return StressScenarios(names, (name,) * count, (HISTORICAL,) * count, underlyings, price, volatility)


def combine(*scenario_sets: StressScenarios) -> StressScenarios:
    """One scenario set from several (their underlyings united; a set not naming an underlying leaves it still)."""
    underlyings = tuple(sorted({u for s in scenario_sets for u in s.underlyings}))
    row = {u: k for k, u in enumerate(underlyings)}
    names = tuple(n for s in scenario_sets for n in s.names)
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise InputError(f"stress scenario {duplicate!r} is named twice", field="stress")
    historical_sets = {g for s in scenario_sets for g, k in zip(s.sets, s.kinds, strict=True) if k == HISTORICAL}
    clash = sorted(historical_sets & set(names))
    if clash:
        raise InputError(f"{clash[0]!r} names both a historical set and a scenario", field="stress")
    price = np.zeros((len(underlyings), len(names)))
    volatility = np.zeros((len(underlyings), len(names)))
    column = 0
    for scenarios in scenario_sets:
        rows = np.array([row[u] for u in scenarios.underlyings], dtype=np.int64)
        width = scenarios.count
        if rows.size:
            price[rows, column: column + width] = scenarios.price_move
            volatility[rows, column: column + width] = scenarios.volatility_move
        column += width
    return StressScenarios(names, tuple(g for s in scenario_sets for g in s.sets),
                           tuple(k for s in scenario_sets for k in s.kinds), underlyings, price, volatility)


def instrument_stress_pnl(book: Book, scenarios: StressScenarios, currency: str) -> F64:
    """P&L of one contract of each instrument (instruments × scenarios) in `currency`, + gain (module docstring)."""
    refuse_positions(book, MODEL, book.inverse[book.position_instrument],
                     "covers linear contracts only (coin-settled contracts are not modelled)")
    index = book.asset_index
    if currency not in index:
        raise InputError(f"the book has no price for the clearing currency {currency!r}",
                         field="clearing_house.currency")
    row = {u: k for k, u in enumerate(scenarios.underlyings)}
    width = len(scenarios.underlyings)
    underlying_row = np.array([row.get(instrument.underlying, -1) for instrument in book.instruments],
                              dtype=np.int64)
    options = book.kind == OPTION
    factors = RiskFactors(
        names=tuple(f"price.{u}" for u in scenarios.underlyings) + tuple(f"vol.{u}" for u in scenarios.underlyings),
        kinds=("relative",) * width + ("absolute",) * width, levels=np.zeros((2 * width, 1)),
        dates=np.zeros(1, dtype="datetime64[D]"), price_factor=underlying_row,
        vol_factor=np.where(options & (underlying_row >= 0), underlying_row + width, -1).astype(np.int64))
    changes = np.vstack([scenarios.price_move, scenarios.volatility_move])
    pnl: F64 = instrument_pnl(book, factors, changes, _REVALUATION) / book.asset_price[index[currency]]
    return pnl


def account_stress_pnl(book: Book, scenarios: StressScenarios, currency: str) -> F64:
    """Σ quantity × instrument P&L per book account and scenario (accounts × scenarios) on the scenario kernel."""
    accounts = book.account_count
    grouped = group_positions(book.position_account.astype(np.int64), book.position_instrument, book.quantity,
                              accounts)
    pnl = instrument_stress_pnl(book, scenarios, currency)
    result: F64 = scenario_pnl(grouped, pnl, np.arange(accounts, dtype=np.int64))
    return result


@dataclass(frozen=True, eq=False)
class StressResult:
    """A stress test of the whole book in the clearing house's currency (+ gain for P&L, + for losses).

    Per clearing account (`ClearingSpec.accounts` order): P&L per scenario and whether it counts for its member.
    Per member (file order): P&L of the counted accounts, their IM, the loss beyond margin per scenario, the
    worst of it and its scenario (−1 when no scenario gives a loss beyond margin). Per affiliate group (order of
    first appearance): the sum of its members' losses beyond margin per scenario.
    """

    scenarios: StressScenarios
    account_ids: tuple[str, ...]
    account_pnl: F64
    counted: B
    member_ids: tuple[str, ...]
    member_pnl: F64
    member_margin: F64
    member_excess: F64
    group_ids: tuple[str, ...]
    member_group: I64
    group_excess: F64

    @property
    def worst_excess(self) -> F64:
        """Per member: max over scenarios of the loss beyond margin, max(0, −min_s P&L_s − IM)."""
        result: F64 = self.member_excess.max(axis=1, initial=0.0)
        return result

    @property
    def worst_scenario(self) -> I64:
        """Per member: the first scenario reaching its worst loss beyond margin, −1 if none exceeds margin."""
        worst = self.worst_excess
        found: I64 = np.where(worst > 0, np.argmax(self.member_excess, axis=1), -1).astype(np.int64)
        return found

    def group_members(self, group: str) -> tuple[str, ...]:
        """The members of an affiliate group, in file order."""
        g = self.group_ids.index(group)
        return tuple(m for m, k in zip(self.member_ids, self.member_group.tolist(), strict=True) if k == g)


def counted_accounts(spec: ClearingSpec, port_individual_clients: bool = True) -> B:
    """Per clearing account: whether it stays with its member in a default (house and omnibus; individually
    segregated clients too unless they are ported)."""
    return np.array([not (port_individual_clients and a.kind == CLIENT and a.segregation == INDIVIDUAL)
                     for a in spec.accounts], dtype=bool)


def clearing_account_pnl(spec: ClearingSpec, scenarios: StressScenarios, book: Book | None = None) -> F64:
    """P&L (clearing accounts in `spec.accounts` order × scenarios) of the spec's book, in its currency."""
    book = book or resolve(spec.book)
    pnl = account_stress_pnl(book, scenarios, spec.settings.currency)
    where = {account_id: n for n, account_id in enumerate(book.account_ids)}
    result: F64 = pnl[[where[account.id] for account in spec.accounts]]
    return result


def stress_test(spec: ClearingSpec, scenarios: StressScenarios, margins: ClearingMargins | None = None,
                port_individual_clients: bool = True, book: Book | None = None) -> StressResult:
    """Stress every clearing account in one pass and reduce to members and affiliate groups (module docstring).

    `margins` default to `clearing_margins(spec)`; `book` to the spec's book resolved once.
    """
    if scenarios.count < 1:
        raise InputError("needs at least one stress scenario", field="stress")
    margins = margins or clearing_margins(spec)
    account_pnl = clearing_account_pnl(spec, scenarios, book)
    counted = counted_accounts(spec, port_individual_clients)
    member_ids = tuple(member.id for member in spec.members)
    member_index = {member_id: m for m, member_id in enumerate(member_ids)}
    account_member = np.array([member_index[a.member] for a in spec.accounts], dtype=np.int64)
    member_pnl = np.zeros((len(member_ids), scenarios.count))
    np.add.at(member_pnl, account_member[counted], account_pnl[counted])
    member_margin = np.bincount(account_member[counted], weights=margins.initial_margin[counted],
                                minlength=len(member_ids)).astype(np.float64)
    member_excess = np.maximum(-member_pnl - member_margin[:, None], 0.0)
    group_ids = tuple(dict.fromkeys(member.affiliate_group for member in spec.members))
    group_index = {group: g for g, group in enumerate(group_ids)}
    member_group = np.array([group_index[member.affiliate_group] for member in spec.members], dtype=np.int64)
    group_excess = np.zeros((len(group_ids), scenarios.count))
    np.add.at(group_excess, member_group, member_excess)
    return StressResult(scenarios=scenarios, account_ids=tuple(a.id for a in spec.accounts), account_pnl=account_pnl,
                        counted=counted, member_ids=member_ids, member_pnl=member_pnl, member_margin=member_margin,
                        member_excess=member_excess, group_ids=group_ids, member_group=member_group,
                        group_excess=group_excess)

"""The default drill: a member defaults, its portfolio is closed out over the MPOR, and the loss runs the waterfall.

Method (PFMI Principle 4 key considerations 4 and 7, Principle 13; shared/reference/risk-models.md "Clearing
house mechanics"): stress scenarios size the Cover-N default fund (`stress.py`, `default_fund.py`); the
defaulter's portfolio is revalued along a close-out price path from the last settlement (the book's marks, where
variation margin was last paid) to the end of the margin period of risk; its loss goes through the waterfall
(`waterfall.py`), and the report says who lost what at each layer.

A drill file (YAML or JSON; paths relative to it):

```yaml
clearing_house: clearing-house.yaml   # the clearing-house file (clearing/spec.py)
defaulters: [M1]                      # defaulting members
port_individual_clients: true         # individually segregated clients are ported (default true)
stress:
  hypothetical:                       # scenario -> underlying -> relative price move, absolute vol move
    crash: {BTC: {price: -0.30, volatility: 0.20}, ETH: {price: -0.35}}
    rally: {BTC: {price: 0.25}, ETH: {price: 0.30}}
  historical:                         # every MPOR window of a history period, named <name>@<last day>
    - {name: y2022, history: history.csv, start: 2022-01-01, end: 2022-12-31}
fund:
  scenarios: [crash, rally, y2022]    # scenarios or historical sets that size the fund (default: all)
  method: common_scenario             # or worst_per_group (default_fund.py)
close_out:                            # one of:
  path: {BTC: [-0.10, -0.12], ETH: [-0.08, -0.10]}   # daily relative index moves, one per MPOR day
  volatility_path: {BTC: [0.05, 0.05]}               # optional daily absolute vol moves
  # scenario: crash                   # or a stress scenario's whole move as one step
```

Choices (where the issue is silent):
- a path has one move per day of the MPOR (`margin_period_of_risk_days` rounded up); moves compound
  (level_d = level_{d−1} × (1 + move_d)) and volatility moves add up; a named scenario is a one-day path;
- the close-out loss of a defaulter = max(0, −P&L at the end of the path) of its accounts that stay with it (house
  and omnibus clients; individually segregated clients are ported and excluded, as in the stress test), rounded up
  to the minor unit; its initial margin in the waterfall is the IM requirement of those same accounts (taken as
  posted: collateral above the requirement is not counted), rounded up;
- survivors' variation-margin gains over the close-out = Σ over the path's days of max(0, the member's net daily
  variation margin over all its accounts) — what the clearing house would owe it each settlement cycle — rounded
  down; the ported clients' gains are not haircut;
- skin in the game is rounded down to the minor unit; the assessment multiple is used as written.

`run_drill` returns a JSON-ready document (amounts as decimal strings with the currency's places) and
`print_drill` renders it with Rich.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rich.console import Console
from rich.table import Table

from marginkit.book import resolve
from marginkit.clearing.default_fund import currency_decimals, money, size_default_fund
from marginkit.clearing.margin import clearing_margins
from marginkit.clearing.spec import load_clearing
from marginkit.clearing.stress import (
    HYPOTHETICAL,
    Shock,
    StressScenarios,
    clearing_account_pnl,
    combine,
    counted_accounts,
    historical_scenarios,
    hypothetical_scenarios,
    stress_test,
)
from marginkit.clearing.waterfall import WaterfallResources, allocate_loss
from marginkit.errors import InputError
from marginkit.io.market_history import read_market_history
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error

F64 = NDArray[np.float64]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
PriceMove = Annotated[float, Field(allow_inf_nan=False, gt=-1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShockRecord(_Strict):
    price: PriceMove
    volatility: Finite = 0.0


class HistoricalRecord(_Strict):
    name: Name
    history: Annotated[str, Field(min_length=1)]
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> HistoricalRecord:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class StressRecord(_Strict):
    hypothetical: dict[Name, dict[Name, ShockRecord]] = {}
    historical: list[HistoricalRecord] = []


class FundRecord(_Strict):
    scenarios: Annotated[list[str], Field(min_length=1)] | None = None
    method: Literal["common_scenario", "worst_per_group"] = "common_scenario"


class CloseOutRecord(_Strict):
    scenario: str | None = None
    path: dict[Name, Annotated[list[PriceMove], Field(min_length=1)]] | None = None
    volatility_path: dict[Name, list[Finite]] = {}

    @model_validator(mode="after")
    def _one_source(self) -> CloseOutRecord:
        if (self.scenario is None) == (self.path is None):
            raise ValueError("give path (daily index moves) or scenario (a stress scenario's name), exactly one")
        if self.volatility_path and self.path is None:
            raise ValueError("volatility_path goes with path, not with scenario")
        return self


class DrillRecord(_Strict):
    clearing_house: Annotated[str, Field(min_length=1)]
    defaulters: Annotated[list[Name], Field(min_length=1)]
    port_individual_clients: bool = True
    stress: StressRecord
    fund: FundRecord = FundRecord()
    close_out: CloseOutRecord


def _prefixed(error: InputError, prefix: str) -> InputError:
    return InputError(error.message, field=f"{prefix}.{error.field}" if error.field else prefix, file=error.file)


def _scenarios(record: DrillRecord, base: Path, days: int) -> StressScenarios:
    """Every stress scenario of the drill file: hypothetical ones first, then each historical set."""
    sets: list[StressScenarios] = []
    if record.stress.hypothetical:
        try:
            sets.append(hypothetical_scenarios({name: {u: Shock(s.price, s.volatility) for u, s in shocks.items()}
                                                for name, shocks in record.stress.hypothetical.items()}))
        except InputError as error:
            raise _prefixed(error, "stress.hypothetical") from None
    for n, entry in enumerate(record.stress.historical):
        path = Path(entry.history) if Path(entry.history).is_absolute() else base / entry.history
        history = read_market_history(path)
        try:
            sets.append(historical_scenarios(history, days, entry.name, entry.start, entry.end))
        except InputError as error:
            raise InputError(error.message, field=f"stress.historical[{n}]") from None
    if not sets:
        raise InputError("name at least one hypothetical or historical stress scenario", field="stress")
    return combine(*sets)


def _close_out_path(record: CloseOutRecord, scenarios: StressScenarios, days: int) -> tuple[StressScenarios, str]:
    """The close-out as cumulative moves from the last settlement, one column per day, and its description."""
    if record.scenario is not None:
        if record.scenario not in scenarios.names:
            raise InputError(f"no stress scenario named {record.scenario!r}", field="close_out.scenario")
        k = scenarios.names.index(record.scenario)
        one = StressScenarios((record.scenario,), (record.scenario,), (scenarios.kinds[k],), scenarios.underlyings,
                              scenarios.price_move[:, [k]], scenarios.volatility_move[:, [k]])
        return one, f"scenario {record.scenario}"
    assert record.path is not None
    for where, moves in (("path", record.path), ("volatility_path", record.volatility_path)):
        for underlying, values in moves.items():
            if len(values) != days:
                raise InputError(f"has {len(values)} daily moves; the margin period of risk is {days} days",
                                 field=f"close_out.{where}.{underlying}")
    underlyings = tuple(sorted(set(record.path) | set(record.volatility_path)))
    daily_price = np.array([record.path.get(u, [0.0] * days) for u in underlyings], dtype=np.float64)
    daily_volatility = np.array([record.volatility_path.get(u, [0.0] * days) for u in underlyings],
                                dtype=np.float64)
    names = tuple(f"day {d + 1}" for d in range(days))
    price_move: F64 = np.cumprod(1.0 + daily_price, axis=1, dtype=np.float64) - 1.0
    volatility_move: F64 = np.cumsum(daily_volatility, axis=1)
    path = StressScenarios(names, ("close_out",) * days, (HYPOTHETICAL,) * days, underlyings, price_move,
                           volatility_move)
    return path, f"path over {days} days"


def _text(value: Decimal) -> str:
    return format(value, "f")


def run_drill(path: str | Path) -> dict[str, Any]:
    """Run the default drill of a drill file (module docstring) and return its JSON-ready document."""
    path = Path(path)
    data = load_structured(path)
    if not isinstance(data, dict):
        raise InputError("a drill file is a mapping with clearing_house, defaulters, stress and close_out",
                         file=str(path))
    try:
        record = DrillRecord.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error).in_file(str(path)) from None
    try:
        return _run(record, path)
    except InputError as error:
        raise error.in_file(str(path)) from None


def _run(record: DrillRecord, path: Path) -> dict[str, Any]:
    base = path.parent
    house_path = Path(record.clearing_house) if Path(record.clearing_house).is_absolute() \
        else base / record.clearing_house
    spec = load_clearing(house_path)
    members = [member.id for member in spec.members]
    for n, defaulter in enumerate(record.defaulters):
        if defaulter not in members:
            raise InputError(f"{defaulter!r} is not a member of {spec.settings.id}", field=f"defaulters[{n}]")
        if record.defaulters.index(defaulter) != n:
            raise InputError(f"{defaulter!r} is named twice", field=f"defaulters[{n}]")
    settings = spec.settings
    days = math.ceil(settings.margin_period_of_risk_days - 1e-9)
    decimals = currency_decimals(settings.currency)
    every = _scenarios(record, base, days)
    try:
        sizing = every.select(record.fund.scenarios) if record.fund.scenarios is not None else every
    except InputError as error:
        raise _prefixed(error, "fund") from None
    path_scenarios, source = _close_out_path(record.close_out, every, days)

    book = resolve(spec.book)
    margins = clearing_margins(spec)
    stress = stress_test(spec, sizing, margins, record.port_individual_clients, book)
    fund = size_default_fund(spec, stress, margins, record.fund.method)

    counted = counted_accounts(spec, record.port_individual_clients)
    cumulative = clearing_account_pnl(spec, path_scenarios, book)  # accounts × days, from the last settlement
    daily = np.diff(cumulative, axis=1, prepend=0.0)
    account_member = np.array([members.index(a.member) for a in spec.accounts], dtype=np.int64)
    member_daily = np.zeros((len(members), daily.shape[1]))
    np.add.at(member_daily, account_member, daily)
    gains = np.maximum(member_daily, 0.0).sum(axis=1)

    defaulters = list(record.defaulters)
    survivors = [m for m in members if m not in defaulters]
    losses: dict[str, Decimal] = {}
    defaulter_margin: dict[str, Decimal] = {}
    close_out_rows: list[dict[str, Any]] = []
    for defaulter in defaulters:
        mine = account_member == members.index(defaulter)
        kept = mine & counted
        pnl_by_day = daily[kept].sum(axis=0)
        end_pnl = float(cumulative[kept, -1].sum())
        losses[defaulter] = money(max(-end_pnl, 0.0), decimals, ROUND_CEILING)
        defaulter_margin[defaulter] = money(float(margins.initial_margin[kept].sum()), decimals, ROUND_CEILING)
        close_out_rows.append({
            "member": defaulter,
            "accounts": [a.id for a, k in zip(spec.accounts, kept.tolist(), strict=True) if k],
            "ported_accounts": [a.id for a, k in zip(spec.accounts, (mine & ~counted).tolist(), strict=True) if k],
            "initial_margin": _text(defaulter_margin[defaulter]),
            "pnl_by_day": [_text(money(float(v), decimals, ROUND_HALF_EVEN)) for v in pnl_by_day.tolist()],
            "pnl": _text(money(end_pnl, decimals, ROUND_HALF_EVEN)),
            "loss": _text(losses[defaulter]),
        })
    survivor_gains = {s: money(float(gains[members.index(s)]), decimals, ROUND_FLOOR) for s in survivors}
    resources = WaterfallResources(
        initial_margin=defaulter_margin,
        defaulter_contributions={d: fund.contributions[d] for d in defaulters},
        survivor_contributions={s: fund.contributions[s] for s in survivors},
        first_skin_in_the_game=money(settings.skin_in_the_game.first, decimals, ROUND_FLOOR),
        second_skin_in_the_game=money(settings.skin_in_the_game.second, decimals, ROUND_FLOOR),
        assessment_multiple=Decimal(repr(settings.default_fund.assessment_multiple)),
        variation_margin_gains=survivor_gains, clearing_house=settings.id, decimals=decimals)
    waterfall = allocate_loss(losses, resources)

    worst = stress.worst_excess
    worst_scenario = stress.worst_scenario
    return {
        "drill": str(path),
        "clearing_house": settings.id,
        "currency": settings.currency,
        "margin_period_of_risk_days": settings.margin_period_of_risk_days,
        "defaulters": defaulters,
        "port_individual_clients": record.port_individual_clients,
        "stress": {
            "scenarios": list(sizing.names),
            "members": [{
                "member": m, "affiliate_group": stress.group_ids[int(stress.member_group[k])],
                "initial_margin": _text(money(float(stress.member_margin[k]), decimals, ROUND_CEILING)),
                "worst_scenario": sizing.names[int(worst_scenario[k])] if worst_scenario[k] >= 0 else None,
                "loss_beyond_margin": _text(money(float(worst[k]), decimals, ROUND_CEILING)),
            } for k, m in enumerate(stress.member_ids)],
        },
        "default_fund": {
            "method": fund.method, "cover": fund.cover, "scenario": fund.scenario,
            "covered_groups": [{"group": g, "members": list(stress.group_members(g)),
                                "loss_beyond_margin": _text(v)} for g, v in fund.covered_losses.items()],
            "requirement": _text(fund.requirement), "minimum_total": _text(fund.minimum_total),
            "size": _text(fund.size),
            "contributions": [{"member": m, "initial_margin": _text(fund.margin_basis[m]),
                               "contribution": _text(fund.contributions[m]), "at_minimum": m in fund.floored}
                              for m in members],
        },
        "close_out": {
            "source": source, "days": len(path_scenarios.names), "defaulters": close_out_rows,
            "variation_margin_gains": [{"member": s, "gain": _text(v)} for s, v in survivor_gains.items()],
        },
        "waterfall": {
            "loss": _text(waterfall.loss),
            "layers": [{"layer": layer.name, "size": _text(layer.size), "used": _text(layer.used),
                        "parties": [{"party": p, "capacity": _text(layer.capacity[p]), "used": _text(u)}
                                    for p, u in layer.by_party.items()]}
                       for layer in waterfall.layers],
            "covered": _text(waterfall.covered),
            "uncovered": _text(waterfall.uncovered),
        },
        "losses_by_party": [{"party": p, "amount": _text(v)} for p, v in waterfall.by_party().items() if v > 0],
    }


def _table(title: str, columns: Mapping[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in columns.items():
        table.add_column(name, justify="right" if justify == "r" else "left")
    return table


def print_drill(console: Console, document: Mapping[str, Any]) -> None:
    """The drill as tables: stress per member, the fund, the close-out, the waterfall and who lost what."""
    currency = document["currency"]
    console.print(f"default drill · {document['clearing_house']} · defaulters: {', '.join(document['defaulters'])}"
                  f" · MPOR {document['margin_period_of_risk_days']:g} days · amounts in {currency}")
    stress = _table("stress (scenarios: " + ", ".join(document["stress"]["scenarios"][:6])
                    + (", …" if len(document["stress"]["scenarios"]) > 6 else "") + ")",
                    {"member": "l", "affiliate group": "l", "initial margin": "r", "worst scenario": "l",
                     "loss beyond margin": "r"})
    for row in document["stress"]["members"]:
        stress.add_row(row["member"], row["affiliate_group"], row["initial_margin"], row["worst_scenario"] or "—",
                       row["loss_beyond_margin"])
    console.print(stress)
    fund = document["default_fund"]
    covered = ", ".join(f"{g['group']} {g['loss_beyond_margin']}" for g in fund["covered_groups"])
    contributions = _table(f"default fund {fund['size']} (cover {fund['cover']}, {fund['method']}, scenario "
                           f"{fund['scenario'] or '—'}: {covered or 'no loss beyond margin'}; floor total "
                           f"{fund['minimum_total']})",
                           {"member": "l", "initial margin": "r", "contribution": "r", "at minimum": "l"})
    for row in fund["contributions"]:
        contributions.add_row(row["member"], row["initial_margin"], row["contribution"],
                              "yes" if row["at_minimum"] else "")
    console.print(contributions)
    close_out = document["close_out"]
    closing = _table(f"close-out ({close_out['source']})",
                     {"defaulter": "l", "accounts": "l", "ported": "l", "initial margin": "r", "P&L by day": "r",
                      "loss": "r"})
    for row in close_out["defaulters"]:
        closing.add_row(row["member"], ", ".join(row["accounts"]), ", ".join(row["ported_accounts"]) or "—",
                        row["initial_margin"], " · ".join(row["pnl_by_day"]), row["loss"])
    console.print(closing)
    waterfall = document["waterfall"]
    layers = _table(f"waterfall: loss {waterfall['loss']}, covered {waterfall['covered']}, uncovered "
                    f"{waterfall['uncovered']}", {"layer": "l", "size": "r", "used": "r", "who lost what": "l"})
    for layer in waterfall["layers"]:
        who = ", ".join(f"{p['party']} {p['used']}" for p in layer["parties"] if Decimal(p["used"]) > 0)
        layers.add_row(layer["layer"].replace("_", " "), layer["size"], layer["used"], who or "—")
    console.print(layers)
    parties = _table("losses by party", {"party": "l", "amount": "r"})
    for row in document["losses_by_party"]:
        parties.add_row(row["party"], row["amount"])
    console.print(parties)

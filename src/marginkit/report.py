"""Margin results as the stable JSON of spec/cli.md and as Rich tables."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from marginkit.accounts import AccountState
from marginkit.book import Book
from marginkit.collateral import CollateralValuation
from marginkit.models.requirements import Requirements


def _number(value: float) -> float:
    return float(value) + 0.0  # normalises -0.0


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def margin_document(book: Book, requirements: Requirements, state: AccountState) -> dict[str, Any]:
    """The `marginkit margin --json` document (spec/cli.md)."""
    figures = requirements.positions
    accounts: list[dict[str, Any]] = []
    starts = book.position_account.searchsorted(range(book.account_count + 1))
    side_names = ("both", "long", "short")
    for a, account_id in enumerate(book.account_ids):
        positions: list[dict[str, Any]] = []
        for p in range(int(starts[a]), int(starts[a + 1])):
            entry: dict[str, Any] = {
                "instrument": book.instruments[int(book.position_instrument[p])].id,
                "position_side": side_names[int(book.position_side[p])],
                "quantity": _number(book.quantity[p]),
                "initial_margin": None,
                "maintenance_margin": None,
                "liquidation_price": None,
                "bankruptcy_price": None,
            }
            if figures is not None:
                entry["initial_margin"] = _number(figures.initial_margin[p])
                entry["maintenance_margin"] = _number(figures.maintenance_margin[p])
                if figures.liquidation_price_defined[p]:
                    entry["liquidation_price"] = _number(figures.liquidation_price[p])
                if figures.bankruptcy_price_defined[p]:
                    entry["bankruptcy_price"] = _number(figures.bankruptcy_price[p])
                for name, values in figures.details.items():
                    value = values[p].item()
                    entry[name] = value if isinstance(value, int) else _number(value)
            positions.append(entry)
        ratio = _number(state.margin_ratio[a]) if state.margin_ratio_defined[a] else None
        accounts.append({
            "id": account_id,
            "currency": book.assets[int(requirements.margin_asset[a])],
            "equity": _number(state.equity[a]),
            "initial_margin": _number(requirements.initial_margin[a]),
            "maintenance_margin": _number(requirements.maintenance_margin[a]),
            "margin_ratio": ratio,
            "status": state.status_name(a),
            "components": {k: _number(v[a]) for k, v in requirements.components.items()},
            "worst_scenario": None,
            "positions": positions,
            **(dict(requirements.explanations[a]) if requirements.explanations is not None else {}),
            **_collateral_fields(book, state, a),
        })
    document: dict[str, Any] = {
        "model": requirements.model,
        "profile": requirements.profile,
        "profile_version": requirements.profile_version,
        "as_of": _time(book.as_of),
        "accounts": accounts,
    }
    if book.collateral_profile is not None:
        document["collateral_profile"], document["collateral_profile_version"] = book.collateral_profile
    return document


def _collateral_fields(book: Book, state: AccountState, account: int) -> dict[str, Any]:
    """Under a collateral profile (docs/collateral.md): equity with initial and with maintenance haircuts."""
    if state.equity_initial is None or state.equity_maintenance is None:
        return {}
    tiers = book.credit_tier
    return {
        "equity_initial": _number(state.equity_initial[account]),
        "equity_maintenance": _number(state.equity_maintenance[account]),
        "credit_tier": tiers[account] if len(tiers) == book.account_count else None,
    }


def _fmt(value: float | None, digits: int = 8) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}g}" if abs(value) >= 1e7 else f"{value:,.{min(digits, 8)}f}".rstrip("0").rstrip(".")


def print_margin(console: Console, document: dict[str, Any]) -> None:
    """Accounts and their positions as tables."""
    title = f"{document['model']} · {document['profile']} ({document['profile_version']}) · {document['as_of']}"
    accounts = Table(title=title, title_justify="left")
    for column in ("account", "currency", "equity", "initial margin", "maintenance margin", "ratio", "status"):
        accounts.add_column(column, justify="left" if column in ("account", "currency", "status") else "right")
    for account in document["accounts"]:
        accounts.add_row(account["id"], account["currency"], _fmt(account["equity"]),
                         _fmt(account["initial_margin"]), _fmt(account["maintenance_margin"]),
                         _fmt(account["margin_ratio"], 4), account["status"])
    console.print(accounts)
    _print_strategies(console, document)
    rows = [(a["id"], p) for a in document["accounts"] for p in a["positions"]]
    if not rows:
        return
    positions = Table(title="positions", title_justify="left")
    for column in ("account", "instrument", "side", "quantity", "initial margin", "maintenance margin",
                   "liquidation price", "bankruptcy price"):
        positions.add_column(column, justify="left" if column in ("account", "instrument", "side") else "right")
    for account_id, p in rows:
        positions.add_row(account_id, p["instrument"], p["position_side"], _fmt(p["quantity"]),
                          _fmt(p["initial_margin"]), _fmt(p["maintenance_margin"]),
                          _fmt(p["liquidation_price"]), _fmt(p["bankruptcy_price"]))
    console.print(positions)


def _print_strategies(console: Console, document: dict[str, Any]) -> None:
    """The strategies a model recognised (pairs of legs), where it reports them."""
    rows = [(a["id"], s) for a in document["accounts"] for s in a.get("strategies", [])]
    if not rows:
        return
    table = Table(title="strategies", title_justify="left")
    for column in ("account", "strategy", "legs", "contracts", "initial margin per contract"):
        table.add_column(column, justify="right" if column in ("contracts", "initial margin per contract") else "left")
    for account_id, strategy in rows:
        table.add_row(account_id, strategy["strategy"], " / ".join(strategy["legs"]), _fmt(strategy["contracts"]),
                      _fmt(strategy["initial_margin_per_contract"]))
    console.print(table)


def print_comparison(console: Console, results: list[dict[str, Any]], skipped: list[dict[str, str]]) -> None:
    """One row per account, one column pair (IM / MM) per profile."""
    if results:
        table = Table(title="initial / maintenance margin by profile", title_justify="left")
        table.add_column("account")
        for result in results:
            table.add_column(f"{result['profile']}\n({result['model']})", justify="right")
        for a, account in enumerate(results[0]["accounts"]):
            cells = []
            for result in results:
                row = result["accounts"][a]
                cells.append(f"{_fmt(row['initial_margin'])} / {_fmt(row['maintenance_margin'])} "
                             f"{row['currency']}\n{row['status']}")
            table.add_row(account["id"], *cells)
        console.print(table)
    for item in skipped:
        console.print(f"[dim]not covered by {item['profile']}: {item['reason']}[/dim]")


def print_explanation(console: Console, document: dict[str, Any]) -> None:
    """An account's components, scenario tables and liquidation prices."""
    summary = Table(title=f"{document['account']} · {document['model']} · {document['profile']}", title_justify="left")
    summary.add_column("figure")
    summary.add_column(document["currency"], justify="right")
    for name in ("equity", "initial_margin", "maintenance_margin"):
        summary.add_row(name.replace("_", " "), _fmt(document[name]))
    for name, value in document["components"].items():
        summary.add_row(name.replace("_", " "), _fmt(value))
    console.print(summary)
    for scenario in document["scenarios"]:
        title = f"{scenario['underlying']} scenario P&L ({document['currency']}, + gain)"
        grid = Table(title=title, title_justify="left")
        grid.add_column("index move", justify="right")
        for vol in scenario["volatility"]:
            grid.add_column(f"vol {vol}", justify="right")
        for move, row in zip(scenario["price_moves"], scenario["standard"], strict=True):
            grid.add_row(f"{move:+.2%}", *(_fmt(v) for v in row))
        console.print(grid)
        if scenario["other"]:
            others = Table(title=f"{scenario['underlying']} other scenarios", title_justify="left")
            others.add_column("scenario")
            others.add_column(f"P&L ({document['currency']})", justify="right")
            for row in scenario["other"]:
                others.add_row(row["label"], _fmt(row["pnl"]))
            console.print(others)
    prices = Table(title="liquidation price per underlying (index level, all else equal)", title_justify="left")
    prices.add_column("underlying")
    prices.add_column("price", justify="right")
    for underlying, price in document["liquidation_prices"].items():
        prices.add_row(underlying, _fmt(price))
    console.print(prices)


def collateral_document(book: Book, valuation: CollateralValuation) -> dict[str, Any]:
    """The `marginkit collateral --json` document: per account, each asset and chain's contribution (USD)."""
    schedule = valuation.schedule
    order = np.argsort(valuation.lot_account, kind="stable")
    starts = valuation.lot_account[order].searchsorted(range(book.account_count + 1))
    accounts: list[dict[str, Any]] = []
    for a, account_id in enumerate(book.account_ids):
        rows = [_lot_row(book, valuation, int(lot)) for lot in order[int(starts[a]):int(starts[a + 1])]]
        accounts.append({
            "id": account_id,
            "credit_tier": valuation.credit_tier[a],
            "initial_margin_multiplier": _number(valuation.initial_margin_multiplier[a]),
            "concentration_limit": _number(valuation.concentration_limit[a]),
            "market_value_usd": _number(valuation.account_market_value[a]),
            "initial_value_usd": _number(valuation.account_initial_value[a]),
            "maintenance_value_usd": _number(valuation.account_maintenance_value[a]),
            "balances": rows,
        })
    return {"collateral_profile": schedule.name, "collateral_profile_version": schedule.version,
            "as_of": _time(book.as_of), "currency": "USD", "accounts": accounts}


def _lot_row(book: Book, v: CollateralValuation, lot: int) -> dict[str, Any]:
    chain = int(v.lot_chain[lot])
    market = float(v.market_value[lot])
    initial = float(v.initial_value[lot])
    maintenance = float(v.maintenance_value[lot])
    kind = v.schedule_kind[int(v.lot_asset[lot])]
    reasons: list[str] = []
    if v.balance[lot] < 0:
        reasons.append("loan: full value")
    else:
        if v.pending[lot] > 0:
            reasons.append(f"not final: {_fmt(float(v.pending[lot]))} pending")
        initial_ratio = float(v.schedule_ratio_initial[lot])
        maintenance_ratio = float(v.schedule_ratio_maintenance[lot])
        if kind != "none" and (initial_ratio < 1 or maintenance_ratio < 1):
            reasons.append(f"{kind} schedule: ratio {_fmt(initial_ratio, 6)}" if initial_ratio == maintenance_ratio else
                           f"{kind} schedule: ratio {_fmt(initial_ratio, 6)} initial, "
                           f"{_fmt(maintenance_ratio, 6)} maintenance")
        if v.add_on[lot] > 0:
            reasons.append(f"chain add-on {_fmt(float(v.add_on[lot]), 6)}")
        if v.halted[lot]:
            reasons.append("chain halted: 0 for initial margin")
        if v.concentration_cut[lot] > 0:
            reasons.append(f"concentration limit {_fmt(float(v.concentration_limit[int(v.lot_account[lot])]), 6)}")
    return {
        "asset": book.assets[int(v.lot_asset[lot])],
        "chain": book.chains[chain] if chain >= 0 else None,
        "balance": _number(v.balance[lot]),
        "index_price": _number(v.price[lot]),
        "market_value_usd": _number(market),
        "initial_value_usd": _number(initial),
        "maintenance_value_usd": _number(maintenance),
        "haircut_initial": _number(1.0 - initial / market) if market > 0 else 0.0,
        "haircut_maintenance": _number(1.0 - maintenance / market) if market > 0 else 0.0,
        "schedule": kind,
        "schedule_ratio_initial": _number(v.schedule_ratio_initial[lot]),
        "schedule_ratio_maintenance": _number(v.schedule_ratio_maintenance[lot]),
        "chain_add_on": _number(v.add_on[lot]),
        "halted": bool(v.halted[lot]),
        "not_final": _number(v.pending[lot]),
        "concentration_cut_usd": _number(v.concentration_cut[lot]),
        "reasons": reasons,
    }


def print_collateral(console: Console, document: dict[str, Any]) -> None:
    """Each account's collateral per asset and chain, with the haircuts applied and why."""
    profile = document["collateral_profile"] or "no collateral profile (no haircuts)"
    version = f" ({document['collateral_profile_version']})" if document["collateral_profile_version"] else ""
    table = Table(title=f"collateral · {profile}{version} · {document['as_of']} · USD", title_justify="left")
    for column in ("account", "asset", "chain", "balance", "index", "value", "initial value", "maintenance value",
                   "why"):
        table.add_column(column, justify="right" if column in ("balance", "index", "value", "initial value",
                                                               "maintenance value") else "left")
    for account in document["accounts"]:
        tier = f" [{account['credit_tier']}]" if account["credit_tier"] else ""
        for row in account["balances"]:
            table.add_row(account["id"] + tier, row["asset"], row["chain"] or "—", _fmt(row["balance"]),
                          _fmt(row["index_price"]), _fmt(row["market_value_usd"]), _fmt(row["initial_value_usd"]),
                          _fmt(row["maintenance_value_usd"]), "; ".join(row["reasons"]) or "—")
        table.add_row(account["id"] + tier, "total", "", "", "", _fmt(account["market_value_usd"]),
                      _fmt(account["initial_value_usd"]), _fmt(account["maintenance_value_usd"]), "",
                      end_section=True)
    console.print(table)

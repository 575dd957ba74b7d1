"""Replay a price path over a book per margin mode: liquidations, losses, insurance fund, ADL and contagion.

`simulate(spec, path_events, profile, modes)` runs the monitor and the liquidation engine over the book once
per mode (every account switched to isolated, cross or portfolio), each run with its own ledger (a SQLite
file in a temporary directory unless given), and reports per mode: fills and accounts liquidated, realised
losses, the insurance fund's use (fees and surpluses in, deficits paid out), ADL events and amounts, what
stayed uncovered, and contagion: positions closed while their own P&L was ≥ 0, because the other positions
of their cross account lost (an isolated position cannot be reached by another position's loss).
Under the tiered model a portfolio account is margined as one cross scope (the model has no portfolio mode).
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from marginkit.book import Book, resolve
from marginkit.domain import BookSpec, MarginMode
from marginkit.engine.events import PriceEvent
from marginkit.engine.liquidation import LiquidationEngine, LiquidationSettings
from marginkit.engine.monitor import Monitor, MonitorSettings
from marginkit.engine.settings import engine_settings
from marginkit.engine.state import HEALTHY, STATUS_NAMES, RiskState
from marginkit.io.profile_file import Profile
from marginkit.ledger import Ledger
from marginkit.models import MODELS

MODES = ("isolated", "cross", "portfolio")


def start_engine(book: Book, profile: Profile, ledger: Ledger | None, insurance_fund: Decimal | float | str = 0,
                 liquidation: LiquidationSettings | None = None, monitor: MonitorSettings | None = None) -> Monitor:
    """A monitor over a resolved book under a model's requirements, its ledger opened (deposits, fund seed)."""
    requirements = MODELS[profile.model](book, profile)
    state = RiskState.from_book(book, requirements, profile)
    engine = LiquidationEngine(state, liquidation, ledger, insurance_fund)
    engine.open_ledger()
    return Monitor(state, engine, monitor)


def with_mode(spec: BookSpec, mode: str) -> BookSpec:
    """Every account switched to one margin mode (portfolio is margined as cross under the tiered model)."""
    target = MarginMode.CROSS if mode == "portfolio" else MarginMode(mode)
    return replace(spec, accounts=tuple(replace(a, mode=target) for a in spec.accounts))


def relative_times(spec: BookSpec, events: Sequence[PriceEvent]) -> list[PriceEvent]:
    """Times under 10⁹ s are offsets from the book's as_of; absolute times are kept."""
    if events and max(e.time for e in events) < 1e9:
        start = spec.as_of.timestamp()
        return [replace(e, time=start + e.time) for e in events]
    return list(events)


async def _stream(events: Sequence[PriceEvent]) -> AsyncIterator[PriceEvent]:
    for event in events:
        yield event


def simulate_mode(spec: BookSpec, events: Sequence[PriceEvent], profile: Profile, mode: str, ledger: Ledger,
                  insurance_fund: Decimal | float | str = 0, liquidation: LiquidationSettings | None = None,
                  monitor_settings: MonitorSettings | None = None) -> dict[str, Any]:
    """One mode's run and report (amounts in the book's settlement currency)."""
    book = resolve(with_mode(spec, mode))
    configured = engine_settings(profile)
    liquidation = liquidation or configured.liquidation
    monitor_settings = monitor_settings or configured.monitor
    monitor = start_engine(book, profile, ledger, insurance_fund, liquidation, monitor_settings)
    engine = monitor.liquidation
    assert engine is not None
    fund_start = float(engine.fund)
    asyncio.run(monitor.run(_stream(relative_times(spec, events))))
    state = monitor.state
    totals = engine.totals
    equity = state.account_equity()
    flat = np.array([state.account_flat(a) for a in range(state.account_count)], dtype=bool)
    status = {name: int(np.count_nonzero((state.status == code) & ~flat)) for code, name in enumerate(STATUS_NAMES)}
    status["closed"] = int(np.count_nonzero(flat & (state.status == HEALTHY)))
    return {
        "mode": mode,
        "currency": state.margin_asset,
        "accounts": state.account_count,
        "price_events": monitor.events_in,
        "liquidations": totals.liquidations,
        "liquidated_accounts": len(totals.liquidated_accounts),
        "realised_losses": totals.realised_losses,
        "insurance_fund": {"start": fund_start, "end": float(engine.fund), "fees_in": totals.fees,
                           "surplus_in": totals.surplus, "paid_out": totals.fund_paid},
        "adl_events": totals.adl_events,
        "adl_amount": totals.adl_amount,
        "uncovered": totals.uncovered,
        "contagion": {"positions_closed_in_profit": totals.contagion_positions,
                      "notional": totals.contagion_notional},
        "negative_equity_accounts": int(np.count_nonzero(equity < -1e-6)),
        "final_status": status,
        "ledger_problems": ledger.verify(),
    }


def simulate(spec: BookSpec, events: Sequence[PriceEvent], profile: Profile, modes: Sequence[str] = MODES,
             insurance_fund: Decimal | float | str = 0, liquidation: LiquidationSettings | None = None,
             monitor_settings: MonitorSettings | None = None) -> dict[str, Any]:
    """Run the path once per mode, each with a fresh SQLite ledger in a temporary directory.

    The engine's settings come from the profile's `engine` section, except that a replayed path never freezes
    on staleness (its prices are as fresh as the path says)."""
    configured = engine_settings(profile).monitor
    settings = monitor_settings or replace(configured, stale_after_seconds=math.inf)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="marginkit-simulate-") as folder:
        for mode in modes:
            with Ledger.open(f"sqlite:///{Path(folder) / f'{mode}.sqlite3'}") as ledger:
                results[mode] = simulate_mode(spec, events, profile, mode, ledger, insurance_fund, liquidation,
                                              settings)
    return {"profile": profile.name, "modes": results}

"""The service's live engine: a market move re-margins the ledger's accounts through engine.Monitor and
liquidates through engine.LiquidationEngine, every fill journalled in the service's ledger.

On each price update (`POST /market`, the service's HTTP price feed) the accounts holding positions are read
from the ledger into a Book at the new market, margined by the service's profile, and handed to the engine as
a RiskState whose statuses and margin-call deadlines persist between updates (held here, by account id). The
engine's settings come from the profile's `engine` section (engine/settings.py). Positions live in the ledger,
so each liquidation fill is journalled as a trade with `engine.liquidator` (the venue's liquidation book, which
takes the position over at the fill price and is not itself margined) next to the realised P&L, fees, surplus,
insurance-fund payouts and ADL transfers; clips and ADL sizes are whole lots of each instrument's ledger
decimals. Prices carry the time of their last update: a price older than `stale_after_seconds` freezes the
liquidation of the accounts that depend on it. Margin-call deadlines are checked on every price update.

The engine covers linear futures and perpetuals in one settlement currency (engine/state.py); a market it
does not cover leaves the service margining and reporting status without liquidating (`covered` says why).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from marginkit.engine.events import EngineEvent
from marginkit.engine.liquidation import LiquidationEngine
from marginkit.engine.monitor import Monitor
from marginkit.engine.settings import EngineSettings, engine_settings
from marginkit.engine.state import HEALTHY, STATUS_NAMES, RiskState
from marginkit.errors import InputError
from marginkit.ledger.journal import INSURANCE
from marginkit.models import MODELS

if TYPE_CHECKING:
    from marginkit.service.app import MarginService

LIQUIDATOR = "engine.liquidator"


class ServiceEngine:
    """Runs the live engine over the service's ledger accounts on each market move (one update at a time)."""

    def __init__(self, service: MarginService, started: float) -> None:
        self.service = service
        self.settings: EngineSettings = engine_settings(service.profile)
        self.started = started
        self.mark_time: dict[str, float] = {}  # instrument -> time of its latest price
        self.status: dict[str, int] = {}  # account -> engine status code after the last update
        self.deadline: dict[str, float] = {}  # account -> margin-call deadline (seconds)
        self.covered: str | None = None  # why the engine did not run at the last update (None: it ran)
        self.lock = threading.Lock()

    def record_prices(self, marks: Mapping[str, float], index: Mapping[str, float], now: float) -> None:
        """Stamp the instruments whose price moved: named marks, and every instrument on a moved index."""
        for instrument in self.service.market.get("instruments", []):
            if not isinstance(instrument, dict):
                continue
            name = instrument.get("id")
            assets = {instrument.get("underlying"), instrument.get("quote"), instrument.get("settlement")}
            if isinstance(name, str) and (name in marks or assets & set(index)):
                self.mark_time[name] = now

    def statuses(self) -> dict[str, str]:
        """Each account's engine status after the last update."""
        return {account: STATUS_NAMES[code] for account, code in self.status.items()}

    def run(self, now: float) -> list[EngineEvent]:
        """Re-margin every account holding positions at the service's market; liquidate those below maintenance."""
        with self.lock:
            service = self.service
            ledger = service.ledger
            snapshots = {account: snapshot for account, snapshot in service.snapshots().items()
                         if account != LIQUIDATOR and snapshot[1]}
            if not snapshots:
                return []
            book = service.book(snapshots)
            requirements = MODELS[service.profile.model](book, service.profile)
            try:
                state = RiskState.from_book(book, requirements, service.profile)
            except InputError as error:
                self.covered = str(error)
                return []
            self.covered = None
            state.mark_time[:] = [self.mark_time.get(name, self.started) for name in state.instrument_ids]
            for a, account in enumerate(state.account_ids):
                state.status[a] = self.status.get(account, HEALTHY)
                state.deadline[a] = self.deadline.get(account, np.inf)
            assets = ledger.assets()
            decimals = np.array([assets[name].decimals if name in assets else 8 for name in state.instrument_ids],
                                dtype=np.int64)
            fund = ledger.balances(INSURANCE).get(INSURANCE, {}).get(state.margin_asset, Decimal(0))
            engine = LiquidationEngine(state, self.settings.liquidation, ledger, fund, counterparty=LIQUIDATOR,
                                       quantity_decimals=decimals)
            monitor = Monitor(state, engine, self.settings.monitor)
            monitor.clock = now
            monitor.key_prefix = f"liq:{uuid.uuid4().hex[:16]}"
            events = monitor.review()
            for a, account in enumerate(state.account_ids):
                self.status[account] = int(state.status[a])
                if np.isfinite(state.deadline[a]):
                    self.deadline[account] = float(state.deadline[a])
                else:
                    self.deadline.pop(account, None)
            return events
